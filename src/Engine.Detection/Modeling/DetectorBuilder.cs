// Builds the Faster R-CNN FPN detector from the resolved configuration, as detectron2's build_model with each
// module's from_config: this is the one place below the drivers that reads EngineConfig; every module receives
// explicit arguments. The backbone is a ResNet (MODEL.RESNETS, MODEL.BACKBONE.FREEZE_AT) with an FPN
// (MODEL.FPN); anchors (MODEL.ANCHOR_GENERATOR) sit on the RPN's levels, whose strides come from the backbone;
// the ROI heads pool MODEL.ROI_HEADS.IN_FEATURES. The long-tail plug points (classification loss and classifier
// layer, embedding augmenter, logit calibrator, gradient transfuser) come from MODEL.LONG_TAIL through
// LongTailComponents, with the training set's class statistics where a method needs them. Parameter names come
// out as detectron2's ("backbone.bottom_up.res2.0.conv1.weight", "proposal_generator.rpn_head.conv.weight",
// "roi_heads.box_predictor.cls_score.weight"); the calibrator's statistics are buffers
// "roi_heads.box_predictor.calibrator.running_mean" / ".running_var".
using Engine.Config;
using Engine.Detection.Modeling.Backbone;
using Engine.Detection.Modeling.MetaArch;
using Engine.Detection.Modeling.ProposalGenerator;
using Engine.Detection.Modeling.RoiHeads;

namespace Engine.Detection.Modeling;

public static class DetectorBuilder
{
    /// <param name="statistics">the training set's class counts; required by the long-tail methods that read them
    /// (LongTailComponents.NeedsClassStatistics).</param>
    public static GeneralizedRcnn FromConfig(EngineConfig config, Generator generator, ClassStatistics? statistics = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var m = config.Model;
        if (m.MaskOn)
            throw new ArgumentException("DetectorBuilder: MODEL.MASK_ON is true, but the engine builds the box branch only (no mask head); set MODEL.MASK_ON to false.");
        var backbone = BuildBackbone(m, generator);
        try
        {
            var rpn = BuildRpn(m, backbone.OutputShapes, generator);
            var roiHeads = BuildRoiHeads(config, backbone.OutputShapes, generator, statistics);
            return new GeneralizedRcnn(backbone, rpn, roiHeads, m.PixelMean.ToArray(), m.PixelStd.ToArray());
        }
        catch
        {
            backbone.Dispose();
            throw;
        }
    }

    /// <summary>build_resnet_fpn_backbone: ResNet over the FPN's in-features, FPN with a max-pooled P6.</summary>
    public static FpnBackbone BuildBackbone(ModelConfig m, Generator generator)
    {
        if (m.Resnets.NumGroups != 1)
            throw new ArgumentException($"DetectorBuilder: MODEL.RESNETS.NUM_GROUPS = {m.Resnets.NumGroups}; only 1 (ResNet, not ResNeXt) is built.");
        var bottomUp = new ResNet(m.Resnets.Depth, generator, m.Fpn.InFeatures.ToArray(), m.Backbone.FreezeAt, Norm(m.Resnets.Norm, "MODEL.RESNETS.NORM"),
                                  inChannels: m.PixelMean.Count, stemOutChannels: m.Resnets.StemOutChannels, widthPerGroup: m.Resnets.WidthPerGroup,
                                  res2OutChannels: m.Resnets.Res2OutChannels, strideInOneByOne: m.Resnets.StrideIn1x1);
        try
        {
            return new FpnBackbone(bottomUp, m.Fpn.InFeatures.ToArray(), m.Fpn.OutChannels, generator, Norm(m.Fpn.Norm, "MODEL.FPN.NORM"),
                                   FpnFuse.Sum, lastLevelMaxPool: true);
        }
        catch
        {
            bottomUp.Dispose();
            throw;
        }
    }

    /// <summary>RPN.from_config: anchors on MODEL.RPN.IN_FEATURES, matcher [0.3, 0.7] with low-quality matches.</summary>
    public static Rpn BuildRpn(ModelConfig m, IReadOnlyDictionary<string, ShapeSpec> shapes, Generator generator)
    {
        var r = m.Rpn;
        var inFeatures = r.InFeatures.ToArray();
        var specs = inFeatures.Select(f => Shape(shapes, f, "MODEL.RPN.IN_FEATURES")).ToArray();
        if (specs.Select(s => s.Channels).Distinct().Count() != 1)
            throw new ArgumentException($"DetectorBuilder: the RPN's input features [{string.Join(", ", inFeatures)}] must share one channel count (the head is shared), got [{string.Join(", ", specs.Select(s => s.Channels))}].");
        var a = m.AnchorGenerator;
        var anchors = new DefaultAnchorGenerator(a.Sizes.Select(l => (IReadOnlyList<double>)l.ToArray()).ToArray(),
                                                 a.AspectRatios.Select(l => (IReadOnlyList<double>)l.ToArray()).ToArray(),
                                                 specs.Select(s => s.Stride).ToArray(), a.Offset);
        var numAnchors = anchors.NumCellAnchors.Distinct().ToArray();
        if (numAnchors.Length != 1)
            throw new ArgumentException($"DetectorBuilder: MODEL.ANCHOR_GENERATOR gives [{string.Join(", ", anchors.NumCellAnchors)}] anchors per location across levels; the shared RPN head needs the same count on every level.");
        var head = new StandardRpnHead(specs[0].Channels, numAnchors[0], generator);
        return new Rpn(inFeatures, head, anchors, new Matcher(r.IouThresholds.ToArray(), MatcherLabels(r.IouThresholds.Count, true), allowLowQualityMatches: true),
                       new Box2BoxTransform(Weights(r.BboxRegWeights, "MODEL.RPN.BBOX_REG_WEIGHTS")),
                       new BalancedPositiveNegativeSampler(r.BatchSizePerImage, r.PositiveFraction), generator,
                       (r.PreNmsTopkTrain, r.PreNmsTopkTest), (r.PostNmsTopkTrain, r.PostNmsTopkTest), r.NmsThresh,
                       smoothL1Beta: r.SmoothL1Beta, lossWeight: r.LossWeight, boxRegLossWeight: r.BboxRegLossWeight);
    }

    /// <summary>StandardROIHeads.from_config (box branch): pooler over MODEL.ROI_HEADS.IN_FEATURES, 2-FC head, predictor, and
    /// the long-tail components of MODEL.LONG_TAIL.</summary>
    public static StandardRoiHeads BuildRoiHeads(EngineConfig config, IReadOnlyDictionary<string, ShapeSpec> shapes, Generator generator,
                                                 ClassStatistics? statistics = null)
    {
        var m = config.Model;
        var h = m.RoiHeads;
        var b = m.RoiBoxHead;
        var inFeatures = h.InFeatures.ToArray();
        var specs = inFeatures.Select(f => Shape(shapes, f, "MODEL.ROI_HEADS.IN_FEATURES")).ToArray();
        if (specs.Select(s => s.Channels).Distinct().Count() != 1)
            throw new ArgumentException($"DetectorBuilder: the ROI heads' input features [{string.Join(", ", inFeatures)}] must share one channel count, got [{string.Join(", ", specs.Select(s => s.Channels))}].");
        var pooler = new RoiPooler((b.PoolerResolution, b.PoolerResolution), specs.Select(s => 1.0 / s.Stride).ToArray(), b.PoolerSamplingRatio);
        var boxHead = new FastRcnnConvFcHead((specs[0].Channels, b.PoolerResolution, b.PoolerResolution), b.NumFc, b.FcDim, generator);
        if (m.LongTail.GradientTransfuser != GradientTransfuser.None && b.ClsAgnosticBboxReg)
            throw new ArgumentException("DetectorBuilder: MODEL.LONG_TAIL.GRADIENT_TRANSFUSER needs class-specific box regression; MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG is true.");
        var lt = LongTailComponents.FromConfig(m, b.FcDim, statistics, generator);
        try
        {
            var predictor = new FastRcnnOutputLayers(b.FcDim, h.NumClasses, generator, new Box2BoxTransform(Weights(b.BboxRegWeights, "MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS")),
                                                     lt.ClassificationLoss, b.ClsAgnosticBboxReg, b.SmoothL1Beta, b.BboxRegLossWeight,
                                                     h.ScoreThreshTest, h.NmsThreshTest, config.Test.DetectionsPerImage,
                                                     lt.Classifier, lt.ClassifierBias, lt.Calibrator, lt.GradientTransfuser);
            return new StandardRoiHeads(inFeatures, pooler, boxHead, predictor, new Matcher(h.IouThresholds.ToArray(), MatcherLabels(h.IouThresholds.Count, false)),
                                        new BalancedPositiveNegativeSampler(h.BatchSizePerImage, h.PositiveFraction), generator, lt.EmbeddingAugmenter, h.ProposalAppendGt);
        }
        catch
        {
            lt.ClassificationLoss.Dispose();
            lt.EmbeddingAugmenter?.Dispose();
            lt.Calibrator?.Dispose();
            lt.GradientTransfuser?.Dispose();
            boxHead.Dispose();
            throw;
        }
    }

    /// <summary>detectron2's IOU_LABELS for n thresholds: negative below the first, positive at or above the last,
    /// ignored between (RPN [0, −1, 1]; ROI heads [0, 1]).</summary>
    private static int[] MatcherLabels(int thresholds, bool rpn)
    {
        if (thresholds == 0) throw new ArgumentException($"DetectorBuilder: the {(rpn ? "RPN" : "ROI heads")} IoU thresholds list is empty.");
        return [0, .. Enumerable.Repeat(-1, thresholds - 1), 1];
    }

    private static ShapeSpec Shape(IReadOnlyDictionary<string, ShapeSpec> shapes, string name, string key) =>
        shapes.TryGetValue(name, out var s) ? s
            : throw new ArgumentException($"DetectorBuilder: {key} names '{name}', but the backbone outputs [{string.Join(", ", shapes.Keys)}].");

    private static BoxCoderWeights Weights(IReadOnlyList<double> w, string key) =>
        w.Count == 4 ? new BoxCoderWeights(w[0], w[1], w[2], w[3])
            : throw new ArgumentException($"DetectorBuilder: {key} must hold 4 weights (dx, dy, dw, dh), got [{string.Join(", ", w)}].");

    private static NormKind Norm(NormType type, string key) => type switch
    {
        NormType.None => NormKind.None,
        NormType.FrozenBatchNorm => NormKind.FrozenBatchNorm,
        NormType.GroupNorm => NormKind.GroupNorm,
        NormType.BatchNorm => NormKind.BatchNorm,
        _ => throw new ArgumentException($"DetectorBuilder: {key} = {type} is not a known normalization; use FrozenBN, BN, GN or \"\"."),
    };
}
