// Binding YAML onto the records: case-sensitive UPPER_SNAKE keys, type errors and unknown keys reported
// with file:line:col and the key path, YAML syntax errors with their position, anchors and aliases.
namespace Engine.Config.Tests.Binding;

public sealed class ConfigBinderTests
{
    private static ConfigException LoadError(string yaml)
    {
        using var dir = new TempConfigDir();
        var path = dir.Write("bad.yaml", yaml);
        return Assert.Throws<ConfigException>(() => ConfigLoader.Load(path));
    }

    [Fact]
    public void UnknownKeyInAFileNamesFileLineColumnAndSuggestion()
    {
        var e = LoadError("MODEL:\n  ROI_HEADS:\n    NUM_CLASSES: 3\n    SCORE_THRES_TEST: 0.1\n");
        Assert.Contains("bad.yaml:4:5: MODEL.ROI_HEADS.SCORE_THRES_TEST: unknown key; did you mean MODEL.ROI_HEADS.SCORE_THRESH_TEST", e.Message);
    }

    [Fact]
    public void KeysAreCaseSensitive()
    {
        var e = LoadError("solver:\n  base_lr: 0.1\n");
        Assert.Contains("bad.yaml:1:1: solver: unknown key; did you mean SOLVER", e.Message);
    }

    [Fact]
    public void TypeErrorNamesFileLineColumnKeyAndExpectation()
    {
        var e = LoadError("SOLVER:\n  BASE_LR: 0.02\n  MAX_ITER: lots\n");
        Assert.Contains("bad.yaml:3:13: SOLVER.MAX_ITER: expected an integer, found 'lots'", e.Message);
    }

    [Fact]
    public void ListElementErrorsNameTheIndex()
    {
        var e = LoadError("SOLVER:\n  STEPS: [100, 2x0]\n");
        Assert.Contains("bad.yaml:2:16: SOLVER.STEPS[1]: expected an integer", e.Message);
    }

    [Fact]
    public void ScalarWhereASectionIsExpected()
    {
        var e = LoadError("MODEL:\n  RPN: 3\n");
        Assert.Contains("bad.yaml:2:8: MODEL.RPN: expected a mapping", e.Message);
    }

    [Fact]
    public void MappingWhereAListIsExpected()
    {
        var e = LoadError("SOLVER:\n  STEPS:\n    A: 1\n");
        Assert.Contains("bad.yaml:3:5: SOLVER.STEPS: expected a list", e.Message);
    }

    [Fact]
    public void DuplicateKeysAreRejected()
    {
        var e = LoadError("SOLVER:\n  BASE_LR: 0.1\n  BASE_LR: 0.2\n");
        Assert.Contains("bad.yaml:3:3: BASE_LR: key appears twice", e.Message);
        Assert.Contains("line 2, column 3", e.Message);
    }

    [Fact]
    public void YamlSyntaxErrorsCarryTheirPosition()
    {
        var e = LoadError("SOLVER:\n  STEPS: [1, 2\n  BASE_LR: 0.1\n");
        Assert.Matches(@"bad\.yaml:\d+:\d+: YAML syntax error", e.Message);
        var e2 = LoadError("MODEL:\n  DEVICE: cpu\n DEPTH: 3\n");
        Assert.Matches(@"bad\.yaml:3:\d+: YAML syntax error", e2.Message);
    }

    [Fact]
    public void SecondDocumentIsRejected()
    {
        var e = LoadError("SEED: 1\n---\nSEED: 2\n");
        Assert.Contains("bad.yaml:2:1", e.Message);
        Assert.Contains("one YAML document", e.Message);
    }

    [Fact]
    public void StringKeyRejectsNullButAcceptsQuotedEmpty()
    {
        var e = LoadError("MODEL:\n  WEIGHTS:\n");
        Assert.Contains("MODEL.WEIGHTS: expected a string, found null", e.Message);
        Assert.Equal("", ConfigLoader.LoadText("MODEL:\n  WEIGHTS: \"\"\n").Model.Weights);
        // A quoted "null" is the string, not null.
        Assert.Equal("null", ConfigLoader.LoadText("MODEL:\n  WEIGHTS: \"null\"\n").Model.Weights);
    }

    [Fact]
    public void EmptySectionKeepsDefaults()
    {
        Assert.Equal(new EngineConfig(), ConfigLoader.LoadText("MODEL:\nSOLVER: {}\n"));
    }

    [Fact]
    public void AnchorsAndAliasesAreResolved()
    {
        var c = ConfigLoader.LoadText("""
            MODEL:
              RESNETS:
                OUT_FEATURES: &stages [res3, res4, res5]
              FPN:
                IN_FEATURES: *stages
              RPN:
                IN_FEATURES: [p3, p4, p5, p6]
              ROI_HEADS:
                IN_FEATURES: [p3, p4, p5]
              ANCHOR_GENERATOR:
                SIZES: [[32], [64], [128], [256]]
            """);
        Assert.Equal(["res3", "res4", "res5"], c.Model.Fpn.InFeatures);
    }

    [Fact]
    public void CustomTagsAreRejected()
    {
        var e = LoadError("SOLVER:\n  BASE_LR: !python 0.1\n");
        Assert.Contains("bad.yaml:2:12", e.Message);
        Assert.Contains("tag", e.Message);
    }

    [Fact]
    public void ExplicitCoreTagsAreAllowed()
    {
        Assert.Equal(0.5, ConfigLoader.LoadText("SOLVER:\n  BASE_LR: !!float 0.5\n").Solver.BaseLr);
    }

    [Fact]
    public void LocationsRecordWhereEachKeyWasSet()
    {
        using var dir = new TempConfigDir();
        dir.Write("base.yaml", "SOLVER:\n  BASE_LR: 0.1\n  GAMMA: 0.5\n");
        var child = dir.Write("child.yaml", "_base_: base.yaml\nSOLVER:\n  BASE_LR: 0.2\n");
        var loaded = ConfigLoader.LoadDetailed(child, ["SEED=4"]);
        Assert.Equal("child.yaml", Path.GetFileName(loaded.Locations["SOLVER.BASE_LR"].Source));
        Assert.Equal(3, loaded.Locations["SOLVER.BASE_LR"].Line);
        Assert.Equal("base.yaml", Path.GetFileName(loaded.Locations["SOLVER.GAMMA"].Source));
        Assert.True(loaded.Locations["SEED"].IsOverride);
        Assert.False(loaded.Locations.ContainsKey("SOLVER.MOMENTUM"));
    }
}
