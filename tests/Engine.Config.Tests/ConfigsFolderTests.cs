// Every YAML file under configs/ loads and validates, the LVIS v1 configs carry the LVIS constants, the
// synthetic configs the synthetic set's, and each long-tail method has a config for both.
namespace Engine.Config.Tests;

public sealed class ConfigsFolderTests
{
    private static readonly string[] Methods = ["eql", "eqlv2", "seesaw", "federated", "bags", "bacl", "logn", "crat", "rio"];

    public static TheoryData<string> AllConfigs()
    {
        var data = new TheoryData<string>();
        foreach (var path in Directory.EnumerateFiles(Repo.ConfigsDir, "*.yaml", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            data.Add(Path.GetRelativePath(Repo.ConfigsDir, path));
        return data;
    }

    [Theory]
    [MemberData(nameof(AllConfigs))]
    public void LoadsAndValidates(string relativePath)
    {
        var loaded = ConfigLoader.LoadDetailed(Path.Combine(Repo.ConfigsDir, relativePath));
        Assert.Empty(ConfigValidator.Check(loaded.Config));
        // Every file but the root base inherits, ultimately from Base-RCNN-FPN.yaml.
        Assert.Equal("Base-RCNN-FPN.yaml", Path.GetFileName(loaded.Files[0]));
    }

    [Fact]
    public void FolderHoldsTheExpectedConfigs()
    {
        Assert.True(Directory.EnumerateFiles(Repo.ConfigsDir, "*.yaml", SearchOption.AllDirectories).Count() >= 2 + 2 * Methods.Length);
        foreach (var method in Methods)
        {
            Assert.True(File.Exists(Path.Combine(Repo.ConfigsDir, "lvis_v1", method + ".yaml")), "lvis_v1/" + method);
            Assert.True(File.Exists(Path.Combine(Repo.ConfigsDir, "synth", method + ".yaml")), "synth/" + method);
        }
    }

    [Fact]
    public void LvisBaselineCarriesTheLvisConstants()
    {
        var c = ConfigLoader.Load(Path.Combine(Repo.ConfigsDir, "lvis_v1", "faster_rcnn_r50_fpn_1x.yaml"));
        Assert.Equal(1203, c.Model.RoiHeads.NumClasses);
        Assert.Equal(TrainSampler.RepeatFactorTrainingSampler, c.Dataloader.SamplerTrain);
        Assert.Equal(0.001, c.Dataloader.RepeatThreshold);
        Assert.Equal(300, c.Test.DetectionsPerImage);
        Assert.Equal(0.0001, c.Model.RoiHeads.ScoreThreshTest);
        Assert.Equal(90000, c.Solver.MaxIter);
        Assert.Equal(16, c.Solver.ImsPerBatch);
        Assert.Equal(0.02, c.Solver.BaseLr);
        Assert.Equal([60000, 80000], c.Solver.Steps);
        Assert.Equal([640, 672, 704, 736, 768, 800], c.Input.MinSizeTrain);
        Assert.Equal(1333, c.Input.MaxSizeTrain);
        Assert.Equal(50, c.Model.Resnets.Depth);
        Assert.EndsWith("R-50.safetensors", c.Model.Weights);
        Assert.Equal(["lvis_v1_train"], c.Datasets.Train);
        Assert.Equal(["lvis_v1_val"], c.Datasets.Test);
    }

    [Fact]
    public void EveryLvisConfigTestsWithTheLvisProtocol()
    {
        foreach (var path in Directory.EnumerateFiles(Path.Combine(Repo.ConfigsDir, "lvis_v1"), "*.yaml"))
        {
            var c = ConfigLoader.Load(path);
            Assert.Equal(1203, c.Model.RoiHeads.NumClasses);
            Assert.Equal(300, c.Test.DetectionsPerImage);
            Assert.Equal(["lvis_v1_val"], c.Datasets.Test);
            Assert.True(c.Model.RoiHeads.ScoreThreshTest is 0.0001 or 0.0, path);   // 0 where the official method config uses 0
            Assert.StartsWith("output/lvis_v1/", c.OutputDir);
            Assert.Equal(Path.GetFileNameWithoutExtension(path), Path.GetFileName(c.OutputDir));
        }
    }

    [Fact]
    public void SyntheticBaselineIsTheSlimDetector()
    {
        var c = ConfigLoader.Load(Path.Combine(Repo.ConfigsDir, "synth", "faster_rcnn_r18_fpn.yaml"));
        Assert.Equal(40, c.Model.RoiHeads.NumClasses);
        Assert.Equal(18, c.Model.Resnets.Depth);
        Assert.Equal(NormType.GroupNorm, c.Model.Resnets.Norm);
        Assert.Equal(0, c.Model.Backbone.FreezeAt);
        Assert.Equal("", c.Model.Weights);
        Assert.Equal(128, c.Model.Fpn.OutChannels);
        Assert.Equal(2, c.Model.RoiBoxHead.NumFc);
        Assert.Equal(512, c.Model.RoiBoxHead.FcDim);
        Assert.Equal(64, c.Model.RoiHeads.BatchSizePerImage);
        Assert.Equal([[16.0], [32.0], [64.0], [128.0], [256.0]], c.Model.AnchorGenerator.Sizes);
        Assert.Equal(8, c.Solver.ImsPerBatch);
        Assert.Equal(1000, c.Solver.MaxIter);
        Assert.Equal([160], c.Input.MinSizeTrain);
        Assert.Equal(["synth_lt_train"], c.Datasets.Train);
    }

    [Fact]
    public void EverySyntheticConfigUsesTheSyntheticSet()
    {
        foreach (var path in Directory.EnumerateFiles(Path.Combine(Repo.ConfigsDir, "synth"), "*.yaml"))
        {
            var c = ConfigLoader.Load(path);
            Assert.Equal(40, c.Model.RoiHeads.NumClasses);
            Assert.Equal(["synth_lt_train"], c.Datasets.Train);
            Assert.Equal(["synth_lt_val"], c.Datasets.Test);
            Assert.Equal(Path.GetFileNameWithoutExtension(path), Path.GetFileName(c.OutputDir));
        }
    }

    [Fact]
    public void MethodConfigsSelectTheirMethod()
    {
        foreach (var folder in new[] { "lvis_v1", "synth" })
        {
            EngineConfig Load(string name) => ConfigLoader.Load(Path.Combine(Repo.ConfigsDir, folder, name + ".yaml"));
            Assert.Equal(ClassificationLoss.Eql, Load("eql").Model.LongTail.ClassificationLoss);
            Assert.Equal(ClassificationLoss.Eqlv2, Load("eqlv2").Model.LongTail.ClassificationLoss);
            Assert.Equal(ClassificationLoss.Seesaw, Load("seesaw").Model.LongTail.ClassificationLoss);
            Assert.Equal(ClassificationLoss.Federated, Load("federated").Model.LongTail.ClassificationLoss);
            var bags = Load("bags");
            Assert.Equal(ClassificationLoss.GroupSoftmax, bags.Model.LongTail.ClassificationLoss);
            Assert.Equal([ModuleGroup.Classifier], bags.Model.TrainableModules);
            Assert.Equal([ModuleGroup.Classifier], bags.Model.ReinitModules);
            Assert.NotEqual("", bags.Model.Weights);
            var bacl = Load("bacl");
            Assert.Equal(ClassificationLoss.Fcbl, bacl.Model.LongTail.ClassificationLoss);
            Assert.Equal(EmbeddingAugmenter.Fhm, bacl.Model.LongTail.EmbeddingAugmenter);
            Assert.DoesNotContain(ModuleGroup.Backbone, bacl.Model.TrainableModules);
            Assert.DoesNotContain(ModuleGroup.BoxHead, bacl.Model.TrainableModules);
            Assert.Equal(Calibrator.Logn, Load("logn").Model.LongTail.Calibrator);
            var crat = Load("crat");
            Assert.Equal(GradientTransfuser.Crat, crat.Model.LongTail.GradientTransfuser);
            Assert.Equal(ClassificationLoss.Eqlv2, crat.Model.LongTail.ClassificationLoss);
            var rio = Load("rio");
            Assert.Equal(EmbeddingAugmenter.Rio, rio.Model.LongTail.EmbeddingAugmenter);
            Assert.Equal(TrainSampler.RepeatFactorTrainingSampler, rio.Dataloader.SamplerTrain);
            Assert.Equal(ClassifierType.Cosine, rio.Model.LongTail.Classifier.Type);
            Assert.Equal(48.0, rio.Model.LongTail.Classifier.Scale);
            Assert.Equal(20, rio.Model.LongTail.Rio.ReplayPerClass);
            Assert.Equal(30, rio.Model.LongTail.Rio.BankMaxImages);
        }
        // LVIS v1 schedules of the official code.
        var lvisRio = ConfigLoader.Load(Path.Combine(Repo.ConfigsDir, "lvis_v1", "rio.yaml"));
        Assert.Equal(180000, lvisRio.Solver.MaxIter);
        Assert.Equal([120000, 160000], lvisRio.Solver.Steps);
        Assert.Equal(0.0011, ConfigLoader.Load(Path.Combine(Repo.ConfigsDir, "lvis_v1", "eql.yaml")).Model.LongTail.Eql.Lambda);
        var lvisBags = ConfigLoader.Load(Path.Combine(Repo.ConfigsDir, "lvis_v1", "bags.yaml"));
        Assert.Equal(0.01, lvisBags.Solver.BaseLr);
        Assert.True(lvisBags.Solver.ClipGradients.Enabled);
        Assert.Equal(35.0, lvisBags.Solver.ClipGradients.ClipValue);
        Assert.Equal(TrainSampler.TrainingSampler, lvisBags.Dataloader.SamplerTrain);
    }
}
