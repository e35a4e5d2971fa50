// End-to-end detector training on a tiny synthetic long-tail set (6 classes, 24 training and 8 validation
// images of 64×64 written as JPEGs with LVIS-format annotation files): the shipped synthetic config with a
// narrow model and a few iterations, built through DetectorTraining exactly as `engine train` builds it. The
// run folder must hold every file of a run, the logged losses must be finite, the final evaluation must have
// written the LVIS evaluator's metrics, and a run stopped halfway and resumed must end with the same weights
// bit for bit.
using System.Text.Json;
using Engine.Config;
using Engine.Evaluation;
using Engine.Training.Detection;

namespace Engine.Training.Tests.Detection;

public sealed class DetectorTrainingTests
{
    private const int Classes = TinyDetector.SetClasses;

    /// <summary>The synthetic config shrunk to a model that trains in seconds: GN needs 32 channels per stage at least
    /// (32 groups), so the stem and res2 stay at 32 and the FPN and box head are narrowed instead.</summary>
    private static EngineConfig Config(string outputDir, long maxIter) => ConfigLoader.Load(TinyDetector.SynthConfig(),
    [
        $"DATASETS.ROOT={TinyDetector.DatasetRoot}",
        $"OUTPUT_DIR={outputDir}",
        .. TinyDetector.Overrides(Classes),
        $"SOLVER.MAX_ITER={maxIter}",
        "SOLVER.STEPS=[3]", // below both MAX_ITERs (4 and 8): the validator requires steps inside the run
        "SOLVER.WARMUP_ITERS=2",
        "SOLVER.CHECKPOINT_PERIOD=4",
        "TEST.EVAL_PERIOD=0",
        "SEED=7",
    ]);

    private static DetectorTrainingOptions Options => new() { LogPeriod = 1 };

    [Fact]
    public void TrainingRunWritesEveryFileAndEvaluatesWithTheLvisEvaluator()
    {
        var dir = Toy.TempDir();
        using (var run = DetectorTraining.Build(Config(dir, 8), Options))
        {
            var summary = run.Run();
            Assert.Equal(7, summary.LastIteration);
        }

        foreach (var file in new[] { Trainer<object>.ConfigFile, TrainingLog.FileName, "model_final.safetensors", ReportFiles.MetricsFile,
                                     ReportFiles.PerCategoryFile, "report.html", DetectorTraining.ResultsFile })
            Assert.True(File.Exists(Path.Combine(dir, file)), $"the run folder lacks {file}: {string.Join(", ", Directory.GetFiles(dir).Select(Path.GetFileName))}");

        var log = TrainingLog.Read(Path.Combine(dir, TrainingLog.FileName));
        Assert.Equal(Enumerable.Range(0, 8).Select(i => (long)i), log.Select(e => e.Iteration));
        foreach (var entry in log)
        {
            Assert.Equal(["loss_box_reg", "loss_cls", "loss_rpn_cls", "loss_rpn_loc"], entry.Losses.Keys.Order());
            Assert.True(double.IsFinite(entry.TotalLoss) && entry.Losses.Values.All(double.IsFinite),
                        $"iteration {entry.Iteration}: non-finite loss {string.Join(", ", entry.Losses.Select(kv => $"{kv.Key}={kv.Value}"))}");
        }

        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, ReportFiles.MetricsFile)));
        var keys = metrics.RootElement.EnumerateObject().Select(p => p.Name).ToHashSet();
        foreach (var key in new[] { "AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf", "AR@300" })
            Assert.True(keys.Contains(key), $"metrics.json lacks '{key}': has {string.Join(", ", keys)}");

        // Every detection refers to a validation image and a category id of the set, with a box inside its 64×64 image.
        var valIds = JsonDocument.Parse(File.ReadAllText(Path.Combine(TinyDetector.DatasetRoot, "synth_lt", "val.json"))).RootElement;
        var imageIds = valIds.GetProperty("images").EnumerateArray().Select(i => i.GetProperty("id").GetInt64()).ToHashSet();
        var categoryIds = valIds.GetProperty("categories").EnumerateArray().Select(c => c.GetProperty("id").GetInt32()).ToHashSet();
        using var results = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, DetectorTraining.ResultsFile)));
        // SCORE_THRESH_TEST is 1e-4 and 6 classes share the softmax, so even a barely trained model keeps detections.
        Assert.True(results.RootElement.GetArrayLength() > 0, "the final evaluation wrote no detections");
        foreach (var d in results.RootElement.EnumerateArray())
        {
            Assert.Contains(d.GetProperty("image_id").GetInt64(), imageIds);
            Assert.Contains(d.GetProperty("category_id").GetInt32(), categoryIds);
            var b = d.GetProperty("bbox").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            Assert.True(b[0] >= 0 && b[1] >= 0 && b[2] > 0 && b[3] > 0 && b[0] + b[2] <= 64 + 1e-3 && b[1] + b[3] <= 64 + 1e-3,
                        $"bbox [{string.Join(", ", b)}] is not an XYWH box inside the 64×64 image");
        }

        var html = File.ReadAllText(Path.Combine(dir, "report.html"));
        Assert.Contains("loss_cls", html);
        Assert.Equal(ReportDetections.DefaultCount, RunReport.ReadImages(dir).Count);
        Assert.Contains("data:image/jpeg;base64,", html);

        // Inference from the saved weights alone reproduces the run's final evaluation file byte for byte.
        var inferDir = Toy.TempDir();
        var evaluation = DetectorInference.Run(Config(inferDir, 8), Path.Combine(dir, "model_final.safetensors"), inferDir);
        Assert.NotNull(evaluation?.Lvis);
        Assert.True(File.ReadAllBytes(Path.Combine(dir, DetectorTraining.ResultsFile)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(inferDir, DetectorTraining.ResultsFile))),
                    "inference from model_final.safetensors wrote different detections than the run's final evaluation");
        Assert.Equal(File.ReadAllText(Path.Combine(dir, ReportFiles.MetricsFile)), File.ReadAllText(Path.Combine(inferDir, ReportFiles.MetricsFile)));
    }

    [Fact]
    public void HalfRunPlusResumeEndsWithTheSameWeightsBitForBit()
    {
        var whole = Toy.TempDir();
        using (var run = DetectorTraining.Build(Config(whole, 8), Options)) run.Run();

        var split = Toy.TempDir();
        using (var run = DetectorTraining.Build(Config(split, 4), Options)) run.Run();
        using (var run = DetectorTraining.Build(Config(split, 8), Options))
        {
            var summary = run.Run(resume: true);
            Assert.Equal(4, summary.StartIteration);
        }

        var expected = File.ReadAllBytes(Path.Combine(whole, "model_final.safetensors"));
        var actual = File.ReadAllBytes(Path.Combine(split, "model_final.safetensors"));
        Assert.True(expected.AsSpan().SequenceEqual(actual), $"model_final.safetensors differs between the whole run ({expected.Length} bytes) and half + resume + half ({actual.Length} bytes)");
    }

    [Fact]
    public void ConfigsTheDataLayerCannotServeAreRejectedWithTheKeyAndTheFix()
    {
        var dir = Toy.TempDir();
        var classes = Assert.Throws<ArgumentException>(() => DetectorTraining.Build(Config(dir, 8) with
        {
            Model = Config(dir, 8).Model with { RoiHeads = Config(dir, 8).Model.RoiHeads with { NumClasses = Classes + 1 } },
        }));
        Assert.Contains($"MODEL.ROI_HEADS.NUM_CLASSES={Classes}", classes.Message);

        var missing = Assert.Throws<FileNotFoundException>(() => DetectorTraining.Build(Config(dir, 8) with
        {
            Datasets = Config(dir, 8).Datasets with { Root = Path.Combine(dir, "nowhere") },
        }));
        Assert.Contains("synth_lt_train", missing.Message);
        Assert.Contains("engine synth", missing.Message);

        var sampler = Assert.Throws<ArgumentException>(() => DetectorTraining.Build(Config(dir, 8) with
        {
            Dataloader = Config(dir, 8).Dataloader with { SamplerTrain = TrainSampler.ClassAwareSampler },
        }));
        Assert.Contains("SAMPLER_TRAIN", sampler.Message);

        var flip = Assert.Throws<ArgumentException>(() => DetectorTraining.TrainingTransforms(new InputConfig { RandomFlip = RandomFlip.Vertical }));
        Assert.Contains("INPUT.RANDOM_FLIP", flip.Message);
        Assert.False(Directory.EnumerateFiles(dir).Any(), $"a rejected config must not start a run: {string.Join(", ", Directory.EnumerateFiles(dir))}");
    }

    [Fact]
    public void RepeatFactorSamplingTrainsThroughTheSameBuild()
    {
        var dir = Toy.TempDir();
        var config = Config(dir, 4) with { Datasets = Config(dir, 4).Datasets with { Test = [] } };
        config = config with { Solver = config.Solver with { MaxIter = 2, Steps = [1], WarmupIters = 1 } };
        config = config with { Dataloader = config.Dataloader with { SamplerTrain = TrainSampler.RepeatFactorTrainingSampler, RepeatThreshold = 0.5 } };
        using var run = DetectorTraining.Build(config, Options);
        Assert.Null(run.TestSet);
        run.Run();
        var log = TrainingLog.Read(Path.Combine(dir, TrainingLog.FileName));
        Assert.Equal([0L, 1L], log.Select(e => e.Iteration));
        Assert.All(log, e => Assert.True(double.IsFinite(e.TotalLoss), $"iteration {e.Iteration}: total loss {e.TotalLoss}"));
        Assert.False(File.Exists(Path.Combine(dir, ReportFiles.MetricsFile)), "no DATASETS.TEST, so no evaluation files");
    }
}
