// The long-tail methods end to end through DetectorTraining (what `engine train` runs) on the tiny synthetic set
// of DetectorTrainingTests: a run with EQLv2 + CRAT + RIO stopped halfway and resumed ends bit for bit where the
// whole run ends, weights and component state (EQLv2 sums, Fisher bank, RIO queues) alike; the decoupled configs
// (BAGS, BACL stage 2) start from a baseline checkpoint with the re-initialized classifier fresh and only the named
// parameters trained; component state round-trips through a checkpoint; and `engine calibrate`'s statistics pass
// writes a calibrated checkpoint (parameters untouched) that inference then requires and uses.
using Engine.Config;
using Engine.Detection.Modeling;
using Engine.Serialization;
using Engine.Training.Detection;

namespace Engine.Training.Tests.Detection;

public sealed class LongTailTrainingTests
{
    private const int Classes = TinyDetector.SetClasses;

    /// <summary>A plain baseline trained for 2 iterations, the MODEL.WEIGHTS of the decoupled stages.</summary>
    private static readonly Lazy<string> Baseline = new(() =>
    {
        var dir = Toy.TempDir();
        using (var run = DetectorTraining.Build(Config("faster_rcnn_r18_fpn.yaml", dir, 2), Options)) run.Run();
        return Path.Combine(dir, "model_final.safetensors");
    });

    private static EngineConfig Config(string file, string outputDir, long maxIter, params string[] more) => TinyDetector.Run(file, outputDir, maxIter, more);

    private static DetectorTrainingOptions Options => new() { LogPeriod = 1 };

    /// <summary>EQLv2 (crat.yaml's loss) with CRAT and RIO, every class of the tiny set in the RIO bank.</summary>
    private static EngineConfig Combined(string dir, long maxIter) =>
        Config("crat.yaml", dir, maxIter, "MODEL.LONG_TAIL.EMBEDDING_AUGMENTER=rio", "MODEL.LONG_TAIL.RIO.BANK_MAX_IMAGES=24",
               "MODEL.LONG_TAIL.RIO.REPLAY_PER_CLASS=4", "MODEL.LONG_TAIL.RIO.QUEUE_CAPACITY=8", "MODEL.LONG_TAIL.RIO.RANDOM_SELECT=true");

    [Fact]
    public void Eqlv2CratRioHalfRunPlusResumeEndsBitForBit()
    {
        var whole = Toy.TempDir();
        using (var run = DetectorTraining.Build(Combined(whole, 4), Options)) run.Run();
        var split = Toy.TempDir();
        using (var run = DetectorTraining.Build(Combined(split, 2), Options)) run.Run();
        using (var run = DetectorTraining.Build(Combined(split, 4), Options))
            Assert.Equal(2, run.Run(resume: true).StartIteration);

        foreach (var file in new[] { "model_final.safetensors", "model_final.trainer.safetensors" })
        {
            var expected = File.ReadAllBytes(Path.Combine(whole, file));
            var actual = File.ReadAllBytes(Path.Combine(split, file));
            Assert.True(expected.AsSpan().SequenceEqual(actual), $"{file} differs between the whole run and half + resume + half");
        }
        using var state = SafeTensors.Load(Path.Combine(whole, "model_final.trainer.safetensors"));
        foreach (var key in new[] { "component.long_tail.classification_loss.pos_grad", "component.long_tail.classification_loss.neg_grad",
                                    "component.long_tail.gradient_transfuser.fisher_box", "component.long_tail.embedding_augmenter.embeddings" })
            Assert.True(state.ContainsKey(key), $"the checkpoint lacks {key}: {string.Join(", ", state.Keys.Where(k => k.StartsWith("component.", StringComparison.Ordinal)))}");
        Assert.Contains(state["component.long_tail.classification_loss.pos_grad"].ToDoubleArray(), v => v > 0);
        Assert.Contains(state["component.long_tail.embedding_augmenter.lengths"].ToInt64Array(), v => v > 0);
        var log = TrainingLog.Read(Path.Combine(whole, TrainingLog.FileName));
        Assert.All(log, e => Assert.True(e.Losses.ContainsKey("loss_box_trans") && e.Losses.Values.All(double.IsFinite),
                                         $"iteration {e.Iteration}: {string.Join(", ", e.Losses.Select(kv => $"{kv.Key}={kv.Value}"))}"));
    }

    [Theory]
    [InlineData("seesaw.yaml")]
    [InlineData("federated.yaml")]
    [InlineData("eqlv2.yaml")]
    [InlineData("rio.yaml")]
    public void ComponentStateRoundTripsThroughACheckpoint(string file)
    {
        var dir = Toy.TempDir();
        Dictionary<string, double[]> Snapshot(DetectorTrainingRun run) =>
            new DetectorTrainable(run.Detector).StatefulComponents.SelectMany(c =>
            {
                var s = c.Value.SaveState();
                var values = s.Tensors.Select(t => ($"{c.Key}.{t.Key}", t.Value.ToDoubleArray())).ToList();
                foreach (var t in s.Tensors.Values) t.Dispose();
                return values;
            }).ToDictionary(kv => kv.Item1, kv => kv.Item2);
        Dictionary<string, double[]> trained;
        using (var run = DetectorTraining.Build(Config(file, dir, 2), Options))
        {
            run.Run();
            trained = Snapshot(run);
        }
        // a resume at the end loads the checkpoint and runs no iteration
        using var resumed = DetectorTraining.Build(Config(file, dir, 2), Options);
        resumed.Run(resume: true);
        var loaded = Snapshot(resumed);
        Assert.Equal(trained.Keys.Order(), loaded.Keys.Order());
        foreach (var (key, value) in trained) Assert.True(value.SequenceEqual(loaded[key]), $"{file}: {key} changed through the checkpoint");
    }

    [Theory]
    [InlineData("bags.yaml")]
    [InlineData("bacl.yaml")]
    public void DecoupledStagesStartFromTheCheckpointAndTrainOnlyTheNamedParts(string file)
    {
        var dir = Toy.TempDir();
        var config = Config(file, dir, 2, $"MODEL.WEIGHTS={Baseline.Value}");
        using var baseline = SafeTensors.Load(Baseline.Value);
        using var run = DetectorTraining.Build(config, Options);
        var trainable = config.Model.TrainableModules;
        var before = run.Detector.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Value.ToDoubleArray());
        foreach (var (name, p) in run.Detector.NamedParameters())
        {
            var inGroup = trainable.Any(g => DetectorWeights.InGroup(name, g));
            Assert.True(p.Frozen == !inGroup, $"{file}: {name} frozen = {p.Frozen}, expected {!inGroup}");
            var reinit = config.Model.ReinitModules.Any(g => DetectorWeights.InGroup(name, g));
            // loaded from the baseline, except the re-initialized classifier (BAGS: C + 6 outputs, a fresh layer)
            if (!reinit) Assert.True(baseline[name].ToDoubleArray().SequenceEqual(before[name]), $"{file}: {name} was not loaded from MODEL.WEIGHTS");
            else Assert.False(baseline.ContainsKey(name) && baseline[name].Shape.SequenceEqual(p.Shape) && baseline[name].ToDoubleArray().SequenceEqual(before[name]), $"{file}: {name} was loaded though re-initialized");
        }
        run.Run();
        foreach (var (name, p) in run.Detector.NamedParameters())
        {
            var changed = !before[name].SequenceEqual(p.Value.ToDoubleArray());
            if (p.Frozen) Assert.False(changed, $"{file}: frozen {name} changed");
        }
        Assert.Contains(run.Detector.NamedParameters(), p => !p.Parameter.Frozen && !before[p.Name].SequenceEqual(p.Parameter.Value.ToDoubleArray()));
        var log = TrainingLog.Read(Path.Combine(dir, TrainingLog.FileName));
        Assert.All(log, e => Assert.True(e.Losses.Values.All(double.IsFinite), $"{file} iteration {e.Iteration}: {string.Join(", ", e.Losses.Select(kv => $"{kv.Key}={kv.Value}"))}"));
    }

    [Theory]
    [InlineData("exact")]
    [InlineData("ema")]
    public void CalibrationPassWritesTheStatisticsInferenceUses(string statistics)
    {
        var dir = Toy.TempDir();
        var config = Config("logn.yaml", dir, 2, $"MODEL.WEIGHTS={Baseline.Value}", $"MODEL.LONG_TAIL.LOGN.STATISTICS={statistics}",
                            "MODEL.LONG_TAIL.LOGN.STATISTICS_MOMENTUM=0.5");
        var summary = DetectorCalibration.Run(config, Baseline.Value, dir);
        // one epoch of 24 images in batches of 2; every image gives BATCH_SIZE_PER_IMAGE RoIs at most
        Assert.Equal(24, summary.Images);
        Assert.True(summary.Rows > 24 && summary.Rows <= 24 * 32, $"{summary.Rows} RoIs");
        using var input = SafeTensors.Load(Baseline.Value);
        using var output = SafeTensors.Load(summary.WeightsPath);
        foreach (var key in input.Keys)
            Assert.True(input[key].ToDoubleArray().SequenceEqual(output[key].ToDoubleArray()), $"the statistics pass changed {key}");
        var mean = output[DetectorWeights.CalibratorPrefix + "running_mean"].ToDoubleArray();
        var variance = output[DetectorWeights.CalibratorPrefix + "running_var"].ToDoubleArray();
        Assert.Equal(Classes + 1, mean.Length);
        Assert.True(mean.Any(m => m != 0) && variance.All(v => v > 0 && double.IsFinite(v)) && variance.Any(v => v != 1),
                    $"statistics still at their initial values: mean [{string.Join(", ", mean)}], variance [{string.Join(", ", variance)}]");

        // inference with the logn config refuses the uncalibrated checkpoint and runs on the calibrated one
        var withTest = config with { Datasets = config.Datasets with { Test = ["synth_lt_val"] } };
        var refused = Assert.Throws<InvalidOperationException>(() => DetectorInference.Run(withTest, Baseline.Value, Toy.TempDir(), evaluate: false));
        Assert.Contains("engine calibrate", refused.Message);
        var inferDir = Toy.TempDir();
        DetectorInference.Run(withTest, summary.WeightsPath, inferDir, evaluate: false);
        Assert.True(new FileInfo(Path.Combine(inferDir, DetectorTraining.ResultsFile)).Length > 2, "calibrated inference wrote no detections");
    }
}
