// Every member of CudaLongTailBackend against CpuLongTailBackend on fresh random inputs (seed in every failure
// message), odd and empty sizes, outputs poisoned before the call, in-place state copied to the GPU before the CPU
// updates its own. Tolerances: per-element values (gradients, probabilities) differ by a few ulp of expf / logf /
// division, so 1e-6 abs + 1e-5 rel; row losses are sums of K terms the CPU adds in float (8-lane vectors) and the
// GPU in double, so their difference is float rounding of the partial sums, ≤ ~K·6e-8·max term: 1e-4 abs + 1e-5 rel
// for K ≤ 100 and terms ≤ 10; column sums over N rows (gradient statistics, confusion) likewise 1e-4 + 1e-5; LogN
// statistics are double on both sides and rounded once to float: 1e-6 + 1e-6.
using Engine.LongTail;
using Engine.Tests;
using static Engine.Cuda.Tests.Ops.OpsParity;

namespace Engine.Cuda.Tests.Ops;

public sealed class CudaLongTailBackendTests
{
    private static ILongTailBackend On(Device d) => LongTailBackends.For(d);

    private static Tensor Empty(Device d, params int[] shape) => Tensor.Empty(shape, DType.Float32, d);

    [CudaTheory]
    [InlineData(0, 5, 4, true)]
    [InlineData(1, 1, 1, false)]
    [InlineData(37, 11, 10, true)]
    [InlineData(300, 81, 80, true)]
    public void WeightedSigmoidBce(int n, int k, int numForeground, bool statistics)
    {
        var g = Fresh(out var seed);
        using var logits = Tensor.From<float>(Normal(g, n * k, 3), [n, k]);
        // labels up to K: K is a background row of a head without a background logit (no positive column)
        using var labels = Tensor.From<long>(Integers(g, n, 0, k + 1), [n]);
        using var pos = Tensor.From<float>(Uniform(g, k, 0, 2), [k]);
        using var negFg = Tensor.From<float>(Uniform(g, k, 0, 2), [k]);
        using var negBg = Tensor.From<float>(Uniform(g, k, 0, 2), [k]);
        Check($"WeightedSigmoidBce N={n} K={k}", seed, [logits, labels, pos, negFg, negBg], (d, x) =>
        {
            var (loss, grad) = (Empty(d, n), Empty(d, n, k));
            var (sp, sn) = statistics ? (Empty(d, k), Empty(d, k)) : (null, null);
            On(d).WeightedSigmoidBce(x[0], x[1], numForeground, x[2], x[3], x[4], 1.0 / Math.Max(n, 1), loss, grad, sp, sn);
            return statistics ? [loss, grad, sp!, sn!] : [loss, grad];
        }, 1e-4, 1e-5);
    }

    [CudaTheory]
    [InlineData(0, 4, 0.5, true)]
    [InlineData(1, 1, 0.5, true)]
    [InlineData(45, 9, 0.0, true)]
    [InlineData(200, 64, 0.7, true)]
    [InlineData(200, 64, 0.7, false)]
    public void Fcbl(int n, int c, double alpha, bool reweight)
    {
        var g = Fresh(out var seed);
        var k = c + 1;
        using var logits = Tensor.From<float>(Normal(g, n * k, 3), [n, k]);
        using var labels = Tensor.From<long>(Integers(g, n, 0, c + 1), [n]);
        using var confusion = Tensor.From<float>(Uniform(g, c * c, 0, 5), [c, c]);
        using var counts = Tensor.From<float>(Integers(g, c, 0, 11).Select(v => (float)v).ToArray(), [c]);
        Check($"Fcbl N={n} C={c} alpha={alpha} reweight={reweight}", seed, [logits, labels, confusion, counts], (d, x) =>
        {
            var (loss, grad) = (Empty(d, n), Empty(d, n, k));
            On(d).Fcbl(x[0], x[1], x[2], x[3], alpha, 0.2, reweight, 0.5, loss, grad);
            return [loss, grad];
        }, 1e-4, 1e-5);
    }

    [CudaTheory]
    [InlineData(0, 3)]
    [InlineData(1, 1)]
    [InlineData(129, 33)]
    public void AccumulateConfusion(int n, int c)
    {
        var g = Fresh(out var seed);
        var k = c + 1;
        using var logits = Tensor.From<float>(Normal(g, n * k, 3), [n, k]);
        using var labels = Tensor.From<long>(Integers(g, n, 0, c + 1), [n]);
        var confusion = Tensor.From<float>(Uniform(g, c * c, 0, 5), [c, c]);
        var counts = Tensor.From<float>(Integers(g, c, 0, 11).Select(v => (float)v).ToArray(), [c]);
        Check($"AccumulateConfusion N={n} C={c}", seed, [logits, labels, confusion, counts], (d, x) =>
        {
            On(d).AccumulateConfusion(x[0], x[1], x[2], x[3]);
            return [x[2], x[3]];
        }, 1e-4, 1e-5);
    }

    [CudaTheory]
    [InlineData(0, 3)]
    [InlineData(1, 1)]
    [InlineData(77, 19)]
    [InlineData(250, 1204)]
    public void SoftmaxCrossEntropy(int n, int k)
    {
        var g = Fresh(out var seed);
        using var logits = Tensor.From<float>(Normal(g, n * k, 3), [n, k]);
        using var labels = Tensor.From<long>(Integers(g, n, 0, k), [n]);
        using var weight = Tensor.From<float>(Uniform(g, k, 0.1, 2), [k]);
        Check($"SoftmaxCrossEntropy N={n} K={k}", seed, [logits, labels, weight], (d, x) =>
        {
            var (loss, grad) = (Empty(d, n), Empty(d, n, k));
            On(d).SoftmaxCrossEntropy(x[0], x[1], x[2], 0.25, loss, grad);
            return [loss, grad];
        }, 1e-5, 1e-5);
    }

    [CudaFact]
    public void ALabelOutOfRangeIsRaisedAtTheNextWait()
    {
        using var logits = Tensor.From<float>([1, 2, 3, 4, 5, 6], [2, 3], GpuDevice);
        using var labels = Tensor.From<long>([0, 3], [2], GpuDevice);
        using var weight = Tensor.From<float>([1, 1, 1], [3], GpuDevice);
        using var loss = Tensor.Empty([2], DType.Float32, GpuDevice);
        using var grad = Tensor.Empty([2, 3], DType.Float32, GpuDevice);
        On(GpuDevice).SoftmaxCrossEntropy(logits, labels, weight, 1, loss, grad);
        var e = Assert.Throws<ArgumentException>(() => GpuBackend.Synchronize());
        Assert.StartsWith("SoftmaxCrossEntropy: label 3 at row 1 is outside 0..2", e.Message);
    }

    [CudaTheory]
    [InlineData(0, 3)]
    [InlineData(1, 1)]
    [InlineData(93, 30)]
    public void Seesaw(int n, int c)
    {
        var g = Fresh(out var seed);
        var k = c + 2;
        using var logits = Tensor.From<float>(Normal(g, n * k, 3), [n, k]);
        using var labels = Tensor.From<long>(Integers(g, n, 0, c + 1), [n]);
        // counts from 0 (clamped to 1) to 1000
        using var counts = Tensor.From<long>(Integers(g, c, 0, 1001), [c]);
        Check($"Seesaw N={n} C={c}", seed, [logits, labels, counts], (d, x) =>
        {
            var (loss, grad) = (Empty(d, n), Empty(d, n, k));
            On(d).Seesaw(x[0], x[1], x[2], 0.8, 2.0, 1e-2, 1.0 / Math.Max(n, 1), loss, grad);
            return [loss, grad];
        }, 1e-4, 1e-5);
    }

    public static TheoryData<int, long[], bool> GroupCases => new()
    {
        { 0, [0, 2, 5], false },
        { 1, [0, 1], true },
        { 37, [0, 1, 4, 11, 12, 45], false },
        { 37, [0, 1, 4, 11, 12, 45], true },
    };

    [CudaTheory]
    [MemberData(nameof(GroupCases))]
    public void GroupSoftmaxForwardAndBackward(int n, long[] offsets, bool log)
    {
        var g = Fresh(out var seed);
        var k = (int)offsets[^1];
        using var x = Tensor.From<float>(Normal(g, n * k, 3), [n, k]);
        using var gy = Tensor.From<float>(Normal(g, n * k, 1), [n, k]);
        using var off = Tensor.From<long>(offsets, [offsets.Length]);
        Check($"GroupSoftmax N={n} offsets=[{string.Join(",", offsets)}] log={log}", seed, [x, gy, off], (d, t) =>
        {
            var (y, gx) = (Empty(d, n, k), Empty(d, n, k));
            On(d).GroupSoftmax(t[0], t[2], log, y);
            On(d).GroupSoftmaxBackward(y, t[1], t[2], log, gx);
            return [y, gx];
        }, 1e-5, 1e-5);
    }

    [CudaTheory]
    [InlineData(2, 1)]
    [InlineData(63, 37)]
    [InlineData(512, 1204)]
    public void RunningStatistics(int n, int k)
    {
        var g = Fresh(out var seed);
        using var logits = Tensor.From<float>(Normal(g, n * k, 3), [n, k]);
        var mean = Tensor.From<float>(Normal(g, k, 1), [k]);
        var variance = Tensor.From<float>(Uniform(g, k, 0.5, 2), [k]);
        var count = Tensor.From<long>([17], [1]);
        var exactMean = Tensor.From<float>(Normal(g, k, 1), [k]);
        var m2 = Tensor.From<float>(Uniform(g, k, 1, 20), [k]);
        Check($"UpdateRunningStatistics / MergeStatistics N={n} K={k}", seed, [logits, mean, variance, count, exactMean, m2], (d, x) =>
        {
            On(d).UpdateRunningStatistics(x[0], 0.1, x[1], x[2]);
            On(d).MergeStatistics(x[0], x[3], x[4], x[5]);
            return [x[1], x[2], x[3], x[4], x[5]];
        }, 1e-6, 1e-6);
    }

    [CudaTheory]
    [InlineData(2, 1)]
    [InlineData(63, 37)]
    [InlineData(512, 1204)]
    public void StandardizeLogitsWithRunningStatistics(int n, int k)
    {
        var g = Fresh(out var seed);
        // N = 2: the second row moved 3 further from the first, so 1/sd stays small (it scales every rounding)
        var z = Normal(g, n * k, 3);
        if (n == 2)
            for (var j = 0; j < k; j++) z[k + j] += z[k + j] >= z[j] ? 3 : -3;
        using var logits = Tensor.From<float>(z, [n, k]);
        using var gy = Tensor.From<float>(Normal(g, n * k, 1), [n, k]);
        var mean = Tensor.From<float>(Normal(g, k, 1), [k]);
        var variance = Tensor.From<float>(Uniform(g, k, 0.5, 2), [k]);
        Check($"StandardizeLogits / StandardizeLogitsBackward N={n} K={k}", seed, [logits, gy, mean, variance], (d, x) =>
        {
            var (y, r, gx) = (Empty(d, n, k), Empty(d, k), Empty(d, n, k));
            On(d).StandardizeLogits(x[0], 1e-5, y, r, x[2], x[3], 1e-4);
            On(d).StandardizeLogitsBackward(y, x[1], r, gx);
            return [y, r, gx, x[2], x[3]];
        }, 1e-5, 1e-5);
    }

    [CudaTheory]
    [InlineData(0, 4, true)]
    [InlineData(1, 1, false)]
    [InlineData(129, 81, true)]
    [InlineData(129, 81, false)]
    public void Calibrate(int n, int k, bool softmax)
    {
        var g = Fresh(out var seed);
        using var logits = Tensor.From<float>(Normal(g, n * k, 3), [n, k]);
        using var shift = Tensor.From<float>(Normal(g, k, 1), [k]);
        using var sd = Tensor.From<float>(Uniform(g, k, 0.5, 2), [k]);
        Check($"Calibrate N={n} K={k} softmax={softmax}", seed, [logits, shift, sd], (d, x) =>
        {
            var y = Empty(d, n, k);
            On(d).Calibrate(x[0], x[1], x[2], softmax, y);
            return [y];
        }, 1e-6, 1e-5);
    }

    [CudaTheory]
    [InlineData(new[] { 0 })]
    [InlineData(new[] { 1 })]
    [InlineData(new[] { 3, 5, 7 })]
    [InlineData(new[] { 40001 })]
    public void Scale(int[] shape)
    {
        var g = Fresh(out var seed);
        var count = shape.Aggregate(1, (a, b) => a * b);
        using var x = Tensor.From<float>(Normal(g, count, 3), shape);
        using var factor = Tensor.From<float>(Normal(g, 1, 2), [1]);
        // one float multiplication on both sides: exact
        Check($"Scale [{string.Join(",", shape)}]", seed, [x, factor], (d, t) =>
        {
            var y = Tensor.Empty(shape, DType.Float32, d);
            On(d).Scale(t[0], t[1], y);
            return [y];
        }, 0, 0);
    }
}
