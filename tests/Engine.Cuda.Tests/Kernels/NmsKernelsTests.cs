// kernels/nms.cu on a GPU against the CPU backend (CpuDetectionBackend.Nms, the same float IoU expression and the same
// score order, so the kept lists must be identical, ties included) and the double definition (BoxReference.Nms) on
// boxes whose IoU sits just above and just below the threshold. Sizes cover one box, one and several 64-box tiles,
// the tile sort alone and with global merge steps; class-aware runs use many classes, negative and sparse class ids
// and classes of one box; scores with many ties; empty input. The keep buffer is poisoned beyond what is written.
using Engine.Cuda.Kernels;
using Engine.Detection;
using Engine.Detection.Reference;
using Engine.Tests;
using static Engine.Cuda.Tests.Kernels.KernelTestSupport;

namespace Engine.Cuda.Tests.Kernels;

public sealed class NmsKernelsTests
{
    public static TheoryData<int, int, bool, double> Cases => new()
    {
        // boxes, classes (0 = plain NMS), few distinct scores (ties), IoU threshold
        { 0, 0, false, 0.5 },
        { 1, 0, false, 0.5 },
        { 7, 0, true, 0.5 },
        { 64, 0, false, 0.7 },
        { 65, 0, false, 0.3 },
        { 2047, 0, true, 0.5 },
        { 5000, 0, false, 0.6 },
        { 0, 3, false, 0.5 },
        { 300, 40, false, 0.5 },
        { 3000, 120, true, 0.5 },
        { 20000, 1203, false, 0.5 },
        { 1500, 1, false, 0.5 },
    };

    [CudaTheory]
    [MemberData(nameof(Cases))]
    public void KeptIndicesEqualTheCpuBackend(int count, int classes, bool ties, double threshold)
    {
        var random = new SeededRandom();
        var (boxes, scores) = RandomBoxes(random, count, ties);
        long[]? classIds = classes == 0 ? null
            : Enumerable.Range(0, count).Select(_ => (long)random.Random.Next(classes) * 1_000_003 - 5_000_000).ToArray();
        var expected = CpuNms(boxes, scores, classIds, threshold);
        var context = $"R={count} classes={classes} ties={ties} IoU>{threshold}";

        using var boxBuffer = Upload(boxes);
        using var scoreBuffer = Upload(scores);
        using var classBuffer = classIds is null ? null : Upload(classIds);
        using var keep = Poisoned(count, long.MinValue);
        var kept = Nms.Run(DeviceView.Dense(boxBuffer, count, 4), DeviceView.Dense(scoreBuffer, count), classBuffer, threshold, keep);
        var actual = keep.ToArray();
        Assert.True(expected.SequenceEqual(actual.Take(kept)),
            $"{context}: kept {kept} [{string.Join(", ", actual.Take(Math.Min(kept, 20)))}...], CPU kept {expected.Length} " +
            $"[{string.Join(", ", expected.Take(20))}...] (seed {random.Seed})");
        Assert.True(actual.Skip(kept).All(v => v == long.MinValue), $"{context}: keep was written past the {kept} kept indices (seed {random.Seed})");

        // the queued form leaves the count on the device
        using var deviceCount = Poisoned(1, -1);
        using var keepAgain = Poisoned(count, long.MinValue);
        Nms.Queue(DeviceView.Dense(boxBuffer, count, 4), DeviceView.Dense(scoreBuffer, count), classBuffer, threshold, keepAgain, deviceCount);
        Assert.Equal(kept, deviceCount.ToArray()[0]);
        Assert.Equal(actual, keepAgain.ToArray());
    }

    [CudaFact]
    public void IouJustAboveTheThresholdSuppressesAndJustBelowDoesNot()
    {
        // Box 0 = (0, 0, 10, 10); box 1 = (0, 0, 10, w) has IoU w / 10 with it. w = 5.01 → 0.501 > 0.5 suppressed;
        // box 2 = (20, 0, 30, 4.99) against box 3 = (20, 0, 30, 10): 0.499, kept. Box 4 touches box 0 (IoU 0).
        var boxes = new[] { 0f, 0, 10, 10, 0, 0, 10, 5.01f, 20, 0, 30, 4.99f, 20, 0, 30, 10, 10, 0, 20, 10 };
        var scores = new[] { 0.9f, 0.8f, 0.7f, 0.95f, 0.6f };
        var expected = BoxReference.Nms(Doubles(boxes), Doubles(scores), null, 0.5);
        Assert.Equal(new long[] { 3, 0, 2, 4 }, expected);
        using var boxBuffer = Upload(boxes);
        using var scoreBuffer = Upload(scores);
        using var keep = Poisoned(5, long.MinValue);
        var kept = Nms.Run(DeviceView.Dense(boxBuffer, 5, 4), DeviceView.Dense(scoreBuffer, 5), null, 0.5, keep);
        Assert.Equal(expected, keep.ToArray().Take(kept));

        // as separate classes nothing suppresses anything
        using var classBuffer = Upload(new long[] { 0, 1, 2, 3, 4 });
        kept = Nms.Run(DeviceView.Dense(boxBuffer, 5, 4), DeviceView.Dense(scoreBuffer, 5), classBuffer, 0.5, keep);
        Assert.Equal(new long[] { 3, 0, 1, 2, 4 }, keep.ToArray().Take(kept));
    }

    [CudaFact]
    public void BadArgumentsAreRejected()
    {
        using var boxes = GpuContext.Device.Allocate<float>(12);
        using var scores = GpuContext.Device.Allocate<float>(3);
        using var keep = GpuContext.Device.Allocate<long>(2);
        var shape = Assert.Throws<ArgumentException>(() => Nms.Run(DeviceView.Dense(boxes, 4, 3), DeviceView.Dense(scores, 3), null, 0.5, keep));
        Assert.Contains("(R, 4)", shape.Message);
        var nan = Assert.Throws<ArgumentException>(() => Nms.Run(DeviceView.Dense(boxes, 3, 4), DeviceView.Dense(scores, 3), null, double.NaN, keep));
        Assert.Contains("NaN", nan.Message);
        var small = Assert.Throws<ArgumentException>(() => Nms.Run(DeviceView.Dense(boxes, 3, 4), DeviceView.Dense(scores, 3), null, 0.5, keep));
        Assert.Contains("keep holds 2", small.Message);
    }

    private static long[] CpuNms(float[] boxes, float[] scores, long[]? classes, double threshold)
    {
        var r = scores.Length;
        using var b = Tensor.From(boxes, [r, 4]);
        using var s = Tensor.From(scores, [r]);
        using var c = classes is null ? null : Tensor.From(classes, [r]);
        using var keep = Tensor.Zeros([r], DType.Int64);
        var count = DetectionBackends.Cpu.Nms(b, s, c, threshold, keep);
        return keep.ToArray<long>().Take(count).ToArray();
    }

    /// <summary>Boxes in clusters (so many pairs overlap near any threshold), a few degenerate ones, and scores that
    /// are continuous or drawn from eight values (many ties).</summary>
    private static (float[] Boxes, float[] Scores) RandomBoxes(SeededRandom random, int count, bool ties)
    {
        var centers = Enumerable.Range(0, Math.Max(1, count / 12)).Select(_ => (X: random.Uniform(0, 800), Y: random.Uniform(0, 600))).ToArray();
        var boxes = new float[count * 4];
        var scores = new float[count];
        for (var i = 0; i < count; i++)
        {
            var (cx, cy) = centers[random.Random.Next(centers.Length)];
            var x = cx + random.Uniform(-15, 15);
            var y = cy + random.Uniform(-15, 15);
            var w = random.Uniform(20, 60);
            var h = random.Uniform(20, 60);
            if (i % 97 == 5) w = 0;   // degenerate: zero area
            (boxes[i * 4], boxes[i * 4 + 1], boxes[i * 4 + 2], boxes[i * 4 + 3]) = (x, y, x + w, y + h);
            scores[i] = ties ? random.Random.Next(8) / 8f : random.Uniform(0, 1);
        }
        return (boxes, scores);
    }
}
