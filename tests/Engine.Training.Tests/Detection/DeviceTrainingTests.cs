// Training, evaluation, calibration and inference with MODEL.DEVICE=cuda, through the DetectorTraining path that
// `engine train --device cuda` takes, on HostBackedCuda: cuda:0 in host memory, computed by the CPU backends, with the
// device rules of a GPU (an op mixing devices, AsSpan on a device tensor, or a CPU tensor handed to a backend where the
// CUDA backends need device memory all throw). So every tensor a run computes with must live on the device, and since
// the arithmetic is the CPU's, a device run must equal the CPU run bit for bit: logged losses, weights, optimizer and
// component state, detections. Checkpoints are device-neutral: a run started on the CPU resumes on the device.
using Engine.Config;
using Engine.Evaluation;
using Engine.Training.Detection;

namespace Engine.Training.Tests.Detection;

[Collection(HostBackedCuda.Collection)]
public sealed class DeviceTrainingTests
{
    private static readonly Device Cuda = HostBackedCuda.Install();

    /// <summary>A baseline trained on the CPU for 2 iterations: the MODEL.WEIGHTS of the decoupled stages and calibration.</summary>
    private static readonly Lazy<string> Baseline = new(() =>
    {
        var dir = Toy.TempDir();
        using (var run = DetectorTraining.Build(Config("faster_rcnn_r18_fpn.yaml", dir, 2, Device.Cpu), Options)) run.Run();
        return Path.Combine(dir, "model_final.safetensors");
    });

    private static EngineConfig Config(string file, string outputDir, long maxIter, Device device, params string[] more) =>
        TinyDetector.Run(file, outputDir, maxIter, [$"MODEL.DEVICE={device}", .. more]);

    private static DetectorTrainingOptions Options => new() { LogPeriod = 1 };

    private static readonly string[] RunFiles = ["model_final.safetensors", "model_final.trainer.safetensors"];

    /// <summary>Trains <paramref name="file"/> for 3 iterations on the CPU and on the device: the same files bit for bit and the
    /// same logged losses, and everything the device run holds lives on the device.</summary>
    [Theory]
    [InlineData("faster_rcnn_r18_fpn.yaml", "DATASETS.TEST=[synth_lt_val]")]
    [InlineData("faster_rcnn_r18_fpn_rfs.yaml")]
    [InlineData("eql.yaml")]
    [InlineData("eqlv2.yaml")]
    [InlineData("seesaw.yaml")]
    [InlineData("federated.yaml")]
    [InlineData("bacl_stage1.yaml")]
    [InlineData("crat.yaml", "MODEL.LONG_TAIL.EMBEDDING_AUGMENTER=rio", "MODEL.LONG_TAIL.RIO.BANK_MAX_IMAGES=24", "MODEL.LONG_TAIL.RIO.REPLAY_PER_CLASS=4",
                "MODEL.LONG_TAIL.RIO.QUEUE_CAPACITY=8", "MODEL.LONG_TAIL.RIO.RANDOM_SELECT=true")]
    [InlineData("rio.yaml")]
    [InlineData("faster_rcnn_r18_fpn.yaml", "MODEL.LONG_TAIL.CALIBRATOR=logn", "MODEL.LONG_TAIL.LOGN.MODE=repo")]
    public void DeviceRunEqualsTheCpuRunBitForBit(string file, params string[] more)
    {
        var cpu = Toy.TempDir();
        using (var run = DetectorTraining.Build(Config(file, cpu, 3, Device.Cpu, more), Options)) run.Run();
        var device = Toy.TempDir();
        using (var run = DetectorTraining.Build(Config(file, device, 3, Cuda, more), Options))
        {
            run.Run();
            AssertOnDevice(run);
        }
        AssertSameRun(file, cpu, device, more.Any(m => m.StartsWith("DATASETS.TEST=[synth", StringComparison.Ordinal)));
    }

    [Fact]
    public void RunStartedOnTheCpuResumesOnTheDevice()
    {
        var whole = Toy.TempDir();
        using (var run = DetectorTraining.Build(Config("eqlv2.yaml", whole, 4, Device.Cpu), Options)) run.Run();
        var split = Toy.TempDir();
        using (var run = DetectorTraining.Build(Config("eqlv2.yaml", split, 2, Device.Cpu), Options)) run.Run();
        using (var run = DetectorTraining.Build(Config("eqlv2.yaml", split, 4, Cuda), Options))
        {
            Assert.Equal(2, run.Run(resume: true).StartIteration);
            AssertOnDevice(run);
        }
        AssertSameRun("eqlv2.yaml, CPU then device", whole, split, evaluated: false);
    }

    /// <summary>The decoupled stages load a CPU checkpoint into a model on the device (BAGS with its group softmax).</summary>
    [Theory]
    [InlineData("bags.yaml")]
    [InlineData("bacl.yaml")]
    public void DecoupledStageFromACpuCheckpointTrainsOnTheDeviceAsOnTheCpu(string file)
    {
        var cpu = Toy.TempDir();
        using (var run = DetectorTraining.Build(Config(file, cpu, 2, Device.Cpu, $"MODEL.WEIGHTS={Baseline.Value}"), Options)) run.Run();
        var device = Toy.TempDir();
        using (var run = DetectorTraining.Build(Config(file, device, 2, Cuda, $"MODEL.WEIGHTS={Baseline.Value}"), Options))
        {
            run.Run();
            AssertOnDevice(run);
        }
        AssertSameRun(file, cpu, device, evaluated: false);
    }

    /// <summary>`engine calibrate` and `engine infer` on the device: the calibrated checkpoint and the detections equal the CPU's.</summary>
    [Theory]
    [InlineData("exact")]
    [InlineData("ema")]
    public void CalibrationAndInferenceOnTheDeviceEqualTheCpu(string statistics)
    {
        string Calibrate(Device device)
        {
            var dir = Toy.TempDir();
            var config = Config("logn.yaml", dir, 2, device, $"MODEL.WEIGHTS={Baseline.Value}", $"MODEL.LONG_TAIL.LOGN.STATISTICS={statistics}",
                                "MODEL.LONG_TAIL.LOGN.STATISTICS_MOMENTUM=0.5", "DATASETS.TEST=[synth_lt_val]");
            var summary = DetectorCalibration.Run(config, Baseline.Value, dir);
            DetectorInference.Run(config, summary.WeightsPath, dir);
            return dir;
        }

        var cpu = Calibrate(Device.Cpu);
        var device = Calibrate(Cuda);
        foreach (var name in new[] { DetectorCalibration.CalibratedFile, DetectorTraining.ResultsFile, ReportFiles.MetricsFile })
            AssertSameBytes($"logn ({statistics})", name, cpu, device);
        Assert.True(new FileInfo(Path.Combine(device, DetectorTraining.ResultsFile)).Length > 2, "calibrated inference on the device wrote no detections");
    }

    [Fact]
    public void SingleImageInferenceOnTheDeviceEqualsTheCpu()
    {
        var image = Directory.EnumerateFiles(Path.Combine(TinyDetector.DatasetRoot, "synth_lt"), "*.jpg", SearchOption.AllDirectories).Order(StringComparer.Ordinal).First();
        ImageDetections Detect(Device device)
        {
            using var inference = ImageInference.Load(Config("faster_rcnn_r18_fpn.yaml", Toy.TempDir(), 2, device), Baseline.Value);
            Assert.Equal(device, inference.Detector.Device);
            return inference.Run(image);
        }

        var cpu = Detect(Device.Cpu);
        var device = Detect(Cuda);
        Assert.True(cpu.Scores.Length > 0, $"no detection on {image}");
        Assert.Equal(cpu.Boxes, device.Boxes);
        Assert.Equal(cpu.Classes, device.Classes);
        Assert.Equal(cpu.Scores, device.Scores);
    }

    /// <summary>The host waits of one training step of the baseline (what blocks the host until a GPU's stream catches up),
    /// each where a size or value the host needs depends on data. Per image: the anchors' match labels for the RPN's
    /// sampler, the proposals' classes for the RoI sampler (BalancedPositiveNegativeSampler), and the non-empty proposals
    /// and the NMS count that size the RPN's output (the pooler's FPN levels are computed on the device). Per batch:
    /// the RoI labels, read once by FastRcnnOutputLayers.Losses for the classification loss's checks and bookkeeping and
    /// the box regression's foreground rows, and the loss values the trainer logs and checks (one read of all). The
    /// long-tail losses add none (their statistics stay on the device: EQLv2's gradient sums, LogN's running statistics in
    /// repo mode; Seesaw's counts and
    /// Federated's draws come from the host labels; BAGS's group offsets stay on the host); gradient clipping adds one
    /// (the norms, all parameters' in one read: BAGS clips, and both clip types are checked on the baseline); CRAT adds one, its extra loss summed in double for the log; RIO
    /// five, its queues being host arrays that take the batch's embeddings, labels and boxes (and a label check).</summary>
    [Theory]
    [InlineData("faster_rcnn_r18_fpn.yaml", 1, 0)]
    [InlineData("faster_rcnn_r18_fpn.yaml", 3, 0)]
    [InlineData("eqlv2.yaml", 2, 0)]
    [InlineData("seesaw.yaml", 2, 0)]
    [InlineData("federated.yaml", 2, 0)]
    [InlineData("crat.yaml", 2, 1)]
    [InlineData("rio.yaml", 2, 5)]
    [InlineData("bags.yaml", 2, 1)]
    [InlineData("faster_rcnn_r18_fpn.yaml", 2, 0, "MODEL.LONG_TAIL.CALIBRATOR=logn", "MODEL.LONG_TAIL.LOGN.MODE=repo")]
    [InlineData("faster_rcnn_r18_fpn.yaml", 2, 1, "SOLVER.CLIP_GRADIENTS.ENABLED=true", "SOLVER.CLIP_GRADIENTS.CLIP_TYPE=norm")]
    [InlineData("faster_rcnn_r18_fpn.yaml", 2, 1, "SOLVER.CLIP_GRADIENTS.ENABLED=true", "SOLVER.CLIP_GRADIENTS.CLIP_TYPE=full_model")]
    public void TrainingStepWaitsForTheDeviceOnlyWhereDataDecides(string file, int images, int extra, params string[] more)
    {
        const int perImage = 4, perBatch = 2;
        var dir = Toy.TempDir();
        // BAGS is a decoupled stage: it starts from a checkpoint
        string[] weights = file == "bags.yaml" ? [$"MODEL.WEIGHTS={Baseline.Value}"] : [];
        var config = Config(file, dir, 3, Cuda, [$"SOLVER.IMS_PER_BATCH={images}", "SOLVER.CHECKPOINT_PERIOD=1000", .. weights, .. more]);
        var progress = new WaitsPerIteration();
        using var run = DetectorTraining.Build(config, new DetectorTrainingOptions { LogPeriod = 1000, Progress = progress });
        using (progress.Recorder = HostBackedCuda.RecordHostWaits()) run.Run();
        // Counts are read after each iteration; their differences are iterations 1 and 2 alone (the first count also holds the start of the run).
        Assert.Equal(3, progress.Counts.Count);
        for (var i = 1; i < progress.Counts.Count; i++)
            Assert.True(progress.Counts[i].Count - progress.Counts[i - 1].Count == perImage * images + perBatch + extra,
                        $"{file}, iteration {i} with {images} image(s): {progress.Counts[i].Count - progress.Counts[i - 1].Count} host waits, expected {perImage} per image + {perBatch} + {extra}; " +
                        $"all so far: {progress.Counts[i].Sites}");
    }

    /// <summary>The host waits of inference over the evaluation set, each where a size or value the host needs depends on
    /// data. Per image: the RPN's non-empty proposals and its NMS count, the detections above the score threshold, the
    /// final NMS count and the non-empty boxes after rescaling (GeneralizedRcnn.Rescale), and the three reads of the
    /// image's boxes, scores and classes for the results file. LogN's calibration reads μ and v once per run, not per
    /// batch (the model's calibrator holds μ and v whichever statistics the pass gathered).</summary>
    [Theory]
    [InlineData(null, 0)]
    [InlineData("ema", 2)]
    [InlineData("exact", 2)]
    public void InferenceWaitsForTheDeviceOnlyWhereDataDecides(string? statistics, int perRun)
    {
        const int perImage = 8;
        var dir = Toy.TempDir();
        var config = statistics is null
            ? Config("faster_rcnn_r18_fpn.yaml", dir, 2, Cuda, "DATASETS.TEST=[synth_lt_val]")
            : Config("logn.yaml", dir, 2, Cuda, $"MODEL.WEIGHTS={Baseline.Value}", $"MODEL.LONG_TAIL.LOGN.STATISTICS={statistics}", "DATASETS.TEST=[synth_lt_val]");
        var weights = statistics is null ? Baseline.Value : DetectorCalibration.Run(config, Baseline.Value, dir).WeightsPath;
        var test = DetectorTraining.LoadTestSet(config);
        Assert.True(test.Records.Count > 4, $"the evaluation set has {test.Records.Count} images; the count must span several batches of 4");
        using var detector = DetectorInference.Load(config, weights);
        using var recorder = HostBackedCuda.RecordHostWaits();
        DetectorTraining.WriteResults(detector, config, test, Path.Combine(dir, DetectorTraining.ResultsFile), batchSize: 4);
        Assert.True(recorder.Count == perImage * test.Records.Count + perRun,
                    $"{statistics ?? "baseline"}: {recorder.Count} host waits over {test.Records.Count} images, expected {perImage} per image + {perRun}; " +
                    $"sites: {recorder.Describe()}");
    }

    /// <summary>Reads the recorder at the end of every iteration.</summary>
    private sealed class WaitsPerIteration : IProgressReporter
    {
        public HostBackedCuda.HostWaitRecorder? Recorder { get; set; }
        public List<(long Count, string Sites)> Counts { get; } = [];
        public void Start(long startIteration, long maxIter) { }
        public void Report(TrainingProgress progress) => Counts.Add((Recorder!.Count, Recorder.Describe()));
        public void Finish() { }
    }

    private static void AssertOnDevice(DetectorTrainingRun run)
    {
        Assert.Equal(Cuda, run.Detector.Device);
        foreach (var (name, p) in run.Detector.NamedParameters()) Assert.True(p.Value.Device == Cuda, $"parameter {name} is on {p.Value.Device}");
        foreach (var (name, b) in run.Detector.NamedBuffers()) Assert.True(b.Value.Device == Cuda, $"buffer {name} is on {b.Value.Device}");
        using var state = run.Optimizer.StateDict();
        foreach (var (name, t) in state) Assert.True(t.Device == Cuda, $"optimizer state {name} is on {t.Device}");
        // the statistics a loss updates from device results every step follow the logits (Seesaw's counts and the
        // generators' states are host bookkeeping and may stay)
        // LogN's calibrator keeps its working copy beside the model's buffers (repo mode updates it every step)
        if (run.Detector.RoiHeads.BoxPredictor.Calibrator is { } calibrator)
            Assert.True(calibrator.Device == Cuda, $"the calibrator's statistics are on {calibrator.Device}");
        var loss = run.Detector.RoiHeads.BoxPredictor.ClassificationLoss;
        if (loss is Engine.LongTail.Eqlv2Loss or Engine.LongTail.FcblLoss)
        {
            using var lossState = loss.StateDict();
            foreach (var (name, t) in lossState) Assert.True(t.Device == Cuda, $"{loss.GetType().Name} state {name} is on {t.Device}");
        }
    }

    private static void AssertSameRun(string what, string expectedDir, string actualDir, bool evaluated)
    {
        var expected = TrainingLog.Read(Path.Combine(expectedDir, TrainingLog.FileName));
        var actual = TrainingLog.Read(Path.Combine(actualDir, TrainingLog.FileName));
        Assert.Equal(expected.Select(e => e.Iteration), actual.Select(e => e.Iteration));
        foreach (var (e, a) in expected.Zip(actual))
            foreach (var (key, value) in e.Losses)
                Assert.True(a.Losses.TryGetValue(key, out var v) && v.Equals(value), $"{what}: iteration {e.Iteration} {key} = {value} on the CPU, {(a.Losses.TryGetValue(key, out var w) ? w : double.NaN)} on the device");
        foreach (var file in RunFiles) AssertSameBytes(what, file, expectedDir, actualDir);
        if (evaluated)
            foreach (var file in new[] { DetectorTraining.ResultsFile, ReportFiles.MetricsFile }) AssertSameBytes(what, file, expectedDir, actualDir);
    }

    private static void AssertSameBytes(string what, string file, string expectedDir, string actualDir)
    {
        var expected = File.ReadAllBytes(Path.Combine(expectedDir, file));
        var actual = File.ReadAllBytes(Path.Combine(actualDir, file));
        Assert.True(expected.AsSpan().SequenceEqual(actual), $"{what}: {file} differs between the CPU ({expected.Length} bytes) and the device ({actual.Length} bytes)");
    }
}
