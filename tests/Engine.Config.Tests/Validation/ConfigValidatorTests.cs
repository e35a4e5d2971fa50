// Semantic checks after binding: each rule fires on the value that breaks it, with the key path, the bad
// value and where it was set; the shipped defaults pass; several problems are reported together.
namespace Engine.Config.Tests.Validation;

public sealed class ConfigValidatorTests
{
    private static string Error(params string[] overrides) =>
        Assert.Throws<ConfigException>(() => ConfigLoader.LoadText("SEED: 1\n", "inline.yaml", overrides)).Message;

    [Fact]
    public void DefaultsAreValid() => Assert.Empty(ConfigValidator.Check(new EngineConfig()));

    [Theory]
    [InlineData("SOLVER.STEPS=[60000, 60000]", "SOLVER.STEPS[1]", "strictly increasing")]
    [InlineData("SOLVER.STEPS=[90000]", "SOLVER.STEPS[0]", "MAX_ITER")]
    [InlineData("SOLVER.STEPS=[0, 10]", "SOLVER.STEPS[0]", "1..MAX_ITER-1")]
    [InlineData("MODEL.RPN.POSITIVE_FRACTION=0", "MODEL.RPN.POSITIVE_FRACTION", "(0, 1]")]
    [InlineData("MODEL.ROI_HEADS.POSITIVE_FRACTION=1.5", "MODEL.ROI_HEADS.POSITIVE_FRACTION", "(0, 1]")]
    [InlineData("MODEL.ROI_HEADS.NUM_CLASSES=0", "MODEL.ROI_HEADS.NUM_CLASSES", "> 0")]
    [InlineData("MODEL.RESNETS.DEPTH=152", "MODEL.RESNETS.DEPTH", "{18, 34, 50, 101}")]
    [InlineData("MODEL.FPN.IN_FEATURES=[res1, res2]", "MODEL.FPN.IN_FEATURES", "[res1] not among MODEL.RESNETS.OUT_FEATURES")]
    [InlineData("MODEL.RESNETS.OUT_FEATURES=[res3, res4, res5]", "MODEL.FPN.IN_FEATURES", "[res2] not among")]
    [InlineData("MODEL.ROI_HEADS.IN_FEATURES=[p2, p7]", "MODEL.ROI_HEADS.IN_FEATURES", "[p7] not among the FPN's outputs [p2, p3, p4, p5, p6]")]
    [InlineData("MODEL.RPN.IN_FEATURES=[p2, p2, p3, p4, p5]", "MODEL.RPN.IN_FEATURES", "more than once")]
    [InlineData("MODEL.ANCHOR_GENERATOR.SIZES=[[32], [64]]", "MODEL.ANCHOR_GENERATOR.SIZES", "one list per RPN input level (5)")]
    [InlineData("MODEL.ANCHOR_GENERATOR.SIZES=[[32], [64, 80], [128], [256], [512]]", "MODEL.ANCHOR_GENERATOR", "same number of anchors")]
    [InlineData("MODEL.RPN.IOU_THRESHOLDS=[0.7, 0.3]", "MODEL.RPN.IOU_THRESHOLDS", "first ≤ second")]
    [InlineData("MODEL.ROI_HEADS.SCORE_THRESH_TEST=1", "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "[0, 1)")]
    [InlineData("MODEL.DEVICE=gpu", "MODEL.DEVICE", "\"cpu\", \"cuda\" or \"cuda:N\"")]
    [InlineData("MODEL.PIXEL_STD=[1, 0, 1]", "MODEL.PIXEL_STD", "> 0")]
    [InlineData("MODEL.PIXEL_MEAN=[1, 2]", "MODEL.PIXEL_MEAN", "3 values")]
    [InlineData("MODEL.FPN.NORM=FrozenBN", "MODEL.FPN.NORM", "trained")]
    [InlineData("MODEL.ROI_BOX_HEAD.NUM_FC=0", "MODEL.ROI_BOX_HEAD.NUM_FC", "at least 1")]
    [InlineData("MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS=[10, 10, 5]", "MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS", "4 values")]
    [InlineData("TEST.DETECTIONS_PER_IMAGE=0", "TEST.DETECTIONS_PER_IMAGE", "> 0")]
    [InlineData("DATALOADER.SAMPLER_TRAIN=RepeatFactorTrainingSampler", "DATALOADER.REPEAT_THRESHOLD", "threshold > 0")]
    [InlineData("DATASETS.TRAIN=[lvis_v1_trian]", "DATASETS.TRAIN", "did you mean 'lvis_v1_train'")]
    [InlineData("SOLVER.WARMUP_FACTOR=0", "SOLVER.WARMUP_FACTOR", "(0, 1]")]
    [InlineData("SOLVER.MOMENTUM=1", "SOLVER.MOMENTUM", "[0, 1)")]
    [InlineData("INPUT.MIN_SIZE_TRAIN=[]", "INPUT.MIN_SIZE_TRAIN", "at least one size")]
    [InlineData("INPUT.MIN_SIZE_TRAIN_SAMPLING=range", "INPUT.MIN_SIZE_TRAIN", "[low, high]")]
    [InlineData("MODEL.LONG_TAIL.EMBEDDING_AUGMENTER=fhm", "MODEL.LONG_TAIL.EMBEDDING_AUGMENTER", "fcbl")]
    [InlineData("MODEL.LONG_TAIL.CLASSIFIER.PRIOR_PROB=0.001", "MODEL.LONG_TAIL.CLASSIFIER.PRIOR_PROB", "not a sigmoid loss")]
    [InlineData("MODEL.LONG_TAIL.RIO.REPLAY_PER_CLASS=61", "MODEL.LONG_TAIL.RIO.REPLAY_PER_CLASS", "0..QUEUE_CAPACITY (60)")]
    [InlineData("MODEL.LONG_TAIL.BAGS.GROUP_BOUNDARIES=[10, 10]", "MODEL.LONG_TAIL.BAGS.GROUP_BOUNDARIES", "strictly increasing")]
    [InlineData("MODEL.LONG_TAIL.CRAT.TEMPERATURE=0", "MODEL.LONG_TAIL.CRAT.TEMPERATURE", "> 0")]
    [InlineData("MODEL.LONG_TAIL.LOGN.STATISTICS_MOMENTUM=0", "MODEL.LONG_TAIL.LOGN.STATISTICS_MOMENTUM", "(0, 1]")]
    [InlineData("MODEL.LONG_TAIL.BACL.FHM.JITTERS_PER_GT=17", "MODEL.LONG_TAIL.BACL.FHM.JITTERS_PER_GT", "1..16")]
    [InlineData("MODEL.TRAINABLE_MODULES=[mask_head]", "MODEL.TRAINABLE_MODULES", "MASK_ON is false")]
    [InlineData("MODEL.TRAINABLE_MODULES=[classifier, classifier]", "MODEL.TRAINABLE_MODULES", "more than once")]
    public void RuleFiresWithKeyAndLocation(string argument, string key, string expected)
    {
        var message = Error(argument);
        Assert.Contains(key + ":", message);
        Assert.Contains(expected, message);
        Assert.Contains("--set " + argument, message);
    }

    [Theory]
    [InlineData("MODEL.RESNETS.NORM=GN")]                   // 64 and 256 channels divide into 32 groups
    [InlineData("MODEL.LONG_TAIL.CALIBRATOR=logn")]         // the default loss is softmax
    [InlineData("SOLVER.STEPS=[]")]                         // a constant learning rate
    [InlineData("MODEL.ANCHOR_GENERATOR.SIZES=[[32, 64, 128, 256, 512]]")]  // detectron2's defaults.py form: one list for all levels
    [InlineData("MODEL.DEVICE=cuda:3")]
    public void BoundaryValuesAreAccepted(string argument) => ConfigLoader.LoadText("SEED: 1\n", "inline.yaml", [argument]);

    [Fact]
    public void CombinationRules()
    {
        Assert.Contains("LogN calibrates softmax heads",
            Error("MODEL.LONG_TAIL.CLASSIFICATION_LOSS=eqlv2", "MODEL.LONG_TAIL.CALIBRATOR=logn"));
        Assert.Contains("class-specific box regression",
            Error("MODEL.LONG_TAIL.GRADIENT_TRANSFUSER=crat", "MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG=true"));
        Assert.Contains("softmax loss only",
            Error("MODEL.LONG_TAIL.CLASSIFICATION_LOSS=seesaw", "MODEL.LONG_TAIL.REWEIGHT.TYPE=inverse_frequency"));
        Assert.Contains("multiple of 32",
            Error("MODEL.RESNETS.NORM=GN", "MODEL.RESNETS.STEM_OUT_CHANNELS=48"));
        // Valid combinations load.
        ConfigLoader.LoadText("", overrides: ["MODEL.LONG_TAIL.CLASSIFICATION_LOSS=fcbl", "MODEL.LONG_TAIL.EMBEDDING_AUGMENTER=fhm"]);
        ConfigLoader.LoadText("", overrides: ["MODEL.LONG_TAIL.CLASSIFICATION_LOSS=eqlv2", "MODEL.LONG_TAIL.GRADIENT_TRANSFUSER=crat"]);
    }

    [Fact]
    public void AllProblemsAreReportedTogetherWithTheirFileLines()
    {
        using var dir = new TempConfigDir();
        var path = dir.Write("many.yaml", """
            SOLVER:
              MAX_ITER: 100
              WARMUP_ITERS: 10
              STEPS: [50, 200]
            MODEL:
              ROI_HEADS:
                NUM_CLASSES: -3
            """);
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(path));
        Assert.Contains("2 problems", e.Message);
        Assert.Contains("many.yaml:4:15: SOLVER.STEPS[1]: 200 must be in 1..MAX_ITER-1 (99)", e.Message);
        Assert.Contains("many.yaml:7:18: MODEL.ROI_HEADS.NUM_CLASSES: must be > 0", e.Message);
    }

    [Fact]
    public void ProblemWithADefaultValueSaysSo()
    {
        // The default RPN IoU thresholds are replaced by one that breaks the rule elsewhere: nothing was
        // written for the key at fault and no related key was written either.
        var issues = ConfigValidator.Check(new EngineConfig { Model = new ModelConfig { Rpn = new RpnConfig { IouThresholds = [0.9, 0.1] } } });
        var e = ConfigValidator.ToException(issues, new Dictionary<string, SourceLocation>());
        Assert.Contains("(default value): MODEL.RPN.IOU_THRESHOLDS", e.Message);
        // A default broken by a related key that was written points at that key.
        var e2 = Assert.Throws<ConfigException>(() => ConfigLoader.LoadText("SOLVER:\n  MAX_ITER: 1000\n", "x.yaml"));
        Assert.Contains("x.yaml:2:13: SOLVER.STEPS[0]: 60000 must be in 1..MAX_ITER-1 (999)", e2.Message);
    }

    [Fact]
    public void RecordsBuiltInCodeValidateToo()
    {
        var bad = new EngineConfig { Solver = new SolverConfig { BaseLr = -1 } };
        var e = Assert.Throws<ConfigException>(bad.Validate);
        Assert.Contains("SOLVER.BASE_LR: must be > 0, got -1", e.Message);
        new EngineConfig().Validate();
    }
}
