// Absent keys take detectron2's values for a Faster R-CNN FPN run: config/defaults.py with
// configs/Base-RCNN-FPN.yaml applied. The expected numbers are written out here from those two files,
// not read from the records, and checked after loading an empty config.
namespace Engine.Config.Tests.Sections;

public sealed class DefaultsTests
{
    private static readonly EngineConfig Loaded = ConfigLoader.LoadText("");

    [Fact]
    public void ModelDefaults()
    {
        var m = Loaded.Model;
        Assert.Equal("cuda", m.Device);
        Assert.Equal("", m.Weights);
        Assert.Equal([103.530, 116.280, 123.675], m.PixelMean);
        Assert.Equal([1.0, 1.0, 1.0], m.PixelStd);
        Assert.False(m.MaskOn);
        Assert.Equal(2, m.Backbone.FreezeAt);

        Assert.Equal(50, m.Resnets.Depth);
        Assert.Equal(["res2", "res3", "res4", "res5"], m.Resnets.OutFeatures);        // Base-RCNN-FPN
        Assert.Equal(1, m.Resnets.NumGroups);
        Assert.Equal(NormType.FrozenBatchNorm, m.Resnets.Norm);
        Assert.Equal(64, m.Resnets.WidthPerGroup);
        Assert.True(m.Resnets.StrideIn1x1);
        Assert.Equal(256, m.Resnets.Res2OutChannels);
        Assert.Equal(64, m.Resnets.StemOutChannels);

        Assert.Equal(["res2", "res3", "res4", "res5"], m.Fpn.InFeatures);             // Base-RCNN-FPN
        Assert.Equal(256, m.Fpn.OutChannels);
        Assert.Equal(NormType.None, m.Fpn.Norm);

        Assert.Equal([[32.0], [64.0], [128.0], [256.0], [512.0]], m.AnchorGenerator.Sizes); // Base-RCNN-FPN
        Assert.Equal([[0.5, 1.0, 2.0]], m.AnchorGenerator.AspectRatios);
        Assert.Equal(0.0, m.AnchorGenerator.Offset);

        var rpn = m.Rpn;
        Assert.Equal(["p2", "p3", "p4", "p5", "p6"], rpn.InFeatures);                 // Base-RCNN-FPN
        Assert.Equal([0.3, 0.7], rpn.IouThresholds);
        Assert.Equal(256, rpn.BatchSizePerImage);
        Assert.Equal(0.5, rpn.PositiveFraction);
        Assert.Equal(BboxRegLossType.SmoothL1, rpn.BboxRegLossType);
        Assert.Equal(1.0, rpn.BboxRegLossWeight);
        Assert.Equal([1.0, 1.0, 1.0, 1.0], rpn.BboxRegWeights);
        Assert.Equal(0.0, rpn.SmoothL1Beta);
        Assert.Equal(1.0, rpn.LossWeight);
        Assert.Equal(2000, rpn.PreNmsTopkTrain);                                      // Base-RCNN-FPN (defaults.py: 12000)
        Assert.Equal(1000, rpn.PreNmsTopkTest);                                       // Base-RCNN-FPN (defaults.py: 6000)
        Assert.Equal(1000, rpn.PostNmsTopkTrain);                                     // Base-RCNN-FPN (defaults.py: 2000)
        Assert.Equal(1000, rpn.PostNmsTopkTest);
        Assert.Equal(0.7, rpn.NmsThresh);

        var h = m.RoiHeads;
        Assert.Equal(80, h.NumClasses);
        Assert.Equal(["p2", "p3", "p4", "p5"], h.InFeatures);                          // Base-RCNN-FPN
        Assert.Equal([0.5], h.IouThresholds);
        Assert.Equal(512, h.BatchSizePerImage);
        Assert.Equal(0.25, h.PositiveFraction);
        Assert.Equal(0.05, h.ScoreThreshTest);
        Assert.Equal(0.5, h.NmsThreshTest);
        Assert.True(h.ProposalAppendGt);

        var b = m.RoiBoxHead;
        Assert.Equal(2, b.NumFc);                                                     // Base-RCNN-FPN
        Assert.Equal(1024, b.FcDim);
        Assert.Equal(7, b.PoolerResolution);                                          // Base-RCNN-FPN
        Assert.Equal(0, b.PoolerSamplingRatio);
        Assert.Equal([10.0, 10.0, 5.0, 5.0], b.BboxRegWeights);
        Assert.Equal(BboxRegLossType.SmoothL1, b.BboxRegLossType);
        Assert.Equal(1.0, b.BboxRegLossWeight);
        Assert.Equal(0.0, b.SmoothL1Beta);
        Assert.False(b.ClsAgnosticBboxReg);

        Assert.Equal(4, m.RoiMaskHead.NumConv);                                       // Base-RCNN-FPN
        Assert.Equal(256, m.RoiMaskHead.ConvDim);
        Assert.Equal(14, m.RoiMaskHead.PoolerResolution);
        Assert.Equal(0, m.RoiMaskHead.PoolerSamplingRatio);
        Assert.False(m.RoiMaskHead.ClsAgnosticMask);
    }

    [Fact]
    public void InputDataLoaderSolverTestDefaults()
    {
        var i = Loaded.Input;
        Assert.Equal([640, 672, 704, 736, 768, 800], i.MinSizeTrain);                 // Base-RCNN-FPN (defaults.py: 800)
        Assert.Equal(MinSizeSampling.Choice, i.MinSizeTrainSampling);
        Assert.Equal(1333, i.MaxSizeTrain);
        Assert.Equal(800, i.MinSizeTest);
        Assert.Equal(1333, i.MaxSizeTest);
        Assert.Equal(RandomFlip.Horizontal, i.RandomFlip);
        Assert.Equal(PixelFormat.BGR, i.Format);

        Assert.Equal(["coco_2017_train"], Loaded.Datasets.Train);                     // Base-RCNN-FPN
        Assert.Equal(["coco_2017_val"], Loaded.Datasets.Test);

        var d = Loaded.Dataloader;
        Assert.Equal(4, d.NumWorkers);
        Assert.True(d.AspectRatioGrouping);
        Assert.Equal(TrainSampler.TrainingSampler, d.SamplerTrain);
        Assert.Equal(0.0, d.RepeatThreshold);
        Assert.True(d.RepeatSqrt);
        Assert.True(d.FilterEmptyAnnotations);

        var s = Loaded.Solver;
        Assert.Equal(16, s.ImsPerBatch);
        Assert.Equal(0.02, s.BaseLr);                                                 // Base-RCNN-FPN (defaults.py: 0.001)
        Assert.Equal(0.9, s.Momentum);
        Assert.False(s.Nesterov);
        Assert.Equal(0.0001, s.WeightDecay);
        Assert.Equal(0.0, s.WeightDecayNorm);
        Assert.Null(s.WeightDecayBias);
        Assert.Equal(1.0, s.BiasLrFactor);
        Assert.Equal(90000, s.MaxIter);                                               // Base-RCNN-FPN (defaults.py: 40000)
        Assert.Equal([60000, 80000], s.Steps);                                        // Base-RCNN-FPN (defaults.py: (30000,))
        Assert.Equal(0.1, s.Gamma);
        Assert.Equal(0.001, s.WarmupFactor);
        Assert.Equal(1000, s.WarmupIters);
        Assert.Equal(WarmupMethod.Linear, s.WarmupMethod);
        Assert.Equal(5000, s.CheckpointPeriod);
        Assert.False(s.ClipGradients.Enabled);
        Assert.Equal(ClipType.Value, s.ClipGradients.ClipType);
        Assert.Equal(1.0, s.ClipGradients.ClipValue);
        Assert.Equal(2.0, s.ClipGradients.NormType);

        Assert.Equal(0, Loaded.Test.EvalPeriod);
        Assert.Equal(100, Loaded.Test.DetectionsPerImage);
        Assert.Equal(-1, Loaded.Seed);
        Assert.Equal("./output", Loaded.OutputDir);
        Assert.Equal(2, Loaded.Version);
    }

    [Fact]
    public void LongTailDefaultsAreTheSpecs()
    {
        // long-tail-methods.md: 1.4 EQL, 1.5 EQLv2, 1.6 Seesaw, 1.7 Federated, 6.2 BAGS, 4.2/4.3 BACL, 2 LogN, 3.5 CRAT, 5.4 RIO.
        var lt = Loaded.Model.LongTail;
        Assert.Equal(ClassificationLoss.Softmax, lt.ClassificationLoss);
        Assert.Equal(EmbeddingAugmenter.None, lt.EmbeddingAugmenter);
        Assert.Equal(Calibrator.None, lt.Calibrator);
        Assert.Equal(GradientTransfuser.None, lt.GradientTransfuser);
        Assert.Equal(new ClassifierConfig { Type = ClassifierType.Linear, Scale = 20, PriorProb = null }, lt.Classifier);
        Assert.Equal(new ReweightConfig { Type = ReweightType.None, Beta = 0.999, ClipMin = 0.1, ClipMax = 5 }, lt.Reweight);
        Assert.Equal(0.00177, lt.Eql.Lambda);
        Assert.Equal(new Eqlv2Config { Gamma = 12, Mu = 0.8, Alpha = 4, TestWithObjectness = true }, lt.Eqlv2);
        Assert.Equal(new SeesawConfig { P = 0.8, Q = 2.0, Eps = 0.01, LossWeight = 1 }, lt.Seesaw);
        Assert.Equal(new FederatedConfig { NumClasses = 50, FreqWeightPower = 0.5 }, lt.Federated);
        Assert.Equal([10, 100, 1000], lt.Bags.GroupBoundaries);
        Assert.Equal(8.0, lt.Bags.OthersSampleRatio);
        Assert.Equal(new FcblConfig { Alpha = 0.85, ProbThresh = 0.7, LossWeight = 1, Reweight = true }, lt.Bacl.Fcbl);
        Assert.Equal(new FhmConfig { Decay = 0.1, NumClasses = 8, FeaturesPerClass = 12, JittersPerGt = 16, JitterScale = 1.0 / 6 }, lt.Bacl.Fhm);
        Assert.Equal(new LognConfig { Mode = LognMode.Posthoc, Statistics = LognStatistics.Ema, Momentum = 1e-4, StatisticsMomentum = 5e-5,
                                      StatisticsEpochs = 1, VarianceFloor = 1e-11, Eps = 1e-5 }, lt.Logn);
        Assert.Equal(new CratConfig { FisherMomentum = 0.01, Temperature = 0.05, BoxWeight = 0.001, MaskWeight = 0.01,
                                      Query = CratQuery.FirstSample, MaskWeights = CratMaskWeights.Box }, lt.Crat);
        Assert.Equal(new RioConfig { ReplayPerClass = 5, QueueCapacity = 60, RandomSelect = false, BankMaxImages = 10 }, lt.Rio);
    }

    [Fact]
    public void CatalogHoldsLvisV1AndTheSyntheticSet()
    {
        var d = Loaded.Datasets;
        Assert.Equal("datasets", d.Root);
        Assert.Equal(new DatasetEntry { Json = "lvis/lvis_v1_train.json", ImageRoot = "coco", Format = DatasetFormat.Lvis }, d.Catalog["lvis_v1_train"]);
        Assert.Equal(new DatasetEntry { Json = "lvis/lvis_v1_val.json", ImageRoot = "coco", Format = DatasetFormat.Lvis }, d.Catalog["lvis_v1_val"]);
        Assert.Equal(new DatasetEntry { Json = "synth_lt/train.json", ImageRoot = "synth_lt", Format = DatasetFormat.Coco }, d.Catalog["synth_lt_train"]);
        Assert.Equal(new DatasetEntry { Json = "synth_lt/val.json", ImageRoot = "synth_lt", Format = DatasetFormat.Coco }, d.Catalog["synth_lt_val"]);
        Assert.Equal(Path.Combine("datasets", "lvis", "lvis_v1_val.json"), d.Resolve("lvis_v1_val").Json);
        var e = Assert.Throws<ConfigException>(() => d.Resolve("lvis_v2_val"));
        Assert.Contains("lvis_v1_val", e.Message);
    }

    [Fact]
    public void LoadedDefaultsEqualTheRecordDefaults() => Assert.Equal(new EngineConfig(), Loaded);
}
