// Semantic checks on a bound EngineConfig, run once after loading: every rule that a type cannot express
// (ranges, orderings, cross-key consistency such as IN_FEATURES ⊆ the features the level below produces,
// and which long-tail components can be combined, long-tail-methods.md section 7). All problems are
// collected and reported together, each with its key path and, when loaded from files, where it was set.
using System.Text;
using System.Text.RegularExpressions;

namespace Engine.Config;

/// <summary>One failed check: the key it concerns and, for rules across keys, the other keys involved
/// (so a broken default can be traced to the key that was actually set).</summary>
public sealed record ConfigIssue(string KeyPath, string Message, IReadOnlyList<string> Related)
{
    public ConfigIssue(string keyPath, string message) : this(keyPath, message, []) { }
}

public static partial class ConfigValidator
{
    private static readonly int[] ResnetDepths = [18, 34, 50, 101];

    public static IReadOnlyList<ConfigIssue> Check(EngineConfig config)
    {
        var c = new Checker();
        CheckModel(c, config.Model);
        CheckInput(c, config.Input);
        CheckDatasets(c, config.Datasets);
        CheckDataloader(c, config.Dataloader);
        CheckSolver(c, config.Solver);
        c.Require(config.Test.EvalPeriod >= 0, "TEST.EVAL_PERIOD", $"must be ≥ 0 (0 evaluates only at the end), got {config.Test.EvalPeriod}.");
        c.Require(config.Test.DetectionsPerImage > 0, "TEST.DETECTIONS_PER_IMAGE", $"must be > 0 (LVIS: 300), got {config.Test.DetectionsPerImage}.");
        c.Require(config.OutputDir.Length > 0, "OUTPUT_DIR", "must name a folder.");
        c.Require(config.Version == 2, "VERSION", $"only config version 2 exists, got {config.Version}.");
        return c.Issues;
    }

    private static void CheckModel(Checker c, ModelConfig m)
    {
        c.Require(DevicePattern().IsMatch(m.Device), "MODEL.DEVICE", $"must be \"cpu\", \"cuda\" or \"cuda:N\", got \"{m.Device}\".");
        c.Require(m.PixelMean.Count == 3, "MODEL.PIXEL_MEAN", $"needs 3 values (one per channel), got {m.PixelMean.Count}.");
        c.Require(m.PixelStd.Count == 3, "MODEL.PIXEL_STD", $"needs 3 values (one per channel), got {m.PixelStd.Count}.");
        c.Require(m.PixelStd.All(s => s > 0), "MODEL.PIXEL_STD", $"values must be > 0, got {m.PixelStd}.");
        CheckDistinct(c, "MODEL.TRAINABLE_MODULES", m.TrainableModules);
        CheckDistinct(c, "MODEL.REINIT_MODULES", m.ReinitModules);

        c.Require(m.Backbone.FreezeAt is >= 0 and <= 5, "MODEL.BACKBONE.FREEZE_AT", $"must be in 0..5 (0 freezes nothing, 5 the whole ResNet), got {m.Backbone.FreezeAt}.");

        var r = m.Resnets;
        c.Require(ResnetDepths.Contains(r.Depth), "MODEL.RESNETS.DEPTH", $"must be one of {{{string.Join(", ", ResnetDepths)}}}, got {r.Depth}.");
        string[] stages = ["res2", "res3", "res4", "res5"];
        CheckSubset(c, "MODEL.RESNETS.OUT_FEATURES", r.OutFeatures, stages, "the ResNet stages");
        c.Require(r.OutFeatures.Count > 0, "MODEL.RESNETS.OUT_FEATURES", "must name at least one stage.");
        c.Require(r.NumGroups > 0, "MODEL.RESNETS.NUM_GROUPS", $"must be > 0, got {r.NumGroups}.");
        c.Require(r.WidthPerGroup > 0, "MODEL.RESNETS.WIDTH_PER_GROUP", $"must be > 0, got {r.WidthPerGroup}.");
        c.Require(r.Res2OutChannels > 0, "MODEL.RESNETS.RES2_OUT_CHANNELS", $"must be > 0, got {r.Res2OutChannels}.");
        c.Require(r.StemOutChannels > 0, "MODEL.RESNETS.STEM_OUT_CHANNELS", $"must be > 0, got {r.StemOutChannels}.");
        if (r.Depth is 18 or 34)
            c.Require(r.NumGroups == 1, "MODEL.RESNETS.NUM_GROUPS", $"basic blocks (depth {r.Depth}) have no grouped convolution; use 1, got {r.NumGroups}.");
        if (r.Norm == NormType.GroupNorm)
            foreach (var (key, channels) in new[] { ("STEM_OUT_CHANNELS", r.StemOutChannels), ("RES2_OUT_CHANNELS", r.Res2OutChannels) })
                c.Require(channels % 32 == 0, $"MODEL.RESNETS.{key}", $"GroupNorm uses 32 groups, so channels must be a multiple of 32, got {channels}.", "MODEL.RESNETS.NORM");
        c.Require(r.Norm != NormType.None, "MODEL.RESNETS.NORM", "the ResNet needs a normalization layer: FrozenBN, BN or GN.");

        var f = m.Fpn;
        CheckSubset(c, "MODEL.FPN.IN_FEATURES", f.InFeatures, r.OutFeatures, "MODEL.RESNETS.OUT_FEATURES", "MODEL.RESNETS.OUT_FEATURES");
        c.Require(f.InFeatures.Count > 0, "MODEL.FPN.IN_FEATURES", "must name at least one ResNet stage.");
        c.Require(f.OutChannels > 0, "MODEL.FPN.OUT_CHANNELS", $"must be > 0, got {f.OutChannels}.");
        if (f.Norm == NormType.GroupNorm)
            c.Require(f.OutChannels % 32 == 0, "MODEL.FPN.OUT_CHANNELS", $"GroupNorm uses 32 groups, so channels must be a multiple of 32, got {f.OutChannels}.", "MODEL.FPN.NORM");
        c.Require(f.Norm != NormType.FrozenBatchNorm, "MODEL.FPN.NORM", "FPN layers are trained; use \"\", BN or GN.");

        // FPN levels: p<k> for every res<k> input, plus p<last+1> from the max-pool top block (detectron2's LastLevelMaxPool).
        var levels = f.InFeatures.Select(s => "p" + s[3..]).ToList();
        if (levels.Count > 0) levels.Add("p" + (f.InFeatures.Select(s => int.Parse(s[3..], System.Globalization.CultureInfo.InvariantCulture)).Max() + 1));
        var fpnOutputs = $"the FPN's outputs [{string.Join(", ", levels)}]";

        var a = m.AnchorGenerator;
        var rpn = m.Rpn;
        CheckSubset(c, "MODEL.RPN.IN_FEATURES", rpn.InFeatures, levels, fpnOutputs, "MODEL.FPN.IN_FEATURES");
        c.Require(rpn.InFeatures.Count > 0, "MODEL.RPN.IN_FEATURES", "must name at least one FPN level.");
        c.Require(a.Sizes.Count == 1 || a.Sizes.Count == rpn.InFeatures.Count, "MODEL.ANCHOR_GENERATOR.SIZES",
            $"needs one list per RPN input level ({rpn.InFeatures.Count}) or a single list for all, got {a.Sizes.Count}.", "MODEL.RPN.IN_FEATURES");
        c.Require(a.AspectRatios.Count == 1 || a.AspectRatios.Count == rpn.InFeatures.Count, "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS",
            $"needs one list per RPN input level ({rpn.InFeatures.Count}) or a single list for all, got {a.AspectRatios.Count}.", "MODEL.RPN.IN_FEATURES");
        c.Require(a.Sizes.All(l => l.Count > 0 && l.All(s => s > 0)), "MODEL.ANCHOR_GENERATOR.SIZES", $"every level needs at least one size, all > 0; got {Show(a.Sizes)}.");
        c.Require(a.AspectRatios.All(l => l.Count > 0 && l.All(s => s > 0)), "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS", $"every level needs at least one ratio, all > 0; got {Show(a.AspectRatios)}.");
        if (a.Sizes.Count > 0 && a.AspectRatios.Count > 0)
        {
            // The RPN head predicts a fixed number of anchors per location, the same on every level.
            var perLevel = Enumerable.Range(0, rpn.InFeatures.Count)
                .Select(i => a.Sizes[Math.Min(i, a.Sizes.Count - 1)].Count * a.AspectRatios[Math.Min(i, a.AspectRatios.Count - 1)].Count).Distinct().Count();
            c.Require(perLevel <= 1, "MODEL.ANCHOR_GENERATOR", "every level must have the same number of anchors per location (sizes × aspect ratios), because the RPN head is shared across levels.",
                "MODEL.ANCHOR_GENERATOR.SIZES", "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS");
        }
        c.Require(a.Offset is >= 0 and < 1, "MODEL.ANCHOR_GENERATOR.OFFSET", $"must be in [0, 1), got {a.Offset}.");

        c.Require(rpn.IouThresholds.Count == 2 && InUnit(rpn.IouThresholds[0]) && InUnit(rpn.IouThresholds[1]) && rpn.IouThresholds[0] <= rpn.IouThresholds[1],
            "MODEL.RPN.IOU_THRESHOLDS", $"needs two values (negative below the first, positive at or above the second) with 0 ≤ first ≤ second ≤ 1, got {rpn.IouThresholds}.");
        c.Require(rpn.BatchSizePerImage > 0, "MODEL.RPN.BATCH_SIZE_PER_IMAGE", $"must be > 0, got {rpn.BatchSizePerImage}.");
        CheckFraction(c, "MODEL.RPN.POSITIVE_FRACTION", rpn.PositiveFraction);
        CheckBoxCoder(c, "MODEL.RPN", rpn.BboxRegWeights, rpn.SmoothL1Beta, rpn.BboxRegLossWeight);
        c.Require(rpn.LossWeight >= 0, "MODEL.RPN.LOSS_WEIGHT", $"must be ≥ 0, got {rpn.LossWeight}.");
        foreach (var (key, value) in new[] { ("PRE_NMS_TOPK_TRAIN", rpn.PreNmsTopkTrain), ("PRE_NMS_TOPK_TEST", rpn.PreNmsTopkTest),
                                             ("POST_NMS_TOPK_TRAIN", rpn.PostNmsTopkTrain), ("POST_NMS_TOPK_TEST", rpn.PostNmsTopkTest) })
            c.Require(value > 0, "MODEL.RPN." + key, $"must be > 0, got {value}.");
        c.Require(InUnit(rpn.NmsThresh), "MODEL.RPN.NMS_THRESH", $"must be in [0, 1], got {rpn.NmsThresh}.");

        var h = m.RoiHeads;
        c.Require(h.NumClasses > 0, "MODEL.ROI_HEADS.NUM_CLASSES", $"must be > 0 (LVIS v1: 1203), got {h.NumClasses}.");
        CheckSubset(c, "MODEL.ROI_HEADS.IN_FEATURES", h.InFeatures, levels, fpnOutputs, "MODEL.FPN.IN_FEATURES");
        c.Require(h.InFeatures.Count > 0, "MODEL.ROI_HEADS.IN_FEATURES", "must name at least one FPN level.");
        c.Require(h.IouThresholds.Count == 1 && InUnit(h.IouThresholds[0]), "MODEL.ROI_HEADS.IOU_THRESHOLDS",
            $"needs one value in [0, 1] (foreground at or above it), got {h.IouThresholds}.");
        c.Require(h.BatchSizePerImage > 0, "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", $"must be > 0, got {h.BatchSizePerImage}.");
        CheckFraction(c, "MODEL.ROI_HEADS.POSITIVE_FRACTION", h.PositiveFraction);
        c.Require(h.ScoreThreshTest is >= 0 and < 1, "MODEL.ROI_HEADS.SCORE_THRESH_TEST", $"must be in [0, 1) (LVIS: 0.0001), got {h.ScoreThreshTest}.");
        c.Require(InUnit(h.NmsThreshTest), "MODEL.ROI_HEADS.NMS_THRESH_TEST", $"must be in [0, 1], got {h.NmsThreshTest}.");

        var b = m.RoiBoxHead;
        c.Require(b.NumFc > 0, "MODEL.ROI_BOX_HEAD.NUM_FC", $"the box head is a stack of FC layers; need at least 1, got {b.NumFc}.");
        c.Require(b.FcDim > 0, "MODEL.ROI_BOX_HEAD.FC_DIM", $"must be > 0, got {b.FcDim}.");
        c.Require(b.PoolerResolution > 0, "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION", $"must be > 0, got {b.PoolerResolution}.");
        c.Require(b.PoolerSamplingRatio >= 0, "MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO", $"must be ≥ 0 (0 = adaptive), got {b.PoolerSamplingRatio}.");
        CheckBoxCoder(c, "MODEL.ROI_BOX_HEAD", b.BboxRegWeights, b.SmoothL1Beta, b.BboxRegLossWeight);

        var mh = m.RoiMaskHead;
        c.Require(mh.NumConv >= 0, "MODEL.ROI_MASK_HEAD.NUM_CONV", $"must be ≥ 0, got {mh.NumConv}.");
        c.Require(mh.ConvDim > 0, "MODEL.ROI_MASK_HEAD.CONV_DIM", $"must be > 0, got {mh.ConvDim}.");
        c.Require(mh.PoolerResolution > 0, "MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION", $"must be > 0, got {mh.PoolerResolution}.");
        c.Require(mh.PoolerSamplingRatio >= 0, "MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO", $"must be ≥ 0, got {mh.PoolerSamplingRatio}.");
        c.Require(mh.Norm != NormType.FrozenBatchNorm, "MODEL.ROI_MASK_HEAD.NORM", "mask-head layers are trained; use \"\", BN or GN.");
        if (!m.MaskOn)
        {
            c.Require(!m.TrainableModules.Contains(ModuleGroup.MaskHead), "MODEL.TRAINABLE_MODULES", "lists mask_head but MODEL.MASK_ON is false.", "MODEL.MASK_ON");
            c.Require(!m.ReinitModules.Contains(ModuleGroup.MaskHead), "MODEL.REINIT_MODULES", "lists mask_head but MODEL.MASK_ON is false.", "MODEL.MASK_ON");
        }

        CheckLongTail(c, m);
    }

    private static void CheckLongTail(Checker c, ModelConfig m)
    {
        const string P = "MODEL.LONG_TAIL.";
        var lt = m.LongTail;

        c.Require(lt.Classifier.Scale > 0, P + "CLASSIFIER.SCALE", $"must be > 0, got {lt.Classifier.Scale}.");
        if (lt.Classifier.PriorProb is { } prior)
            c.Require(prior is > 0 and < 1, P + "CLASSIFIER.PRIOR_PROB", $"must be in (0, 1) or null, got {prior}.");
        var sigmoid = lt.ClassificationLoss is ClassificationLoss.Sigmoid or ClassificationLoss.Eql or ClassificationLoss.Eqlv2
            or ClassificationLoss.Federated or ClassificationLoss.Fcbl;
        if (lt.Classifier.PriorProb is not null)
            c.Require(sigmoid, P + "CLASSIFIER.PRIOR_PROB", $"sets a sigmoid bias prior, but CLASSIFICATION_LOSS \"{KeyNames.ValueOf(lt.ClassificationLoss)}\" is not a sigmoid loss; use null.", P + "CLASSIFICATION_LOSS");

        var rw = lt.Reweight;
        if (rw.Type != ReweightType.None)
            c.Require(lt.ClassificationLoss == ClassificationLoss.Softmax, P + "REWEIGHT.TYPE", "per-class re-weighting applies to the softmax loss only.", P + "CLASSIFICATION_LOSS");
        c.Require(rw.Beta is > 0 and < 1, P + "REWEIGHT.BETA", $"must be in (0, 1), got {rw.Beta}.");
        c.Require(rw.ClipMin > 0 && rw.ClipMin <= rw.ClipMax, P + "REWEIGHT", $"needs 0 < CLIP_MIN ≤ CLIP_MAX, got {rw.ClipMin} and {rw.ClipMax}.");

        c.Require(lt.Eql.Lambda is >= 0 and <= 1, P + "EQL.LAMBDA", $"is an image frequency threshold in [0, 1], got {lt.Eql.Lambda}.");

        c.Require(lt.Eqlv2.Gamma > 0, P + "EQLV2.GAMMA", $"must be > 0, got {lt.Eqlv2.Gamma}.");
        c.Require(lt.Eqlv2.Alpha >= 0, P + "EQLV2.ALPHA", $"must be ≥ 0, got {lt.Eqlv2.Alpha}.");

        c.Require(lt.Seesaw.P >= 0, P + "SEESAW.P", $"must be ≥ 0, got {lt.Seesaw.P}.");
        c.Require(lt.Seesaw.Q >= 0, P + "SEESAW.Q", $"must be ≥ 0, got {lt.Seesaw.Q}.");
        c.Require(lt.Seesaw.Eps > 0, P + "SEESAW.EPS", $"must be > 0, got {lt.Seesaw.Eps}.");
        c.Require(lt.Seesaw.LossWeight >= 0, P + "SEESAW.LOSS_WEIGHT", $"must be ≥ 0, got {lt.Seesaw.LossWeight}.");

        c.Require(lt.Federated.NumClasses > 0, P + "FEDERATED.NUM_CLASSES", $"must be > 0, got {lt.Federated.NumClasses}.");
        c.Require(lt.Federated.FreqWeightPower >= 0, P + "FEDERATED.FREQ_WEIGHT_POWER", $"must be ≥ 0, got {lt.Federated.FreqWeightPower}.");

        var g = lt.Bags.GroupBoundaries;
        c.Require(g.Count > 0 && g[0] > 0 && g.Zip(g.Skip(1)).All(p => p.First < p.Second), P + "BAGS.GROUP_BOUNDARIES",
            $"must be positive and strictly increasing (e.g. [10, 100, 1000]), got {g}.");
        c.Require(lt.Bags.OthersSampleRatio > 0, P + "BAGS.OTHERS_SAMPLE_RATIO", $"must be > 0, got {lt.Bags.OthersSampleRatio}.");

        var fc = lt.Bacl.Fcbl;
        c.Require(fc.Alpha >= 0, P + "BACL.FCBL.ALPHA", $"must be ≥ 0, got {fc.Alpha}.");
        c.Require(InUnit(fc.ProbThresh), P + "BACL.FCBL.PROB_THRESH", $"must be in [0, 1], got {fc.ProbThresh}.");
        c.Require(fc.LossWeight >= 0, P + "BACL.FCBL.LOSS_WEIGHT", $"must be ≥ 0, got {fc.LossWeight}.");
        var fhm = lt.Bacl.Fhm;
        CheckFraction(c, P + "BACL.FHM.DECAY", fhm.Decay);
        c.Require(fhm.NumClasses > 0, P + "BACL.FHM.NUM_CLASSES", $"must be > 0, got {fhm.NumClasses}.");
        c.Require(fhm.FeaturesPerClass > 0, P + "BACL.FHM.FEATURES_PER_CLASS", $"must be > 0, got {fhm.FeaturesPerClass}.");
        c.Require(fhm.JittersPerGt is > 0 and <= 16, P + "BACL.FHM.JITTERS_PER_GT", $"must be in 1..16 (one per sign pattern of the 4 coordinates), got {fhm.JittersPerGt}.");
        c.Require(fhm.JitterScale is > 0 and < 0.5, P + "BACL.FHM.JITTER_SCALE", $"must be in (0, 0.5) so a jittered box keeps positive size, got {fhm.JitterScale}.");

        var ln = lt.Logn;
        CheckFraction(c, P + "LOGN.MOMENTUM", ln.Momentum);
        CheckFraction(c, P + "LOGN.STATISTICS_MOMENTUM", ln.StatisticsMomentum);
        c.Require(ln.StatisticsEpochs > 0, P + "LOGN.STATISTICS_EPOCHS", $"must be > 0, got {ln.StatisticsEpochs}.");
        c.Require(ln.VarianceFloor > 0, P + "LOGN.VARIANCE_FLOOR", $"must be > 0, got {ln.VarianceFloor}.");
        c.Require(ln.Eps > 0, P + "LOGN.EPS", $"must be > 0, got {ln.Eps}.");

        var cr = lt.Crat;
        CheckFraction(c, P + "CRAT.FISHER_MOMENTUM", cr.FisherMomentum);
        c.Require(cr.Temperature > 0, P + "CRAT.TEMPERATURE", $"must be > 0, got {cr.Temperature}.");
        c.Require(cr.BoxWeight >= 0, P + "CRAT.BOX_WEIGHT", $"must be ≥ 0, got {cr.BoxWeight}.");
        c.Require(cr.MaskWeight >= 0, P + "CRAT.MASK_WEIGHT", $"must be ≥ 0, got {cr.MaskWeight}.");

        var rio = lt.Rio;
        c.Require(rio.QueueCapacity > 0, P + "RIO.QUEUE_CAPACITY", $"must be > 0, got {rio.QueueCapacity}.");
        c.Require(rio.ReplayPerClass >= 0 && rio.ReplayPerClass <= rio.QueueCapacity, P + "RIO.REPLAY_PER_CLASS",
            $"must be in 0..QUEUE_CAPACITY ({rio.QueueCapacity}), got {rio.ReplayPerClass}.");
        c.Require(rio.BankMaxImages > 0, P + "RIO.BANK_MAX_IMAGES", $"must be > 0 (10: rare classes only), got {rio.BankMaxImages}.");

        // Combinations (long-tail-methods.md section 7).
        if (lt.Calibrator == Calibrator.Logn)
            c.Require(lt.ClassificationLoss == ClassificationLoss.Softmax, P + "CALIBRATOR",
                $"LogN calibrates softmax heads with a background column; CLASSIFICATION_LOSS is \"{KeyNames.ValueOf(lt.ClassificationLoss)}\".", P + "CLASSIFICATION_LOSS");
        if (lt.ClassificationLoss == ClassificationLoss.Softmax && ln.Mode == LognMode.Repo)
            c.Require(lt.Calibrator == Calibrator.Logn, P + "LOGN.MODE", "repo mode trains with standardized logits for LogN; set CALIBRATOR to \"logn\" too.", P + "CALIBRATOR");
        if (lt.Calibrator == Calibrator.Logn && ln.Mode == LognMode.Repo)
            c.Require(rw.Type == ReweightType.None, P + "REWEIGHT.TYPE", "LogN's repo mode trains with its own standardized softmax loss, which has no per-class weights; use \"none\".", P + "LOGN.MODE");
        if (lt.Classifier.Type == ClassifierType.Cosine)
            c.Require(lt.Classifier.PriorProb is null, P + "CLASSIFIER.PRIOR_PROB", "the cosine classifier has no bias to set a prior with; use null, or CLASSIFIER.TYPE \"linear\" / \"normed_linear\".", P + "CLASSIFIER.TYPE");
        c.Require(cr.MaskWeights == CratMaskWeights.Box, P + "CRAT.MASK_WEIGHTS", "\"mask\" needs the mask Fisher bank, which is not kept (the released code updates it without using it); use \"box\".");
        if (lt.EmbeddingAugmenter == EmbeddingAugmenter.Fhm)
            c.Require(lt.ClassificationLoss == ClassificationLoss.Fcbl, P + "EMBEDDING_AUGMENTER",
                "FHM draws classes from FCBL's confusion matrix; set CLASSIFICATION_LOSS to \"fcbl\".", P + "CLASSIFICATION_LOSS");
        if (lt.GradientTransfuser == GradientTransfuser.Crat)
        {
            c.Require(!m.RoiBoxHead.ClsAgnosticBboxReg, P + "GRADIENT_TRANSFUSER", "CRAT needs class-specific box regression; MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG is true.", "MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG");
            if (m.MaskOn)
                c.Require(!m.RoiMaskHead.ClsAgnosticMask, P + "GRADIENT_TRANSFUSER", "CRAT needs a class-specific mask predictor; MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK is true.", "MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK");
        }
    }

    private static void CheckInput(Checker c, InputConfig i)
    {
        c.Require(i.MinSizeTrain.Count > 0 && i.MinSizeTrain.All(s => s > 0), "INPUT.MIN_SIZE_TRAIN", $"needs at least one size, all > 0; got {i.MinSizeTrain}.");
        if (i.MinSizeTrainSampling == MinSizeSampling.Range)
            c.Require(i.MinSizeTrain.Count == 2 && i.MinSizeTrain[0] <= i.MinSizeTrain[1], "INPUT.MIN_SIZE_TRAIN",
                $"with MIN_SIZE_TRAIN_SAMPLING \"range\" give [low, high] with low ≤ high, got {i.MinSizeTrain}.", "INPUT.MIN_SIZE_TRAIN_SAMPLING");
        c.Require(i.MaxSizeTrain > 0, "INPUT.MAX_SIZE_TRAIN", $"must be > 0, got {i.MaxSizeTrain}.");
        c.Require(i.MinSizeTest >= 0, "INPUT.MIN_SIZE_TEST", $"must be ≥ 0 (0 keeps the original size), got {i.MinSizeTest}.");
        c.Require(i.MaxSizeTest > 0, "INPUT.MAX_SIZE_TEST", $"must be > 0, got {i.MaxSizeTest}.");
    }

    private static void CheckDatasets(Checker c, DatasetsConfig d)
    {
        foreach (var (key, names) in new[] { ("DATASETS.TRAIN", d.Train), ("DATASETS.TEST", d.Test) })
            foreach (var name in names)
                c.Require(d.Catalog.ContainsKey(name), key,
                    $"dataset '{name}' is not in DATASETS.CATALOG" + (Suggestions.Closest(name, d.Catalog.Keys, 1) is [var best] ? $"; did you mean '{best}'?" : $" (known: {string.Join(", ", d.Catalog.Keys)})."));
        foreach (var (name, entry) in d.Catalog)
        {
            c.Require(DatasetNamePattern().IsMatch(name), "DATASETS.CATALOG." + name,
                "dataset names may use letters, digits, '_' and '-' only (so `--set DATASETS.CATALOG.<name>.JSON=…` can address them).");
            c.Require(entry.Json.Length > 0, $"DATASETS.CATALOG.{name}.JSON", "must name the annotation file.");
            c.Require(entry.ImageRoot.Length > 0, $"DATASETS.CATALOG.{name}.IMAGE_ROOT", "must name the image folder.");
        }
    }

    private static void CheckDataloader(Checker c, DataloaderConfig d)
    {
        c.Require(d.NumWorkers >= 0, "DATALOADER.NUM_WORKERS", $"must be ≥ 0, got {d.NumWorkers}.");
        c.Require(d.RepeatThreshold is >= 0 and <= 1, "DATALOADER.REPEAT_THRESHOLD", $"is an image frequency in [0, 1] (LVIS: 0.001), got {d.RepeatThreshold}.");
        if (d.SamplerTrain == TrainSampler.RepeatFactorTrainingSampler)
            c.Require(d.RepeatThreshold > 0, "DATALOADER.REPEAT_THRESHOLD", "RepeatFactorTrainingSampler needs a threshold > 0 (LVIS: 0.001).", "DATALOADER.SAMPLER_TRAIN");
    }

    private static void CheckSolver(Checker c, SolverConfig s)
    {
        c.Require(s.ImsPerBatch > 0, "SOLVER.IMS_PER_BATCH", $"must be > 0, got {s.ImsPerBatch}.");
        c.Require(s.BaseLr > 0, "SOLVER.BASE_LR", $"must be > 0, got {s.BaseLr}.");
        c.Require(s.Momentum is >= 0 and < 1, "SOLVER.MOMENTUM", $"must be in [0, 1), got {s.Momentum}.");
        c.Require(!s.Nesterov || s.Momentum > 0, "SOLVER.NESTEROV", "Nesterov momentum needs MOMENTUM > 0.");
        c.Require(s.WeightDecay >= 0, "SOLVER.WEIGHT_DECAY", $"must be ≥ 0, got {s.WeightDecay}.");
        c.Require(s.WeightDecayNorm >= 0, "SOLVER.WEIGHT_DECAY_NORM", $"must be ≥ 0, got {s.WeightDecayNorm}.");
        c.Require(s.WeightDecayBias is null or >= 0, "SOLVER.WEIGHT_DECAY_BIAS", $"must be ≥ 0 or null, got {s.WeightDecayBias}.");
        c.Require(s.BiasLrFactor > 0, "SOLVER.BIAS_LR_FACTOR", $"must be > 0, got {s.BiasLrFactor}.");
        c.Require(s.MaxIter > 0, "SOLVER.MAX_ITER", $"must be > 0, got {s.MaxIter}.");
        for (var i = 0; i < s.Steps.Count; i++)
        {
            c.Require(s.Steps[i] > 0 && s.Steps[i] < s.MaxIter, $"SOLVER.STEPS[{i}]", $"{s.Steps[i]} must be in 1..MAX_ITER-1 ({s.MaxIter - 1}).", "SOLVER.MAX_ITER");
            if (i > 0) c.Require(s.Steps[i] > s.Steps[i - 1], $"SOLVER.STEPS[{i}]", $"steps must be strictly increasing; {s.Steps[i]} follows {s.Steps[i - 1]}.");
        }
        c.Require(s.Gamma is > 0 and <= 1, "SOLVER.GAMMA", $"must be in (0, 1], got {s.Gamma}.");
        CheckFraction(c, "SOLVER.WARMUP_FACTOR", s.WarmupFactor);
        c.Require(s.WarmupIters >= 0 && s.WarmupIters <= s.MaxIter, "SOLVER.WARMUP_ITERS", $"must be in 0..MAX_ITER ({s.MaxIter}), got {s.WarmupIters}.", "SOLVER.MAX_ITER");
        c.Require(s.CheckpointPeriod > 0, "SOLVER.CHECKPOINT_PERIOD", $"must be > 0, got {s.CheckpointPeriod}.");
        c.Require(s.ClipGradients.ClipValue > 0, "SOLVER.CLIP_GRADIENTS.CLIP_VALUE", $"must be > 0, got {s.ClipGradients.ClipValue}.");
        c.Require(s.ClipGradients.NormType >= 1, "SOLVER.CLIP_GRADIENTS.NORM_TYPE", $"must be ≥ 1 (a p-norm), got {s.ClipGradients.NormType}.");
    }

    private static void CheckBoxCoder(Checker c, string prefix, ValueList<double> weights, double beta, double lossWeight)
    {
        c.Require(weights.Count == 4 && weights.All(w => w > 0), prefix + ".BBOX_REG_WEIGHTS", $"needs 4 values > 0 for (dx, dy, dw, dh), got {weights}.");
        c.Require(beta >= 0, prefix + ".SMOOTH_L1_BETA", $"must be ≥ 0 (0 is L1), got {beta}.");
        c.Require(lossWeight >= 0, prefix + ".BBOX_REG_LOSS_WEIGHT", $"must be ≥ 0, got {lossWeight}.");
    }

    private static void CheckFraction(Checker c, string key, double value) =>
        c.Require(value is > 0 and <= 1, key, $"must be in (0, 1], got {value}.");

    private static void CheckSubset(Checker c, string key, IEnumerable<string> items, IEnumerable<string> allowed, string allowedName, string? related = null)
    {
        var set = allowed.ToHashSet(StringComparer.Ordinal);
        var missing = items.Where(i => !set.Contains(i)).ToArray();
        c.Require(missing.Length == 0, key, $"[{string.Join(", ", missing)}] not among {allowedName} [{string.Join(", ", set)}].", related is null ? [] : [related]);
        var duplicates = items.GroupBy(i => i).Where(g => g.Count() > 1).Select(g => g.Key).ToArray();
        c.Require(duplicates.Length == 0, key, $"names [{string.Join(", ", duplicates)}] more than once.");
    }

    private static void CheckDistinct<T>(Checker c, string key, IEnumerable<T> items)
    {
        var duplicates = items.GroupBy(i => i).Where(g => g.Count() > 1).Select(g => g.Key).ToArray();
        c.Require(duplicates.Length == 0, key, $"lists [{string.Join(", ", duplicates)}] more than once.");
    }

    private static bool InUnit(double v) => v is >= 0 and <= 1;

    private static string Show(ValueList<ValueList<double>> lists) => "[" + string.Join(", ", lists.Select(l => l.ToString())) + "]";

    /// <summary>One exception listing every issue, each prefixed by where its value was set (the key itself,
    /// the list holding the offending element, or else the first related key that was written;
    /// "(default value)" when none was).</summary>
    public static ConfigException ToException(IReadOnlyList<ConfigIssue> issues, IReadOnlyDictionary<string, SourceLocation>? locations)
    {
        var sb = new StringBuilder();
        sb.Append(issues.Count == 1 ? "invalid config:" : $"invalid config ({issues.Count} problems):");
        foreach (var issue in issues)
        {
            sb.Append("\n  ");
            var where = locations is null ? null
                : issue.Related.Prepend(issue.KeyPath).Select(k => Locate(k, locations)).FirstOrDefault(l => l is not null);
            sb.Append(where is null ? "(default value)" : where.ToString()).Append(": ");
            sb.Append(issue.KeyPath).Append(": ").Append(issue.Message);
        }
        return new ConfigException(sb.ToString());
    }

    internal static SourceLocation? Locate(string keyPath, IReadOnlyDictionary<string, SourceLocation> locations)
    {
        if (locations.TryGetValue(keyPath, out var location)) return location;
        var bracket = keyPath.IndexOf('[');
        return bracket > 0 && locations.TryGetValue(keyPath[..bracket], out location) ? location : null;
    }

    [GeneratedRegex(@"^(cpu|cuda(:\d+)?)$")]
    private static partial Regex DevicePattern();

    [GeneratedRegex(@"^[A-Za-z0-9_\-]+$")]
    private static partial Regex DatasetNamePattern();

    private sealed class Checker
    {
        public List<ConfigIssue> Issues { get; } = [];

        public void Require(bool ok, string keyPath, string message, params string[] related)
        {
            if (!ok) Issues.Add(new ConfigIssue(keyPath, message, related));
        }
    }
}
