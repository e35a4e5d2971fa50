// Times the detection ops on the PERFORMANCE.md shapes: ROIAlign forward and forward+backward (1024 RoIs ×
// 256 channels × 7×7 from a 2×256×100×167 map, stride 8, aligned, adaptive sampling, boxes 8–208 px) and
// batched NMS (1k / 10k / 30k boxes over 1203 classes, IoU 0.5), and the RPN's NMS of one 800×1333 image (8819
// proposals over 5 FPN levels, IoU 0.7). Each case is first checked against the double
// reference, then timed (median of repeats). The inputs, and the engine's outputs, are written as raw
// little-endian arrays to the output folder so that torchvision_cpu.py times the same work on the same data and
// checks that both libraries agree.
//
//   dotnet run -c Release --project bench/detection/Engine.Bench.Detection -- --out DIR [--repeats N]
using System.Diagnostics;
using System.Globalization;
using Engine;
using Engine.Detection;
using Engine.Detection.Reference;
using Engine.Reference;

var outDir = "bench-detection-out";
var repeats = 11;
for (var i = 0; i < args.Length; i++)
{
    if (args[i] == "--out") outDir = args[++i];
    else if (args[i] == "--repeats") repeats = int.Parse(args[++i], CultureInfo.InvariantCulture);
    else
    {
        Console.Error.WriteLine($"unknown argument '{args[i]}'; usage: --out DIR [--repeats N]");
        return 2;
    }
}
Directory.CreateDirectory(outDir);
var results = new List<(string Case, double Ms)>();

// ---- ROIAlign ----
const int n = 2, c = 256, h = 100, w = 167, r = 1024, pooled = 7;
const double scale = 1.0 / 8;
var g = new Generator(20240601);
using var features = Tensor.Randn([n, c, h, w], g);
var rois = new float[r * 5];
for (var i = 0; i < r; i++)
{
    // box sides uniform in [8, 208] px, placed uniformly inside the 800×1336 image the map was computed from
    var bw = 8 + 200 * g.NextDouble();
    var bh = 8 + 200 * g.NextDouble();
    var x1 = g.NextDouble() * (w * 8 - bw);
    var y1 = g.NextDouble() * (h * 8 - bh);
    rois[i * 5] = g.NextInt64(n);
    (rois[i * 5 + 1], rois[i * 5 + 2], rois[i * 5 + 3], rois[i * 5 + 4]) = ((float)x1, (float)y1, (float)(x1 + bw), (float)(y1 + bh));
}
using var roisT = Tensor.From(rois, r, 5);
using var gradOut = Tensor.Randn([r, c, pooled, pooled], g);
Write(Path.Combine(outDir, "roi_features.f32"), features.ToFloatArray());
Write(Path.Combine(outDir, "roi_rois.f32"), rois);
Write(Path.Combine(outDir, "roi_grad.f32"), gradOut.ToFloatArray());

{
    // validation: the first 96 RoIs against the double reference, forward and backward (all channels)
    const int check = 96;
    var featRef = RefTensor.From(features);
    var roisD = rois.Take(check * 5).Select(v => (double)v).ToArray();
    using var x = features.Detach().RequireGrad();
    using var sub = Tensor.FromDoubles(roisD, [check, 5]);
    using var y = DetectionOps.RoiAlign(x, sub, (pooled, pooled), scale);
    var expected = RoiAlignReference.Forward([featRef], [scale], roisD, null, pooled, pooled, 0, true);
    Check("roi_align forward", expected.Data, y.ToDoubleArray(), 1e-4);
    using var gSub = gradOut.Narrow(0, 0, check).Contiguous();
    y.Backward(gSub);
    var expectedGrad = RoiAlignReference.Backward([featRef.Shape], [scale], roisD, null, pooled, pooled, 0, true, RefTensor.From(gSub));
    Check("roi_align backward", expectedGrad[0].Data, x.Grad!.ToDoubleArray(), 1e-4);
}
{
    using var y = DetectionOps.RoiAlign(features, roisT, (pooled, pooled), scale);
    Write(Path.Combine(outDir, "roi_out_engine.f32"), y.ToFloatArray());
}
results.Add(("roi_align forward", Median(repeats, () =>
{
    using var y = DetectionOps.RoiAlign(features, roisT, (pooled, pooled), scale);
})));
results.Add(("roi_align forward+backward", Median(repeats, () =>
{
    using var x = features.Detach().RequireGrad();
    using var y = DetectionOps.RoiAlign(x, roisT, (pooled, pooled), scale);
    y.Backward(gradOut);
})));

// ---- batched NMS ----
foreach (var count in new[] { 1000, 10000, 30000 })
{
    const int classes = 1203;
    var ng = new Generator(777 + (ulong)count);
    var boxes = new float[count * 4];
    var scores = new float[count];
    var ids = new long[count];
    var rank = ng.Permutation(count); // distinct scores: the kept order is then fully determined
    for (var i = 0; i < count; i++)
    {
        // coordinates on a 1/4 px grid: float32 and double IoUs then decide every threshold comparison alike
        var bw = Quarter(16 + 240 * ng.NextDouble());
        var bh = Quarter(16 + 240 * ng.NextDouble());
        var x1 = Quarter(ng.NextDouble() * (1333 - bw));
        var y1 = Quarter(ng.NextDouble() * (800 - bh));
        (boxes[i * 4], boxes[i * 4 + 1], boxes[i * 4 + 2], boxes[i * 4 + 3]) = (x1, y1, x1 + bw, y1 + bh);
        scores[i] = (float)((rank[i] + 1.0) / (count + 1));
        ids[i] = ng.NextInt64(classes);
    }
    results.Add(($"batched_nms {count}", NmsCase($"batched_nms {count}", $"nms{count}", boxes, scores, ids, 0.5)));
}

// ---- the RPN's NMS: one image's proposals, batched by FPN level ----
{
    // detectron2's training defaults at 800×1333: the top 2000 boxes of each of P2–P5 and all 819 anchors of P6,
    // IoU 0.7, the level as the class. Proposals crowd around objects, so a level keeps hundreds of boxes and each
    // candidate is compared with many kept ones (unlike LVIS post-processing, about 25 boxes per class).
    int[] perLevel = [2000, 2000, 2000, 2000, 819];
    var count = perLevel.Sum();
    var ng = new Generator(4242);
    var boxes = new float[count * 4];
    var scores = new float[count];
    var ids = new long[count];
    var rank = ng.Permutation(count);
    var objects = Enumerable.Range(0, 40).Select(_ => (X: 100 + 1133 * ng.NextDouble(), Y: 100 + 600 * ng.NextDouble(),
                                                       W: 24 + 300 * ng.NextDouble(), H: 24 + 300 * ng.NextDouble())).ToArray();
    for (int level = 0, i = 0; level < perLevel.Length; level++)
        for (var j = 0; j < perLevel[level]; j++, i++)
        {
            // a jittered copy of a random object, on a 1/4 px grid like the LVIS cases
            var o = objects[ng.NextInt64(objects.Length)];
            var bw = Quarter(o.W * (0.6 + 0.8 * ng.NextDouble()));
            var bh = Quarter(o.H * (0.6 + 0.8 * ng.NextDouble()));
            var x1 = Quarter(Math.Clamp(o.X - bw / 2 + o.W * 0.3 * (ng.NextDouble() - 0.5), 0, 1333 - bw));
            var y1 = Quarter(Math.Clamp(o.Y - bh / 2 + o.H * 0.3 * (ng.NextDouble() - 0.5), 0, 800 - bh));
            (boxes[i * 4], boxes[i * 4 + 1], boxes[i * 4 + 2], boxes[i * 4 + 3]) = (x1, y1, x1 + bw, y1 + bh);
            scores[i] = (float)((rank[i] + 1.0) / (count + 1));
            ids[i] = level;
        }
    results.Add(($"rpn nms {count}", NmsCase("rpn nms", "rpn", boxes, scores, ids, 0.7)));
}

using (var f = new StreamWriter(Path.Combine(outDir, "engine_ms.tsv")))
    foreach (var (name, ms) in results)
    {
        f.WriteLine($"{name}\t{ms.ToString("F3", CultureInfo.InvariantCulture)}");
        Console.WriteLine($"{name,-28} {ms,10:F3} ms");
    }
return 0;

// Checks batched NMS on the case against the double reference, writes its inputs and the engine's kept indices as
// PREFIX_{boxes,scores,classes,keep_engine} for torchvision_cpu.py, and returns the median time.
double NmsCase(string name, string prefix, float[] boxes, float[] scores, long[] ids, double threshold)
{
    var count = scores.Length;
    using var b = Tensor.From(boxes, count, 4);
    using var s = Tensor.From(scores, count);
    using var k = Tensor.From(ids, count);
    using (var keep = DetectionOps.BatchedNms(b, s, k, threshold))
    {
        var expected = BoxReference.Nms(boxes.Select(v => (double)v).ToArray(), scores.Select(v => (double)v).ToArray(), ids, threshold);
        var actual = keep.ToInt64Array();
        if (!expected.SequenceEqual(actual))
            throw new InvalidOperationException($"{name}: the engine keeps {actual.Length} boxes, the reference {expected.Length}; results differ.");
        Console.WriteLine($"{name}: {actual.Length} of {count} boxes kept, as the double reference keeps them");
        Write(Path.Combine(outDir, $"{prefix}_keep_engine.i64"), actual);
    }
    Write(Path.Combine(outDir, $"{prefix}_boxes.f32"), boxes);
    Write(Path.Combine(outDir, $"{prefix}_scores.f32"), scores);
    Write(Path.Combine(outDir, $"{prefix}_classes.i64"), ids);
    return Median(repeats * 3, () =>
    {
        using var keep = DetectionOps.BatchedNms(b, s, k, threshold);
    });
}

static float Quarter(double v) => (float)(Math.Round(v * 4) / 4);

static double Median(int repeats, Action body)
{
    body();
    body(); // warm-up: JIT, thread pool, allocator
    var times = new double[repeats];
    var cpu = new double[repeats];
    var process = Process.GetCurrentProcess();
    for (var i = 0; i < repeats; i++)
    {
        process.Refresh();
        var cpu0 = process.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        body();
        times[i] = sw.Elapsed.TotalMilliseconds;
        process.Refresh();
        cpu[i] = (process.TotalProcessorTime - cpu0).TotalMilliseconds;
    }
    Array.Sort(times);
    Array.Sort(cpu);
    // CPU time (all threads) shows the work done even when other processes share the cores
    Console.Error.WriteLine($"    median wall {times[repeats / 2]:F3} ms, median CPU {cpu[repeats / 2]:F3} ms, min wall {times[0]:F3} ms");
    return times[repeats / 2];
}

static void Check(string what, double[] expected, double[] actual, double tol)
{
    if (expected.Length != actual.Length) throw new InvalidOperationException($"{what}: {actual.Length} values, expected {expected.Length}.");
    for (var i = 0; i < expected.Length; i++)
        if (!(Math.Abs(expected[i] - actual[i]) <= tol * (1 + Math.Abs(expected[i]))))
            throw new InvalidOperationException($"{what}: element {i} is {actual[i]}, the reference says {expected[i]}.");
    Console.WriteLine($"{what}: matches the double reference ({expected.Length} values)");
}

static void Write<T>(string path, T[] data) where T : unmanaged =>
    File.WriteAllBytes(path, System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()).ToArray());
