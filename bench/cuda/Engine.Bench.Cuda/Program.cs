// The engine's side of the CUDA kernel benchmark (bench/cuda/run.sh): reads the inputs and torchvision's outputs that
// bench/cuda/torch_peer.py wrote, checks every kernel's output against torchvision's (a mismatch is printed and makes
// the exit status 1), then times each kernel with CUDA events exactly as the peer was timed (warm-up, median of
// REPEATS calls, the small cases rotating over 8 copies of their inputs, the logit-sized ones timed as device work
// behind a queued 128 MiB copy) and prints one table with torchvision's
// medians, the speed-ups, and for the bandwidth-bound kernels the GB/s reached as a fraction of the device-to-device
// copy of the same bytes (the faster of torch's copy_ and the driver's cuMemcpyDtoDAsync, both timed here). LogN's
// statistics kernel is also timed with other block shapes (logn.update@CxS); `repo` mode's fused standardization
// (logn.standardize, forward and backward) runs against torch's batch_norm in training mode.
//   dotnet Engine.Bench.Cuda.dll DIR [REPEATS=50]     (DIR holds inputs.safetensors and torch_ms.json)
using System.Globalization;
using System.Text.Json;
using Engine;
using Engine.Cuda;
using Engine.Cuda.Compilation;
using Engine.Cuda.Kernels;
using Engine.Serialization;

var culture = CultureInfo.InvariantCulture;
if (args.Length < 1)
{
    Console.Error.WriteLine("usage: Engine.Bench.Cuda DIR [REPEATS=50]   (DIR: the output folder of bench/cuda/torch_peer.py)");
    return 2;
}
var dir = args[0];
var repeats = args.Length > 1 ? int.Parse(args[1], culture) : 50;
const int Rotate = 8;

using var inputs = SafeTensors.Load(Path.Combine(dir, "inputs.safetensors"));
using var peer = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "torch_ms.json")));
var torchMs = peer.RootElement.GetProperty("ms").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetDouble());
var copyGbps = peer.RootElement.GetProperty("copy_logits_gbps").GetDouble();
var bigCopyGbps = peer.RootElement.GetProperty("copy_1gib_gbps").GetDouble();

var device = CudaDevice.Open();
var compiler = new KernelCompiler();
Console.WriteLine($"{device.Name} ({device.Architecture.RealName}), {repeats} timed calls per case; torch {peer.RootElement.GetProperty("torch").GetString()}");

float[] F(string name) => inputs[name].ToArray<float>();
long[] L(string name) => inputs[name].ToArray<long>();
long[] Shape(string name) => inputs[name].Shape.ToArray().Select(d => (long)d).ToArray();
DeviceBuffer<T> Up<T>(T[] values) where T : unmanaged
{
    var b = device.Allocate<T>(Math.Max(values.Length, 1));
    b.CopyFrom(values);
    return b;
}

var engineMs = new Dictionary<string, double>();
var bytesMoved = new Dictionary<string, double>();

// The queue filler of the device-time cases, as the peer's: a 128 MiB copy before each timed call empties the L2 cache
// and keeps the device busy while the host issues the call, so the events bracket the device's work alone.
using var padSource = device.Allocate<float>(32 << 20);
using var padTarget = device.Allocate<float>(32 << 20);

// Median of `repeats` calls of run(i), each between two events; with deviceTime the host's launch work is hidden
// behind the queued copy, else the device waits for it and it counts.
double Median(Action<int> run, int warm = 5, bool deviceTime = false)
{
    for (var i = 0; i < warm; i++) run(i);
    device.Synchronize();
    var events = new List<(CudaEvent Start, CudaEvent End)>();
    for (var i = 0; i < repeats; i++)
    {
        var start = new CudaEvent(device, timing: true);
        var end = new CudaEvent(device, timing: true);
        if (deviceTime) padTarget.CopyFrom(padSource);
        start.Record(null);
        run(i);
        end.Record(null);
        events.Add((start, end));
    }
    device.Synchronize();
    var ms = events.Select(e => (double)CudaEvent.ElapsedMilliseconds(e.Start, e.End)).Order().ToArray();
    foreach (var (s, e) in events)
    {
        s.Dispose();
        e.Dispose();
    }
    return ms.Length % 2 == 1 ? ms[ms.Length / 2] : (ms[ms.Length / 2 - 1] + ms[ms.Length / 2]) / 2;
}

// A mismatch is reported and the run goes on to time the rest, then exits with status 1: one run on a lent GPU
// gives every figure and every disagreement.
var failures = new List<string>();

void Check(string what, float[] expected, float[] actual, double abs, double rel)
{
    if (expected.Length > actual.Length)
    {
        failures.Add($"{what}: {actual.Length} values, torchvision has {expected.Length}");
        return;
    }
    double worst = 0;
    var bad = 0;
    var first = -1;
    for (var i = 0; i < expected.Length; i++)
    {
        var err = Math.Abs(actual[i] - (double)expected[i]);
        if (!(err <= abs + rel * Math.Abs(expected[i])))
        {
            bad++;
            if (first < 0) first = i;
        }
        if (!double.IsNaN(err)) worst = Math.Max(worst, err);
    }
    if (bad > 0)
        failures.Add($"{what}: {bad} of {expected.Length} values outside {abs} + {rel}·|x|; first, element {first}: {actual[first]:R}, torchvision {expected[first]:R}");
    Console.WriteLine($"  {what}: {expected.Length} values, {bad} outside the tolerance (max abs difference from torchvision {worst:G3})");
}

// ---------------------------------------------------------------- ROIAlign over P2..P5, aligned, adaptive sampling
{
    var roiAlign = new RoiAlignKernels(device, compiler);
    var spec = new RoiAlignSpec(7, 7, [1.0 / 4, 1.0 / 8, 1.0 / 16, 1.0 / 32], SamplingRatio: 0, Aligned: true);
    var levels = Enumerable.Range(2, 4).Select(l => Up(F($"roi_align.p{l}"))).ToList();
    var views = levels.Select((b, l) => new DeviceView(b, Shape($"roi_align.p{l + 2}"))).ToList();
    using var rois = Up(F("roi_align.rois"));
    var roiView = DeviceView.Dense(rois, Shape("roi_align.rois"));
    using var levelOf = Up(L("roi_align.level"));
    var pooledShape = Shape("roi_align.pooled");
    var pooledCount = pooledShape.Aggregate(1L, (p, e) => p * e);
    using var pooled = device.Allocate<float>(pooledCount);
    using var gradOut = Up(F("roi_align.grad_out"));
    var gradLevels = Enumerable.Range(2, 4).Select(l => device.Allocate<float>(Shape($"roi_align.p{l}").Aggregate(1L, (p, e) => p * e))).ToList();
    var gradViews = gradLevels.Select((b, l) => (DeviceView?)new DeviceView(b, Shape($"roi_align.p{l + 2}"))).ToList();

    Console.WriteLine($"ROIAlign: {pooledShape[0]} RoIs × {pooledShape[1]} ch × 7×7 over P2–P5 {string.Join(", ", views.Select(v => $"{v.Shape[2]}×{v.Shape[3]}"))}");
    pooled.Fill(float.NaN);
    roiAlign.Forward(spec, views, roiView, levelOf, pooled);
    // torchvision computes the sample coordinates in float, the engine in double: near x = 300 px a float has an ulp of
    // 3e-5 px, and on N(0, 1) features (a slope of about 1 per pixel) that moves a bilinear sample by up to ~1e-4
    Check("forward", F("roi_align.pooled"), pooled.ToArray(), 2e-4, 1e-4);
    roiAlign.Backward(spec, DeviceView.Dense(gradOut, pooledShape), roiView, levelOf, gradViews);
    // the same coordinate rounding in every scattered weight, plus atomic additions in another order: 1e-3
    for (var l = 0; l < 4; l++) Check($"backward P{l + 2}", F($"roi_align.grad_p{l + 2}"), gradLevels[l].ToArray(), 1e-3, 1e-4);
    engineMs["roi_align.forward"] = Median(_ => roiAlign.Forward(spec, views, roiView, levelOf, pooled));
    engineMs["roi_align.backward"] = Median(_ => roiAlign.Backward(spec, DeviceView.Dense(gradOut, pooledShape), roiView, levelOf, gradViews));
    var featureBytes = views.Sum(v => v.Count) * 4.0;
    bytesMoved["roi_align.forward"] = pooledCount * 4.0 + featureBytes;        // PERFORMANCE.md's floor: output + features once
    bytesMoved["roi_align.backward"] = pooledCount * 4.0 + 2 * featureBytes;   // gradient read + level gradients cleared and scattered
    foreach (var b in levels.Concat(gradLevels)) b.Dispose();
    roiAlign.Dispose();
}

// ---------------------------------------------------------------- batched NMS, 1203 classes, IoU 0.5
{
    var nms = new NmsKernels(device, compiler);
    foreach (var count in new[] { 1000, 10000, 30000 })
    {
        var name = $"nms.{count}";
        var (hostBoxes, hostScores, hostClasses) = (F($"{name}.boxes"), F($"{name}.scores"), L($"{name}.classes"));
        var boxes = Enumerable.Range(0, Rotate).Select(_ => Up(hostBoxes)).ToList();
        var scores = Enumerable.Range(0, Rotate).Select(_ => Up(hostScores)).ToList();
        var classes = Enumerable.Range(0, Rotate).Select(_ => Up(hostClasses)).ToList();
        using var keep = device.Allocate<long>(count);
        int Run(int i) => nms.Run(DeviceView.Dense(boxes[i % Rotate], count, 4), DeviceView.Dense(scores[i % Rotate], count), classes[i % Rotate], 0.5, keep);
        var kept = Run(0);
        var expected = L($"{name}.keep");
        var actual = keep.ToArray().AsSpan(0, kept).ToArray();
        if (!expected.AsSpan().SequenceEqual(actual))
            failures.Add($"NMS {count}: {kept} kept, torchvision keeps {expected.Length}; {expected.Except(actual).Count()} of torchvision's not kept, " +
                         $"{actual.Except(expected).Count()} kept that torchvision suppresses");
        else Console.WriteLine($"  NMS {count} boxes: the same {kept} indices in the same order as torchvision's batched_nms");
        engineMs[name] = Median(i => Run(i));
        foreach (var b in boxes.Concat(scores)) b.Dispose();
        foreach (var b in classes) b.Dispose();
    }
    nms.Dispose();
}

// ---------------------------------------------------------------- LogN and group softmax on 1024 × 1204 logits
{
    var shape = Shape("logn.logits");
    var (rows, cols) = (shape[0], shape[1]);
    var logits = F("logn.logits");
    var copies = Enumerable.Range(0, Rotate).Select(_ => Up(logits)).ToList();
    DeviceView View(int i) => DeviceView.Dense(copies[i % Rotate], rows, cols);
    var n = rows * cols;

    var logN = new LogitNormKernels(device, compiler);
    using var mean = Up(F("logn.mean0"));
    using var variance = Up(F("logn.var0"));
    using var calibrated = device.Allocate<float>(n);
    logN.UpdateRunningStatistics(View(0), 0.01, mean, variance);
    // float sums of 1024 terms against torch's var_mean: 1e-5 relative
    Check("LogN running mean", F("logn.mean1"), mean.ToArray(), 1e-5, 1e-5);
    Check("LogN running variance", F("logn.var1"), variance.ToArray(), 1e-5, 1e-5);
    using var mean0 = Up(F("logn.mean0"));
    using var variance0 = Up(F("logn.var0"));
    logN.Calibrate(View(0), mean0, variance0, softmax: false, calibrated);
    Check("LogN calibrated logits", F("logn.calibrated"), calibrated.ToArray(), 1e-5, 1e-5);
    logN.Calibrate(View(0), mean0, variance0, softmax: true, calibrated);
    Check("LogN scores", F("logn.scores"), calibrated.ToArray(), 1e-6, 1e-5);
    engineMs["logn.update"] = Median(i => logN.UpdateRunningStatistics(View(i), 0.01, mean, variance), deviceTime: true);
    engineMs["logn.calibrate"] = Median(i => logN.Calibrate(View(i), mean0, variance0, false, calibrated), deviceTime: true);
    engineMs["logn.calibrate_softmax"] = Median(i => logN.Calibrate(View(i), mean0, variance0, true, calibrated), deviceTime: true);
    bytesMoved["logn.update"] = 4.0 * n;
    // the statistics kernel's other block shapes (columns × row slices), each checked first: logn.update@CxS
    var defaultBlock = logN.StatisticsBlock;
    foreach (var block in new[] { (32, 32), (16, 64), (8, 64), (4, 64), (32, 16), (8, 128) })
    {
        logN.StatisticsBlock = block;
        var name = $"logn.update@{block.Item1}x{block.Item2}";
        using var m = Up(F("logn.mean0"));
        using var v = Up(F("logn.var0"));
        logN.UpdateRunningStatistics(View(0), 0.01, m, v);
        Check($"LogN running mean ({name})", F("logn.mean1"), m.ToArray(), 1e-5, 1e-5);
        Check($"LogN running variance ({name})", F("logn.var1"), v.ToArray(), 1e-5, 1e-5);
        engineMs[name] = Median(i => logN.UpdateRunningStatistics(View(i), 0.01, m, v), deviceTime: true);
        bytesMoved[name] = 4.0 * n;
    }
    logN.StatisticsBlock = defaultBlock;
    bytesMoved["logn.calibrate"] = 8.0 * n;
    bytesMoved["logn.calibrate_softmax"] = 8.0 * n;

    // `repo` mode's batch standardization fused with the running update, against torch's batch_norm in training
    using var standardized = device.Allocate<float>(n);
    using var inverseSd = device.Allocate<float>(cols);
    using var runningMean = Up(F("logn.mean0"));
    using var runningVariance = Up(F("logn.var0"));
    using var standardizeGrad = Up(F("logn.standardize.grad_y"));
    using var standardizeGradX = device.Allocate<float>(n);
    logN.Standardize(View(0), 1e-5, standardized, inverseSd, (runningMean, runningVariance, 1e-4));
    Check("LogN standardized logits", F("logn.standardize.y"), standardized.ToArray(), 1e-5, 1e-5);
    Check("LogN standardization running mean", F("logn.standardize.mean1"), runningMean.ToArray(), 1e-6, 1e-6);
    Check("LogN standardization running variance", F("logn.standardize.var1"), runningVariance.ToArray(), 1e-6, 1e-6);
    logN.StandardizeBackward(DeviceView.Dense(standardized, rows, cols), DeviceView.Dense(standardizeGrad, rows, cols), inverseSd, standardizeGradX);
    Check("LogN standardization backward", F("logn.standardize.grad_x"), standardizeGradX.ToArray(), 1e-5, 1e-4);
    // one output per input copy, so the backward reads as many distinct bytes as the peer's (which keeps 8 graphs)
    var standardizedCopies = Enumerable.Range(0, Rotate).Select(_ => device.Allocate<float>(n)).ToList();
    engineMs["logn.standardize"] = Median(i => logN.Standardize(View(i), 1e-5, standardizedCopies[i % Rotate], inverseSd, (runningMean, runningVariance, 1e-4)), deviceTime: true);
    engineMs["logn.standardize_backward"] = Median(i => logN.StandardizeBackward(DeviceView.Dense(standardizedCopies[i % Rotate], rows, cols),
                                                                                 DeviceView.Dense(standardizeGrad, rows, cols), inverseSd, standardizeGradX), deviceTime: true);
    bytesMoved["logn.standardize"] = 8.0 * n;             // logits read once, y written
    bytesMoved["logn.standardize_backward"] = 12.0 * n;   // y and the gradient read, the logits' gradient written
    foreach (var b in standardizedCopies) b.Dispose();

    // the yardstick measured here too: the same copy through the driver (cuMemcpyDtoDAsync), without Python's dispatch
    var copyTargets = Enumerable.Range(0, Rotate).Select(_ => device.Allocate<float>(n)).ToList();
    engineMs["copy.logits"] = Median(i => copyTargets[i % Rotate].CopyFrom(copies[i % Rotate]), deviceTime: true);
    bytesMoved["copy.logits"] = 8.0 * n;
    foreach (var b in copyTargets) b.Dispose();
    logN.Dispose();

    var groupSoftmax = new GroupSoftmaxKernels(device, compiler);
    var offsets = L("group_softmax.offsets");
    using var y = device.Allocate<float>(n);
    using var gradY = Up(F("group_softmax.grad_y"));
    using var gradX = device.Allocate<float>(n);
    groupSoftmax.Forward(View(0), offsets, log: false, y);
    Check("group softmax forward", F("group_softmax.y"), y.ToArray(), 1e-6, 1e-5);
    groupSoftmax.Backward(DeviceView.Dense(y, rows, cols), DeviceView.Dense(gradY, rows, cols), offsets, false, gradX);
    Check("group softmax backward", F("group_softmax.grad_x"), gradX.ToArray(), 1e-6, 1e-5);
    var outputs = Enumerable.Range(0, Rotate).Select(_ => device.Allocate<float>(n)).ToList();
    engineMs["group_softmax.forward"] = Median(i => groupSoftmax.Forward(View(i), offsets, false, outputs[i % Rotate]), deviceTime: true);
    engineMs["group_softmax.backward"] = Median(i => groupSoftmax.Backward(View(i), DeviceView.Dense(gradY, rows, cols), offsets, false, outputs[i % Rotate]), deviceTime: true);
    bytesMoved["group_softmax.forward"] = 8.0 * n;
    bytesMoved["group_softmax.backward"] = 12.0 * n;
    foreach (var b in copies.Concat(outputs)) b.Dispose();
    groupSoftmax.Dispose();
}

File.WriteAllText(Path.Combine(dir, "engine_ms.json"), JsonSerializer.Serialize(engineMs, new JsonSerializerOptions { WriteIndented = true }));
Console.WriteLine();
// the logit kernels' yardstick is the faster of the two measured copies of their size (torch's copy_ and the driver's)
var engineCopyGbps = bytesMoved["copy.logits"] / engineMs["copy.logits"] / 1e6;
var logitCopyGbps = Math.Max(copyGbps, engineCopyGbps);
Console.WriteLine($"device-to-device copy of 1024×1204 floats: torch {copyGbps:F0} GB/s, driver {engineCopyGbps:F0} GB/s (bytes read and written; " +
                  $"'of copy' below uses the faster); of 1 GiB (torch): {bigCopyGbps:F0} GB/s");
Console.WriteLine($"{"case",-24} | {"torchvision ms",14} | {"engine ms",9} | {"speed-up",8} | {"engine GB/s",11} | {"of copy",7}");
Console.WriteLine($"{new string('-', 24)}-+-{new string('-', 14)}-+-{new string('-', 9)}-+-{new string('-', 8)}-+-{new string('-', 11)}-+-{new string('-', 7)}");
foreach (var (name, ms) in engineMs)
{
    var tv = torchMs.GetValueOrDefault(name.Split('@')[0], double.NaN); // case@variant: the case's torchvision time
    var gbps = bytesMoved.TryGetValue(name, out var bytes) ? bytes / ms / 1e6 : double.NaN;
    // ROIAlign moves hundreds of MB: against the 1 GiB copy; the 5 MB logit kernels against the copy of their own size
    var ofCopy = double.IsNaN(gbps) ? "" : (gbps / (name.StartsWith("roi_align", StringComparison.Ordinal) ? bigCopyGbps : logitCopyGbps)).ToString("P0", culture);
    Console.WriteLine(string.Create(culture, $"{name,-24} | {tv,14:F4} | {ms,9:F4} | {tv / ms,7:F1}x | {(double.IsNaN(gbps) ? "" : gbps.ToString("F0", culture)),11} | {ofCopy,7}"));
}
foreach (var f in failures) Console.WriteLine($"MISMATCH {f}");
return failures.Count == 0 ? 0 : 1;
