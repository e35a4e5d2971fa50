// `_base_` inheritance: deep merge of mappings, replacement of scalars and lists, several levels and
// several bases, paths relative to the including file, cycles and missing files.
namespace Engine.Config.Tests.Loading;

public sealed class ConfigLoaderTests
{
    [Fact]
    public void BaseMappingsMergeDeeplyAndScalarsReplace()
    {
        using var dir = new TempConfigDir();
        dir.Write("base.yaml", """
            MODEL:
              DEVICE: cpu
              RPN:
                NMS_THRESH: 0.6
                BATCH_SIZE_PER_IMAGE: 128
              ROI_HEADS:
                NUM_CLASSES: 10
            SOLVER:
              BASE_LR: 0.01
            """);
        var child = dir.Write("child.yaml", """
            _base_: base.yaml
            MODEL:
              RPN:
                NMS_THRESH: 0.65
              ROI_HEADS:
                SCORE_THRESH_TEST: 0.001
            """);
        var c = ConfigLoader.Load(child);
        Assert.Equal("cpu", c.Model.Device);                    // only in the base
        Assert.Equal(0.65, c.Model.Rpn.NmsThresh);              // overridden by the child
        Assert.Equal(128, c.Model.Rpn.BatchSizePerImage);       // sibling of an overridden key survives
        Assert.Equal(10, c.Model.RoiHeads.NumClasses);
        Assert.Equal(0.001, c.Model.RoiHeads.ScoreThreshTest);
        Assert.Equal(0.01, c.Solver.BaseLr);
        Assert.Equal(0.9, c.Solver.Momentum);                   // in neither file: default
    }

    [Fact]
    public void ListsReplaceRatherThanConcatenate()
    {
        using var dir = new TempConfigDir();
        dir.Write("base.yaml", "SOLVER:\n  MAX_ITER: 100\n  WARMUP_ITERS: 5\n  STEPS: [10, 20, 30]\nINPUT:\n  MIN_SIZE_TRAIN: [600, 700, 800]\n");
        var child = dir.Write("child.yaml", "_base_: base.yaml\nSOLVER:\n  STEPS: [50]\n");
        var c = ConfigLoader.Load(child);
        Assert.Equal([50], c.Solver.Steps);
        Assert.Equal([600, 700, 800], c.Input.MinSizeTrain);
    }

    [Fact]
    public void MultiLevelInheritanceAppliesNearestFileLast()
    {
        using var dir = new TempConfigDir();
        dir.Write("a.yaml", "SOLVER:\n  BASE_LR: 0.1\n  GAMMA: 0.5\n  MOMENTUM: 0.8\n");
        dir.Write("b.yaml", "_base_: a.yaml\nSOLVER:\n  BASE_LR: 0.2\n  GAMMA: 0.25\n");
        var c3 = dir.Write("c.yaml", "_base_: b.yaml\nSOLVER:\n  BASE_LR: 0.3\n");
        var loaded = ConfigLoader.LoadDetailed(c3);
        Assert.Equal(0.3, loaded.Config.Solver.BaseLr);
        Assert.Equal(0.25, loaded.Config.Solver.Gamma);
        Assert.Equal(0.8, loaded.Config.Solver.Momentum);
        Assert.Equal(["a.yaml", "b.yaml", "c.yaml"], loaded.Files.Select(Path.GetFileName));
    }

    [Fact]
    public void BasePathsAreRelativeToTheIncludingFile()
    {
        using var dir = new TempConfigDir();
        dir.Write("Base.yaml", "MODEL:\n  ROI_HEADS:\n    NUM_CLASSES: 7\n");
        dir.Write("group/mid.yaml", "_base_: ../Base.yaml\nSOLVER:\n  BASE_LR: 0.05\n");
        var leaf = dir.Write("group/sub/leaf.yaml", "_base_: ../mid.yaml\nSEED: 3\n");
        // The working directory must not matter.
        var c = ConfigLoader.Load(leaf);
        Assert.Equal(7, c.Model.RoiHeads.NumClasses);
        Assert.Equal(0.05, c.Solver.BaseLr);
        Assert.Equal(3, c.Seed);
    }

    [Fact]
    public void ListOfBasesMergesInOrder()
    {
        using var dir = new TempConfigDir();
        dir.Write("one.yaml", "SOLVER:\n  BASE_LR: 0.1\n  GAMMA: 0.5\n");
        dir.Write("two.yaml", "SOLVER:\n  BASE_LR: 0.2\nSEED: 9\n");
        var top = dir.Write("top.yaml", "_base_: [one.yaml, two.yaml]\nOUTPUT_DIR: out\n");
        var c = ConfigLoader.Load(top);
        Assert.Equal(0.2, c.Solver.BaseLr);   // the later base wins
        Assert.Equal(0.5, c.Solver.Gamma);
        Assert.Equal(9, c.Seed);
        Assert.Equal("out", c.OutputDir);
    }

    [Fact]
    public void DiamondInheritanceIsNotACycle()
    {
        using var dir = new TempConfigDir();
        dir.Write("root.yaml", "SEED: 1\n");
        dir.Write("left.yaml", "_base_: root.yaml\nSOLVER:\n  BASE_LR: 0.1\n");
        dir.Write("right.yaml", "_base_: root.yaml\nSOLVER:\n  GAMMA: 0.2\n");
        var top = dir.Write("top.yaml", "_base_: [left.yaml, right.yaml]\n");
        var c = ConfigLoader.Load(top);
        Assert.Equal(0.1, c.Solver.BaseLr);
        Assert.Equal(0.2, c.Solver.Gamma);
    }

    [Fact]
    public void CycleIsReportedWithTheChainOfFiles()
    {
        using var dir = new TempConfigDir();
        dir.Write("a.yaml", "_base_: b.yaml\nSEED: 1\n");
        dir.Write("b.yaml", "SEED: 2\n_base_: sub/c.yaml\n");
        dir.Write("sub/c.yaml", "_base_: ../a.yaml\n");
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(Path.Combine(dir.Root, "a.yaml")));
        Assert.Contains("cycle", e.Message);
        // The chain names every file in order, back to the first, and the place of the offending _base_ (c.yaml line 1).
        var chain = System.Text.RegularExpressions.Regex.Match(e.Message, @"cycle: (.*)\.$").Groups[1].Value.Split(" -> ");
        Assert.Equal(["a.yaml", "b.yaml", "c.yaml", "a.yaml"], chain.Select(Path.GetFileName));
        Assert.Contains("c.yaml:1:", e.Message);
    }

    [Fact]
    public void SelfInclusionIsACycle()
    {
        using var dir = new TempConfigDir();
        var a = dir.Write("self.yaml", "_base_: self.yaml\n");
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(a));
        Assert.Contains("cycle", e.Message);
    }

    [Fact]
    public void MissingBaseNamesTheIncludingFileAndLine()
    {
        using var dir = new TempConfigDir();
        var a = dir.Write("a.yaml", "SEED: 1\n_base_: nowhere.yaml\n");
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(a));
        Assert.Contains("a.yaml:2:9", e.Message);
        Assert.Contains("nowhere.yaml", e.Message);
        Assert.Contains("not found", e.Message);
    }

    [Fact]
    public void MissingTopFileIsAClearError()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load("/nonexistent/dir/x.yaml"));
        Assert.Contains("not found", e.Message);
    }

    [Fact]
    public void Detectron2BaseSpellingAndTupleSyntaxAreAccepted()
    {
        using var dir = new TempConfigDir();
        dir.Write("Base.yaml", "SOLVER:\n  MAX_ITER: 90000\n");
        var child = dir.Write("child.yaml", """
            _BASE_: "Base.yaml"
            SOLVER:
              STEPS: (60000, 80000)
            DATASETS:
              TRAIN: ("lvis_v1_train",)
              TEST: ("lvis_v1_val",)
            MODEL:
              MASK_ON: True
            """);
        var c = ConfigLoader.Load(child);
        Assert.Equal([60000, 80000], c.Solver.Steps);
        Assert.Equal(["lvis_v1_train"], c.Datasets.Train);
        Assert.True(c.Model.MaskOn);
    }

    [Fact]
    public void BothBaseSpellingsAtOnceAreRejected()
    {
        using var dir = new TempConfigDir();
        dir.Write("b.yaml", "SEED: 1\n");
        var a = dir.Write("a.yaml", "_base_: b.yaml\n_BASE_: b.yaml\n");
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(a));
        Assert.Contains("a.yaml:2:1", e.Message);
    }

    [Fact]
    public void TextBasesResolveAgainstTheGivenFolder()
    {
        using var dir = new TempConfigDir();
        dir.Write("sub/base.yaml", "SOLVER:\n  GAMMA: 0.3\n");
        var c = ConfigLoader.LoadText("_base_: sub/base.yaml\nSEED: 2\n", "inline.yaml", baseDirectory: dir.Root);
        Assert.Equal(0.3, c.Solver.Gamma);
        Assert.Equal(2, c.Seed);
    }

    [Fact]
    public void EmptyFileGivesTheDefaults()
    {
        using var dir = new TempConfigDir();
        var a = dir.Write("empty.yaml", "# nothing\n");
        Assert.Equal(new EngineConfig(), ConfigLoader.Load(a));
    }

    [Fact]
    public void TopLevelMustBeAMapping()
    {
        using var dir = new TempConfigDir();
        var a = dir.Write("list.yaml", "- 1\n- 2\n");
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(a));
        Assert.Contains("list.yaml:1:1", e.Message);
        Assert.Contains("mapping", e.Message);
    }
}
