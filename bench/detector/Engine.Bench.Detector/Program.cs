// Times the Faster R-CNN detector end to end on the CPU: a training step (data, forward, backward, SGD step) and
// inference, with the time split into data / backbone / RPN / ROI heads / backward+step, for two cases:
//   demo: configs/synth/faster_rcnn_r18_fpn.yaml (slim ResNet-18 FPN) on 160×160 synthetic images, batch 8 for both
//         training and inference, read through the real data loader (JPEG decode, resize, batching);
//   r50:  configs/lvis_v1/faster_rcnn_r50_fpn_1x.yaml (R50-FPN, 1203 classes, FrozenBN, random init: the config's
//         pretrained weights are not loaded) on 800×1067 images, training 2 images per step, inference 1 image.
// `prepare` writes everything torchvision_cpu.py needs to time torchvision on the same work: the synthetic JPEGs
// and their boxes in the order the loader reads them, the R50 images and boxes as raw arrays, and each case's
// settings (read off the engine's configs, so both sides use the same numbers). `demo` and `r50` time the engine
// and print one `case<TAB>metric<TAB>value` line per median.
//
//   Engine.Bench.Detector prepare --dir DIR --root REPO [--quick] [--gpu-steps]   (--gpu-steps: r50 step counts for a GPU)
//   Engine.Bench.Detector demo|r50 --dir DIR --root REPO
//   Engine.Bench.Detector r50 --dir DIR --root REPO --device cuda [--tf32] [--conv legacy|graph] [--conv-report FILE]
//         (on a GPU: images uploaded in the data time, each step and inference call timed to the device's completion;
//         the stage split is then launch time only. --conv picks cuDNN's API for convolutions, the graph API by default;
//         --conv-report writes what was chosen for each convolution shape and pass)
//   Engine.Bench.Detector profile --dir DIR --root REPO     (R50 backbone forward part by part, 1 image, no grad)
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Engine;
using Engine.Config;
using Engine.Cuda;
using Engine.Cuda.Backend;
using Engine.Cuda.Ops;
using Engine.Data.Imaging;
using Engine.Data.Loading;
using Engine.Data.Records;
using Engine.Data.Samplers;
using Engine.Data.Synthetic;
using Engine.Data.Transforms;
using Engine.Detection;
using Engine.Detection.Modeling;
using Engine.Detection.Modeling.MetaArch;
using Engine.Optim;
using Engine.Training;
using Engine.Training.Detection;

if (args.Length == 0 || args[0] is not ("prepare" or "demo" or "r50" or "profile"))
    return Usage("the first argument is the mode: prepare, demo, r50 or profile");
string? dir = null, root = null;
var quick = false;
var gpuSteps = false;
var tf32 = false;
var device = Device.Cpu;
CudnnApi? conv = null;
string? convReport = null;
for (var i = 1; i < args.Length; i++)
{
    if (args[i] == "--dir" && i + 1 < args.Length) dir = args[++i];
    else if (args[i] == "--root" && i + 1 < args.Length) root = args[++i];
    else if (args[i] == "--quick") quick = true;
    else if (args[i] == "--gpu-steps") gpuSteps = true;
    else if (args[i] == "--tf32") tf32 = true;
    else if (args[i] == "--device" && i + 1 < args.Length) device = Device.Parse(args[++i]);
    else if (args[i] == "--conv" && i + 1 < args.Length) conv = CudnnApis.Parse(args[++i]);
    else if (args[i] == "--conv-report" && i + 1 < args.Length) convReport = args[++i];
    else return Usage($"unknown argument '{args[i]}'");
}
if (dir is null || root is null) return Usage("--dir and --root are required");
if (device.Kind == DeviceKind.Cuda)
{
    if (args[0] != "r50") return Usage("--device cuda is for the r50 case");
    if (!CudaOpsRegistration.TryRegister(out var reason, new CudaBackendOptions(AllowTf32: tf32, ConvolutionApi: conv ?? CudaBackendOptions.Default.ConvolutionApi)))
    {
        Console.Error.WriteLine($"--device {device}: CUDA is not usable here: {reason}");
        return 2;
    }
}
else if (tf32 || conv is not null || convReport is not null) return Usage("--tf32, --conv and --conv-report apply to --device cuda");

var demoConfigPath = Path.Combine(root, "configs/synth/faster_rcnn_r18_fpn.yaml");
var r50ConfigPath = Path.Combine(root, "configs/lvis_v1/faster_rcnn_r50_fpn_1x.yaml");
switch (args[0])
{
    case "prepare":
        Directory.CreateDirectory(dir);
        Bench.PrepareDemo(ConfigLoader.Load(demoConfigPath), dir, quick);
        Bench.PrepareR50(ConfigLoader.Load(r50ConfigPath), dir, quick, gpuSteps);
        break;
    case "demo":
        Bench.RunDemo(ConfigLoader.Load(demoConfigPath), dir);
        break;
    case "r50":
        Bench.RunR50(ConfigLoader.Load(r50ConfigPath), dir, device);
        if (convReport is not null) File.WriteAllText(convReport, ((CudaBackend)Backends.For(device)).Convolution.Describe());
        break;
    case "profile":
        Bench.ProfileR50Backbone(ConfigLoader.Load(r50ConfigPath), dir);
        break;
}
return 0;

static int Usage(string why)
{
    Console.Error.WriteLine($"{why}; usage: Engine.Bench.Detector prepare|demo|r50|profile --dir DIR --root REPO [--quick] [--gpu-steps] [--device cpu|cuda [--tf32] [--conv legacy|graph] [--conv-report FILE]]");
    return 2;
}

/// <summary>How many steps a case runs: warm-up steps first (not timed), then the timed ones.</summary>
internal sealed record Repeats(int TrainWarmup, int TrainSteps, int InferWarmup, int InferSteps);

internal static class Bench
{
    private const ulong Seed = 20240611;

    // R50 case: the size of PERFORMANCE.md's torchvision row (800×1067; the short side is already the config's 800,
    // so neither side resizes), 2 training images per step, 1 per inference call.
    private const int R50Height = 800, R50Width = 1067, R50TrainImages = 2, R50BoxesPerImage = 8;

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    // ---------------------------------------------------------------- prepare

    /// <summary>Synthetic training and validation images (the demo's 160 px set, fewer images) and, for torchvision, the
    /// records in the order the loader delivers them.</summary>
    public static void PrepareDemo(EngineConfig config, string dir, bool quick)
    {
        var repeats = quick ? new Repeats(2, 5, 2, 5) : new Repeats(3, 15, 3, 15);
        var batch = config.Solver.ImsPerBatch;
        var size = config.Input.MinSizeTest;
        // enough validation images for every inference batch without wrapping around; training wraps (the sampler is endless)
        var images = (repeats.InferWarmup + repeats.InferSteps) * batch;
        var synth = SyntheticDataset.Generate(new SyntheticOptions
        {
            OutputDirectory = Path.Combine(dir, "synth"),
            Classes = config.Model.RoiHeads.NumClasses,
            TrainImages = images,
            ValImages = images,
            ImageSize = size,
            Seed = Seed,
        });
        WriteRecords(Path.Combine(dir, "demo_train.tsv"), LoadRecords(synth.TrainJsonPath, forTraining: true));
        WriteRecords(Path.Combine(dir, "demo_val.tsv"), LoadRecords(synth.ValJsonPath, forTraining: false));
        WriteSettings(Path.Combine(dir, "demo_settings.json"), config, repeats, batch, batch, (size, config.Input.MaxSizeTest));
    }

    /// <summary>Two 800×1067 images (uniform noise with the boxes filled in one grey level per box) and 8 random boxes
    /// each with random classes among the 1203, as raw arrays: images uint8 (N, 3, H, W), boxes float32 (N, B, 4) XYXY,
    /// classes int64 (N, B).</summary>
    /// <param name="gpuSteps">the step counts for a GPU, where a step takes tens of milliseconds: the first step searches
    /// convolution algorithms and compiles kernels, and the .NET runtime recompiles a method with full optimization
    /// only after about 30 calls (tiered compilation), so methods called once per step run unoptimized for the first
    /// 30 steps; 40 warm-up steps (30 with --quick) time the steady state a long training run sees, then enough
    /// timed steps for a median.</param>
    public static void PrepareR50(EngineConfig config, string dir, bool quick, bool gpuSteps)
    {
        var repeats = (quick, gpuSteps) switch
        {
            (true, true) => new Repeats(30, 10, 30, 10),
            (false, true) => new Repeats(40, 30, 40, 30),
            (true, false) => new Repeats(1, 2, 1, 3),
            _ => new Repeats(1, 4, 1, 6),
        };
        var g = new Generator(Seed + 1);
        var pixels = new byte[R50TrainImages * 3 * R50Height * R50Width];
        var boxes = new float[R50TrainImages * R50BoxesPerImage * 4];
        var classes = new long[R50TrainImages * R50BoxesPerImage];
        for (var i = 0; i < pixels.Length; i++) pixels[i] = (byte)g.NextInt64(256);
        for (var n = 0; n < R50TrainImages; n++)
            for (var b = 0; b < R50BoxesPerImage; b++)
            {
                var k = n * R50BoxesPerImage + b;
                // sides 32–432 px: the anchor sizes 32–512 all get matches
                var bw = Math.Round(32 + 400 * g.NextDouble());
                var bh = Math.Round(32 + 400 * g.NextDouble());
                var x1 = Math.Round(g.NextDouble() * (R50Width - bw));
                var y1 = Math.Round(g.NextDouble() * (R50Height - bh));
                (boxes[4 * k], boxes[4 * k + 1], boxes[4 * k + 2], boxes[4 * k + 3]) = ((float)x1, (float)y1, (float)(x1 + bw), (float)(y1 + bh));
                classes[k] = g.NextInt64(config.Model.RoiHeads.NumClasses);
                var grey = (byte)g.NextInt64(256);
                for (var c = 0; c < 3; c++)
                    for (var y = (int)y1; y < (int)(y1 + bh); y++)
                        Array.Fill(pixels, grey, ((n * 3 + c) * R50Height + y) * R50Width + (int)x1, (int)bw);
            }
        File.WriteAllBytes(Path.Combine(dir, "r50_images.u8"), pixels);
        Write(Path.Combine(dir, "r50_boxes.f32"), boxes);
        Write(Path.Combine(dir, "r50_classes.i64"), classes);
        WriteSettings(Path.Combine(dir, "r50_settings.json"), config, repeats, R50TrainImages, 1, (R50Height, config.Input.MaxSizeTest),
                      new Dictionary<string, object> { ["height"] = R50Height, ["width"] = R50Width, ["boxes_per_image"] = R50BoxesPerImage });
    }

    private static IReadOnlyList<DatasetRecord> LoadRecords(string json, bool forTraining) =>
        LvisRecords.Load(json, Path.GetDirectoryName(json), forTraining, readPolygons: false).Records;

    /// <summary>One line per record: path, then the boxes (x1,y1,x2,y2 joined by commas, boxes by ';') and the class indices.</summary>
    private static void WriteRecords(string path, IReadOnlyList<DatasetRecord> records)
    {
        using var f = new StreamWriter(path);
        foreach (var r in records)
        {
            var boxes = string.Join(';', r.Instances.Select(a => string.Join(',', a.BoxXyxy.Select(v => v.ToString("R", CultureInfo.InvariantCulture)))));
            f.WriteLine($"{Path.GetFullPath(r.FilePath)}\t{boxes}\t{string.Join(',', r.Instances.Select(a => a.CategoryIndex))}");
        }
    }

    /// <summary>The model and run settings torchvision_cpu.py builds its matching model from.</summary>
    private static void WriteSettings(string path, EngineConfig config, Repeats repeats, int trainBatch, int inferBatch, (int Min, int Max) size,
                                      Dictionary<string, object>? extra = null)
    {
        var m = config.Model;
        var settings = new Dictionary<string, object>
        {
            ["train_warmup"] = repeats.TrainWarmup, ["train_steps"] = repeats.TrainSteps,
            ["infer_warmup"] = repeats.InferWarmup, ["infer_steps"] = repeats.InferSteps,
            ["train_batch"] = trainBatch, ["infer_batch"] = inferBatch,
            ["min_size"] = size.Min, ["max_size"] = size.Max,
            ["pixel_mean_bgr"] = m.PixelMean.ToArray(), ["pixel_std_bgr"] = m.PixelStd.ToArray(),
            ["depth"] = m.Resnets.Depth, ["resnet_norm"] = m.Resnets.Norm.ToString(), ["fpn_norm"] = m.Fpn.Norm.ToString(),
            ["stem_out_channels"] = m.Resnets.StemOutChannels, ["res2_out_channels"] = m.Resnets.Res2OutChannels,
            ["freeze_at"] = m.Backbone.FreezeAt, ["fpn_out_channels"] = m.Fpn.OutChannels,
            ["anchor_sizes"] = m.AnchorGenerator.Sizes.Select(s => s.ToArray()).ToArray(),
            ["aspect_ratios"] = m.AnchorGenerator.AspectRatios[0].ToArray(),
            ["rpn_pre_nms_topk_train"] = m.Rpn.PreNmsTopkTrain, ["rpn_pre_nms_topk_test"] = m.Rpn.PreNmsTopkTest,
            ["rpn_post_nms_topk_train"] = m.Rpn.PostNmsTopkTrain, ["rpn_post_nms_topk_test"] = m.Rpn.PostNmsTopkTest,
            ["rpn_nms_thresh"] = m.Rpn.NmsThresh, ["rpn_batch_size_per_image"] = m.Rpn.BatchSizePerImage,
            ["rpn_positive_fraction"] = m.Rpn.PositiveFraction, ["rpn_iou_thresholds"] = m.Rpn.IouThresholds.ToArray(),
            ["num_classes"] = m.RoiHeads.NumClasses, ["roi_batch_size_per_image"] = m.RoiHeads.BatchSizePerImage,
            ["roi_positive_fraction"] = m.RoiHeads.PositiveFraction, ["roi_iou_threshold"] = m.RoiHeads.IouThresholds[0],
            ["score_thresh_test"] = m.RoiHeads.ScoreThreshTest, ["nms_thresh_test"] = m.RoiHeads.NmsThreshTest,
            ["detections_per_image"] = config.Test.DetectionsPerImage,
            ["num_fc"] = m.RoiBoxHead.NumFc, ["fc_dim"] = m.RoiBoxHead.FcDim,
            ["pooler_resolution"] = m.RoiBoxHead.PoolerResolution, ["pooler_sampling_ratio"] = m.RoiBoxHead.PoolerSamplingRatio,
            ["lr"] = TrainLr(config), ["momentum"] = config.Solver.Momentum, ["weight_decay"] = config.Solver.WeightDecay,
        };
        foreach (var (k, v) in extra ?? []) settings[k] = v;
        File.WriteAllText(path, JsonSerializer.Serialize(settings, Json));
    }

    /// <summary>The schedule's first learning rate (deep in the warm-up), held for the whole benchmark: the model stays
    /// near its initialization on both sides, so both do the same work in every step.</summary>
    private static double TrainLr(EngineConfig config) => SolverSetup.BuildSchedule(config.Solver).LrAt(0);

    private static Repeats ReadRepeats(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        int Get(string name) => doc.RootElement.GetProperty(name).GetInt32();
        return new Repeats(Get("train_warmup"), Get("train_steps"), Get("infer_warmup"), Get("infer_steps"));
    }

    // ---------------------------------------------------------------- run

    /// <summary>The demo: training through the data loader (sequential order, no flip, so torchvision reads the same
    /// images), then inference over the validation images, batch IMS_PER_BATCH for both.</summary>
    public static void RunDemo(EngineConfig config, string dir)
    {
        var repeats = ReadRepeats(Path.Combine(dir, "demo_settings.json"));
        var batch = config.Solver.ImsPerBatch;
        var synth = Path.Combine(dir, "synth");
        var train = LoadRecords(Path.Combine(synth, "train.json"), forTraining: true);
        var val = LoadRecords(Path.Combine(synth, "val.json"), forTraining: false);
        var input = config.Input;
        var order = input.Format == PixelFormat.BGR ? PixelOrder.Bgr : PixelOrder.Rgb;
        var loaderOptions = new DataLoaderOptions
        {
            BatchSize = batch,
            Workers = Math.Max(1, config.Dataloader.NumWorkers),
            Seed = Seed,
            DecodeOrder = order,
            Normalize = new Normalize(order, [0, 0, 0], [1, 1, 1]), // the detector normalizes, as in training runs
            SizeDivisibility = 32,
        };

        using var detector = DetectorBuilder.FromConfig(config, new Generator(Seed));
        var times = new StageTimes();
        detector.StageTimer = times;
        using var optimizer = SolverSetup.BuildOptimizer(detector, config.Solver);
        optimizer.Lr = TrainLr(config);
        var model = new DetectorTrainable(detector);
        var trainSteps = new List<StepTimes>();
        using (var loader = new DataLoader(train, new TrainingSampler(train.Count, Seed, shuffle: false),
                                           TransformPipeline.Training(input.MinSizeTrain.ToArray(), input.MaxSizeTrain, flipProbability: 0), loaderOptions))
            for (var step = 0; step < repeats.TrainWarmup + repeats.TrainSteps; step++)
            {
                var s = TrainStep(optimizer, times, () => loader.Next() ?? throw new InvalidOperationException("the training loader ended"),
                                  b => model.Losses(b));
                Log("demo train", step, repeats.TrainWarmup, s);
                if (step >= repeats.TrainWarmup) trainSteps.Add(s);
            }

        detector.Eval();
        var inferSteps = new List<StepTimes>();
        using (var loader = new DataLoader(val, new InferenceSampler(val.Count), DetectorTraining.InferenceTransforms(input), loaderOptions))
            for (var step = 0; step < repeats.InferWarmup + repeats.InferSteps; step++)
            {
                var s = InferStep(detector, times, () => loader.Next() ?? throw new InvalidOperationException("the validation loader ended"),
                                  b => new ImageList(b.Images.Detach(), b.ImageSizes, b.OriginalSizes));
                Log("demo infer", step, repeats.InferWarmup, s);
                if (step >= repeats.InferWarmup) inferSteps.Add(s);
            }
        Report("demo", trainSteps, batch, inferSteps, batch);
    }

    /// <summary>R50-FPN: training steps on the two prepared images, inference on one image at a time, on
    /// <paramref name="device"/> (the images are kept on the host and uploaded in each step's data time).</summary>
    public static void RunR50(EngineConfig config, string dir, Device device)
    {
        var repeats = ReadRepeats(Path.Combine(dir, "r50_settings.json"));
        const int n = R50TrainImages, h = R50Height, w = R50Width, b = R50BoxesPerImage;
        var pixels = File.ReadAllBytes(Path.Combine(dir, "r50_images.u8"));
        var boxes = Read<float>(Path.Combine(dir, "r50_boxes.f32"));
        var classes = Read<long>(Path.Combine(dir, "r50_classes.i64"));
        if (pixels.Length != n * 3 * h * w || boxes.Length != n * b * 4 || classes.Length != n * b)
            throw new InvalidDataException($"r50: the prepared inputs in {dir} do not have the expected sizes; run `prepare` again.");
        var images = Enumerable.Range(0, n).Select(i =>
        {
            var image = new float[3 * h * w];
            for (var k = 0; k < image.Length; k++) image[k] = pixels[i * image.Length + k];
            return Tensor.From(image, 3, h, w);
        }).ToArray();

        using var detector = DetectorBuilder.FromConfig(config, new Generator(Seed));
        detector.To(device);
        var times = new StageTimes();
        detector.StageTimer = times;
        using var optimizer = SolverSetup.BuildOptimizer(detector, config.Solver);
        optimizer.Lr = TrainLr(config);
        // On a GPU the host runs ahead of the stream; reading one element of a parameter waits for everything queued.
        var (_, probe) = detector.NamedParameters().Last();
        void Complete()
        {
            if (device.Kind == DeviceKind.Cpu) return;
            using var flat = probe.Value.Reshape(-1);
            using var first = flat.Narrow(0, 0, 1);
            _ = first.Item();
        }
        ImageList Upload(IReadOnlyList<Tensor> host)
        {
            if (device.Kind == DeviceKind.Cpu) return ImageList.FromTensors(host, 32);
            var moved = host.Select(t => t.To(device)).ToList();
            try
            {
                return ImageList.FromTensors(moved, 32);
            }
            finally
            {
                foreach (var t in moved) t.Dispose();
            }
        }
        // ENGINE_BENCH_PROFILE=train|infer: the first timed step of that phase runs inside a profiler range
        // (`ncu --profile-from-start off` records its kernels alone)
        var profiled = Environment.GetEnvironmentVariable("ENGINE_BENCH_PROFILE");
        if (profiled is not (null or "" or "train" or "infer"))
            throw new ArgumentException($"ENGINE_BENCH_PROFILE is '{profiled}'; it takes train or infer.");
        using var cudaDevice = device.Kind == DeviceKind.Cuda && !string.IsNullOrEmpty(profiled) ? CudaDevice.Open(device.Index) : null;
        IDisposable? ProfileRange(string phase, int step, int warmup) =>
            cudaDevice is not null && profiled == phase && step == warmup ? CudaProfilerRange.Start(cudaDevice) : null;
        var trainSteps = new List<StepTimes>();
        for (var step = 0; step < repeats.TrainWarmup + repeats.TrainSteps; step++)
        {
            using var range = ProfileRange("train", step, repeats.TrainWarmup);
            var s = TrainStep(optimizer, times, () => Upload(images), list =>
            {
                var targets = Enumerable.Range(0, n).Select(i => Instances.FromGroundTruth((h, w),
                    Tensor.From(boxes.AsSpan(i * b * 4, b * 4).ToArray(), [b, 4], device), Tensor.From(classes.AsSpan(i * b, b).ToArray(), [b], device))).ToList();
                try
                {
                    return detector.Losses(list, targets);
                }
                finally
                {
                    foreach (var t in targets) t.Dispose();
                }
            }, Complete);
            Log("r50 train", step, repeats.TrainWarmup, s);
            if (step >= repeats.TrainWarmup) trainSteps.Add(s);
        }

        detector.Eval();
        var inferSteps = new List<StepTimes>();
        for (var step = 0; step < repeats.InferWarmup + repeats.InferSteps; step++)
        {
            var image = images[step % n];
            using var range = ProfileRange("infer", step, repeats.InferWarmup);
            var s = InferStep(detector, times, () => Upload([image]), list => list, Complete);
            Log("r50 infer", step, repeats.InferWarmup, s);
            if (step >= repeats.InferWarmup) inferSteps.Add(s);
        }
        foreach (var t in images) t.Dispose();
        Report("r50", trainSteps, n, inferSteps, 1);
    }

    /// <summary>Where the R50 backbone's forward goes: the stem, each ResNet stage and the FPN timed on their own (the
    /// first prepared image, padded, no grad), median of 3 after a warm-up, as `profile part wall_ms cpu_ms` lines.</summary>
    public static void ProfileR50Backbone(EngineConfig config, string dir)
    {
        const int h = R50Height, w = R50Width;
        var pixels = File.ReadAllBytes(Path.Combine(dir, "r50_images.u8"));
        var image = new float[3 * h * w];
        for (var k = 0; k < image.Length; k++) image[k] = pixels[k];
        using var raw = Tensor.From(image, 3, h, w);
        using var list = ImageList.FromTensors([raw], 32);
        using var backbone = DetectorBuilder.BuildBackbone(config.Model, new Generator(Seed));
        var resnet = (Engine.Detection.Modeling.Backbone.ResNet)backbone.BottomUp;
        using var noGrad = GradMode.NoGrad();
        var parts = new List<(string Name, Func<Tensor, Tensor> Run)> { ("stem", x => resnet.Stem.Forward(x)) };
        parts.AddRange(resnet.Stages.Select(st => (st.Name, (Func<Tensor, Tensor>)(x => st.Stage.Forward(x)))));
        var input = list.Tensor;
        var inputs = new List<Tensor>();
        foreach (var (name, run) in parts)
        {
            inputs.Add(input);
            var (wall, cpu) = MedianOf3(() => run(input).Dispose());
            Console.WriteLine($"profile\t{name}\t{wall.ToString("F3", CultureInfo.InvariantCulture)}\t{cpu.ToString("F3", CultureInfo.InvariantCulture)}");
            input = run(input);
        }
        input.Dispose();
        foreach (var t in inputs.Skip(1)) t.Dispose();
        var features = resnet.Forward(list.Tensor);
        var (fw, fc) = MedianOf3(() =>
        {
            foreach (var t in backbone.Fpn.Forward(features).Values) t.Dispose();
        });
        Console.WriteLine($"profile\tfpn\t{fw.ToString("F3", CultureInfo.InvariantCulture)}\t{fc.ToString("F3", CultureInfo.InvariantCulture)}");
        foreach (var t in features.Values) t.Dispose();
    }

    private static (double Wall, double Cpu) MedianOf3(Action body)
    {
        body();
        var walls = new List<double>();
        var cpus = new List<double>();
        for (var i = 0; i < 3; i++)
        {
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            var start = Stopwatch.GetTimestamp();
            body();
            walls.Add(Ms(Stopwatch.GetElapsedTime(start)));
            cpus.Add(Ms(Process.GetCurrentProcess().TotalProcessorTime - cpu0));
        }
        return (Median(walls), Median(cpus));
    }

    /// <summary>Wall times of one step, in ms, and the process CPU time (all threads); Detections: what an inference
    /// call returned over its images (its post-processing's cost grows with how many scores pass the threshold, which
    /// depends on the weights), null for a training step.</summary>
    private sealed record StepTimes(double Step, double Data, double Backbone, double Rpn, double RoiHeads, double BackwardStep, double Cpu,
                                    int? Detections = null);

    /// <summary>One training step: fetch the batch (data), the forward (split by the detector's stage timer), the summed
    /// losses' backward and the SGD step.</summary>
    private static StepTimes TrainStep<TBatch>(Sgd optimizer, StageTimes times, Func<TBatch> next,
                                               Func<TBatch, IReadOnlyDictionary<string, Tensor>> losses, Action? complete = null) where TBatch : IDisposable
    {
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var start = Stopwatch.GetTimestamp();
        using var batch = next();
        var data = Stopwatch.GetElapsedTime(start);
        times.Reset();
        optimizer.ZeroGrad();
        var values = losses(batch);
        var forwardEnd = Stopwatch.GetTimestamp();
        using (var scope = DisposeScope.Begin())
        {
            Tensor? total = null;
            foreach (var loss in values.Values) total = total is null ? loss : total.Add(loss);
            if (!double.IsFinite(total!.Item()))
                throw new InvalidOperationException($"the training loss is {total.Item()}; the benchmark times finite steps only.");
            total.Backward();
            optimizer.Step();
            complete?.Invoke();
        }
        foreach (var loss in values.Values) loss.Dispose();
        var end = Stopwatch.GetTimestamp();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpu0;
        return new StepTimes(Ms(Stopwatch.GetElapsedTime(start, end)), Ms(data), Ms(times[DetectorStage.Backbone]), Ms(times[DetectorStage.Rpn]),
                             Ms(times[DetectorStage.RoiHeads]), Ms(Stopwatch.GetElapsedTime(forwardEnd, end)), Ms(cpu));
    }

    /// <summary>One inference call: fetch the batch (data) and the forward under NoGrad (split by the stage timer).</summary>
    private static StepTimes InferStep<TBatch>(GeneralizedRcnn detector, StageTimes times, Func<TBatch> next, Func<TBatch, ImageList> images,
                                               Action? complete = null) where TBatch : IDisposable
    {
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var start = Stopwatch.GetTimestamp();
        using var batch = next();
        var data = Stopwatch.GetElapsedTime(start);
        times.Reset();
        var detections = 0;
        using (GradMode.NoGrad())
        {
            var list = images(batch);
            try
            {
                foreach (var d in detector.Inference(list))
                {
                    detections += d.Count;
                    d.Dispose();
                }
                complete?.Invoke();
            }
            finally
            {
                if (!ReferenceEquals(list, batch)) list.Dispose();
            }
        }
        var end = Stopwatch.GetTimestamp();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpu0;
        return new StepTimes(Ms(Stopwatch.GetElapsedTime(start, end)), Ms(data), Ms(times[DetectorStage.Backbone]), Ms(times[DetectorStage.Rpn]),
                             Ms(times[DetectorStage.RoiHeads]), 0, Ms(cpu), detections);
    }

    private static void Log(string what, int step, int warmup, StepTimes s) =>
        Console.Error.WriteLine($"  engine {what} {(step < warmup ? "warm-up" : "step")} {step}: {s.Step:F0} ms (data {s.Data:F0}, backbone {s.Backbone:F0}, " +
                                $"rpn {s.Rpn:F0}, roi_heads {s.RoiHeads:F0}, backward+step {s.BackwardStep:F0}; cpu {s.Cpu:F0})" +
                                (s.Detections is { } n ? $", {n} detections" : ""));

    /// <summary>Median of each column over the timed steps, as `case metric ms` lines; the images/s come from the median step.</summary>
    private static void Report(string name, List<StepTimes> train, int trainBatch, List<StepTimes> infer, int inferBatch)
    {
        void Line(string metric, double value) => Console.WriteLine($"{name}\t{metric}\t{value.ToString("F3", CultureInfo.InvariantCulture)}");
        foreach (var (phase, steps, batch) in new[] { ("train", train, trainBatch), ("infer", infer, inferBatch) })
        {
            Line($"{phase}.images_per_s", batch * 1000 / Median(steps.Select(s => s.Step)));
            Line($"{phase}.step_ms", Median(steps.Select(s => s.Step)));
            Line($"{phase}.data_ms", Median(steps.Select(s => s.Data)));
            Line($"{phase}.backbone_ms", Median(steps.Select(s => s.Backbone)));
            Line($"{phase}.rpn_ms", Median(steps.Select(s => s.Rpn)));
            Line($"{phase}.roi_heads_ms", Median(steps.Select(s => s.RoiHeads)));
            if (phase == "train") Line($"{phase}.backward_step_ms", Median(steps.Select(s => s.BackwardStep)));
            Line($"{phase}.cpu_ms", Median(steps.Select(s => s.Cpu)));
        }
    }

    private static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    private static double Ms(TimeSpan t) => t.TotalMilliseconds;

    private static void Write<T>(string path, T[] data) where T : unmanaged =>
        File.WriteAllBytes(path, System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()).ToArray());

    private static T[] Read<T>(string path) where T : unmanaged =>
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, T>(File.ReadAllBytes(path)).ToArray();
}
