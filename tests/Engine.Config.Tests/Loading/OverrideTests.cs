// `--set KEY=VALUE` overrides: applied after every file, values typed by their key, lists in flow or tuple
// form, nested mappings merged, and unknown keys rejected with the closest valid keys.
namespace Engine.Config.Tests.Loading;

public sealed class OverrideTests
{
    private static EngineConfig Load(params string[] overrides) => ConfigLoader.LoadText("SEED: 5\n", "inline.yaml", overrides);

    [Fact]
    public void ScalarsAreTypedByTheirKey()
    {
        var c = Load("MODEL.DEVICE=cuda:1", "SOLVER.BASE_LR=1e-3", "SOLVER.MAX_ITER=1234", "SOLVER.STEPS=[1000]", "SOLVER.NESTEROV=true",
                     "DATALOADER.SAMPLER_TRAIN=RepeatFactorTrainingSampler", "DATALOADER.REPEAT_THRESHOLD=0.001",
                     "MODEL.RESNETS.NORM=GN", "SEED=-7", "OUTPUT_DIR=runs/a b");
        Assert.Equal("cuda:1", c.Model.Device);
        Assert.Equal(0.001, c.Solver.BaseLr);
        Assert.Equal(1234, c.Solver.MaxIter);
        Assert.True(c.Solver.Nesterov);
        Assert.Equal(TrainSampler.RepeatFactorTrainingSampler, c.Dataloader.SamplerTrain);
        Assert.Equal(NormType.GroupNorm, c.Model.Resnets.Norm);
        Assert.Equal(-7, c.Seed);
        Assert.Equal("runs/a b", c.OutputDir);
    }

    [Fact]
    public void OverridesApplyAfterTheFile()
    {
        using var dir = new TempConfigDir();
        dir.Write("base.yaml", "SOLVER:\n  BASE_LR: 0.5\n");
        var child = dir.Write("child.yaml", "_base_: base.yaml\nSOLVER:\n  BASE_LR: 0.25\n");
        var c = ConfigLoader.Load(child, ["SOLVER.BASE_LR=0.125"]);
        Assert.Equal(0.125, c.Solver.BaseLr);
        // The later of two overrides of one key wins.
        Assert.Equal(0.0625, ConfigLoader.Load(child, ["SOLVER.BASE_LR=0.125", "SOLVER.BASE_LR=0.0625"]).Solver.BaseLr);
    }

    [Fact]
    public void ListsInFlowAndTupleForm()
    {
        var c = Load("SOLVER.MAX_ITER=90000", "SOLVER.STEPS=[60000,80000]", "INPUT.MIN_SIZE_TRAIN=(640, 800)",
                     "MODEL.ANCHOR_GENERATOR.SIZES=[[16], [32], [64], [128], [256]]", "DATASETS.TEST=[]");
        Assert.Equal([60000, 80000], c.Solver.Steps);
        Assert.Equal([640, 800], c.Input.MinSizeTrain);
        Assert.Equal([[16.0], [32.0], [64.0], [128.0], [256.0]], c.Model.AnchorGenerator.Sizes);
        Assert.Empty(c.Datasets.Test);
    }

    [Fact]
    public void NullSetsANullableKey()
    {
        var c = Load("SOLVER.WEIGHT_DECAY_BIAS=0.0", "MODEL.LONG_TAIL.CLASSIFICATION_LOSS=eql", "MODEL.LONG_TAIL.CLASSIFIER.PRIOR_PROB=0.01");
        Assert.Equal(0.0, c.Solver.WeightDecayBias);
        Assert.Equal(0.01, c.Model.LongTail.Classifier.PriorProb);
        var d = Load("SOLVER.WEIGHT_DECAY_BIAS=null");
        Assert.Null(d.Solver.WeightDecayBias);
        var e = Assert.Throws<ConfigException>(() => Load("SOLVER.MAX_ITER=null"));
        Assert.Contains("--set SOLVER.MAX_ITER=null", e.Message);
        Assert.Contains("integer", e.Message);
    }

    [Fact]
    public void FlowMappingAddsACatalogEntry()
    {
        var c = Load("DATASETS.CATALOG.mine={JSON: a/train.json, IMAGE_ROOT: a/images, FORMAT: coco}", "DATASETS.TRAIN=[mine]",
                     "DATASETS.CATALOG.lvis_v1_val.JSON=elsewhere/val.json");
        Assert.Equal(new DatasetEntry { Json = "a/train.json", ImageRoot = "a/images", Format = DatasetFormat.Coco }, c.Datasets.Catalog["mine"]);
        Assert.Equal("elsewhere/val.json", c.Datasets.Catalog["lvis_v1_val"].Json);
        Assert.Equal("coco", c.Datasets.Catalog["lvis_v1_val"].ImageRoot);   // the rest of the entry is kept
        Assert.Equal(Path.Combine("datasets", "a/train.json"), c.Datasets.Resolve("mine").Json);
    }

    [Theory]
    [InlineData("SOLVER.BASE_RL=0.1", "SOLVER.BASE_LR")]
    [InlineData("solver.base_lr=0.1", "SOLVER.BASE_LR")]
    [InlineData("ROI_HEADS.NUM_CLASSES=3", "MODEL.ROI_HEADS.NUM_CLASSES")]
    [InlineData("MODEL.ROI_HEADS.SCORE_THRESH=0.1", "MODEL.ROI_HEADS.SCORE_THRESH_TEST")]
    [InlineData("MODEL.RESNET.DEPTH=18", "MODEL.RESNETS.DEPTH")]
    [InlineData("DATALOADER.REPEAT_THRESH=0.001", "DATALOADER.REPEAT_THRESHOLD")]
    [InlineData("MODEL.LONG_TAIL.EQLV2.GAMA=3", "MODEL.LONG_TAIL.EQLV2.GAMMA")]
    [InlineData("DATASETS.CATALOG.lvis_v1_train.JSN=x", "DATASETS.CATALOG.lvis_v1_train.JSON")]
    public void UnknownKeySuggestsTheClosestValidKeys(string argument, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => Load(argument));
        Assert.Contains("unknown key", e.Message);
        Assert.Contains("--set " + argument, e.Message);
        var suggestions = e.Message[(e.Message.IndexOf("did you mean ", StringComparison.Ordinal) + "did you mean ".Length)..].TrimEnd('?').Split(", ");
        Assert.Equal(expected, suggestions[0]);
        Assert.True(suggestions.Length <= 3, e.Message);
    }

    [Fact]
    public void UnknownKeyFarFromAnyValidKeyListsTheValidKeysAtThatLevel()
    {
        var e = Assert.Throws<ConfigException>(() => Load("MODEL.ZZZZZZZZZZZZZZZZ=1"));
        Assert.Contains("valid keys under MODEL:", e.Message);
        Assert.Contains("RESNETS", e.Message);
    }

    [Fact]
    public void SettingInsideAScalarKeyIsRejected()
    {
        var e = Assert.Throws<ConfigException>(() => Load("SOLVER.BASE_LR.X=1"));
        Assert.Contains("unknown key", e.Message);
    }

    [Theory]
    [InlineData("SOLVER.BASE_LR", "KEY=VALUE")]
    [InlineData("=3", "dotted path")]
    [InlineData("SOLVER..BASE_LR=3", "dotted path")]
    [InlineData("SOLVER.STEPS=[1, 2", "cannot read the value")]
    [InlineData("SOLVER.MAX_ITER=12.5", "integer")]
    [InlineData("SOLVER.BASE_LR=fast", "number")]
    [InlineData("SOLVER.NESTEROV=yes", "true or false")]
    [InlineData("SOLVER.STEPS=100", "list")]
    [InlineData("SOLVER=0.1", "mapping")]
    [InlineData("SOLVER.BASE_LR=.nan", "number")]
    public void MalformedOverridesNameTheArgument(string argument, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => Load(argument));
        Assert.Contains(expected, e.Message);
        Assert.Contains(argument.Split('=')[0], e.Message);
    }

    [Fact]
    public void EnumValueTypoSuggestsTheSpelling()
    {
        var e = Assert.Throws<ConfigException>(() => Load("DATALOADER.SAMPLER_TRAIN=RepeatFactorSampler"));
        Assert.Contains("Did you mean \"RepeatFactorTrainingSampler\"", e.Message);
        Assert.Contains("\"ClassAwareSampler\"", e.Message);   // the allowed values are listed
    }

    [Fact]
    public void ValidationErrorsPointAtTheOverride()
    {
        var e = Assert.Throws<ConfigException>(() => Load("SOLVER.STEPS=[80000, 60000]"));
        Assert.Contains("--set SOLVER.STEPS=[80000, 60000]: SOLVER.STEPS[1]", e.Message);
        Assert.Contains("strictly increasing", e.Message);
    }
}
