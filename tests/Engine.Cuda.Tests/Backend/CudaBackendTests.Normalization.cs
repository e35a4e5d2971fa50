// Group and batch normalization on the GPU against the CPU backend: forward outputs and saved statistics,
// every backward output (all requested, dx alone, dweight and dbias alone), odd channel and group counts,
// 1×1 and 5×7 maps, N = 1, empty batches and maps, weight and bias absent, inputs far from zero mean,
// strided inputs on the GPU (the CPU backend takes dense ones), outputs poisoned with NaN, and bit-identical
// results when a call is repeated (the reductions have a fixed order).
// Tolerances: the GPU accumulates the statistics and gradient sums in double, so it sits within rounding of
// the double reference, and the CPU-GPU difference is the CPU backend's own error, which
// tests/Engine.Core.Tests/Ops/NormalizationTests.cs bounds with the same numbers: forward 2e-5 absolute +
// 1e-4 relative, gradients 1e-4 absolute + 1e-3 relative (float block sums of cancelling terms).
using Engine.Tests;

namespace Engine.Cuda.Tests.Backend;

public sealed partial class CudaBackendTests
{
    private const double NormAtol = 2e-5, NormRtol = 1e-4;
    private const double NormGradAtol = 1e-4, NormGradRtol = 1e-3;

    /// <summary>The same values as <paramref name="t"/> in a non-contiguous layout (channels and the last dim
    /// swapped in memory) when <paramref name="strided"/>; else a dense view of t (the caller disposes either).</summary>
    private static Tensor Layout(Tensor t, bool strided) =>
        strided ? t.Transpose(1, t.Rank - 1).Contiguous().Transpose(1, t.Rank - 1) : t.Slice(0, 0, t.Size(0));

    public static TheoryData<int[], int, bool> GroupNormCases => new()
    {
        { [2, 6, 5, 7], 3, true },
        { [2, 6, 1, 1], 3, true },      // 1×1 maps: two values per group
        { [1, 6, 5, 7], 3, false },     // N = 1, no affine
        { [2, 5, 9], 1, true },         // one group
        { [4, 6], 6, true },            // (N, C): one value per group, y = bias
        { [2, 64, 11, 13], 32, true },  // many blocks
        { [1, 8, 45, 40], 2, false },   // groups of 7200 values: many strides of the block
        { [0, 4, 3], 2, true },         // empty batch
        { [2, 4, 0], 2, true },         // empty maps
    };

    [CudaTheory]
    [MemberData(nameof(GroupNormCases))]
    public void GroupNormForwardAndBackward(int[] shape, int groups, bool affine)
    {
        var g = Fresh(out var seed);
        var (n, c) = (shape[0], shape[1]);
        using var x = Tensor.Randn(shape, g, 3, 2);   // mean 3: the centring matters
        using var dy = Tensor.Randn(shape, g);
        using var w = Tensor.Rand([c], g, 0.5, 2);
        using var bias = Tensor.Randn([c], g);
        foreach (var strided in shape.Length >= 3 ? new[] { false, true } : [false])
        {
            var what = $"group_norm {ShapeUtil.Format(shape)} G={groups} affine={affine} strided={strided}";
            Tensor[] Forward(IBackend b, Device d, Tensor[] t, out Tensor mean, out Tensor rstd)
            {
                using var xin = Layout(t[0], strided && d == Cuda);
                var y = Out(d, shape);
                (mean, rstd) = (Out(d, [n, groups]), Out(d, [n, groups]));
                b.GroupNormForward(xin, groups, affine ? t[2] : null, affine ? t[3] : null, 1e-5, y, mean, rstd);
                return [y, mean, rstd];
            }
            Parity(what, seed, [x, dy, w, bias], (b, d, t) => Forward(b, d, t, out _, out _), NormAtol, NormRtol);
            Parity(what + " backward", seed, [x, dy, w, bias], (b, d, t) =>
            {
                var forward = Forward(b, d, t, out var mean, out var rstd);
                forward[0].Dispose();
                using var xin = Layout(t[0], strided && d == Cuda);
                using var dyin = Layout(t[1], strided && d == Cuda);
                var weight = affine ? t[2] : null;
                var (dx, dw, db) = (Out(d, shape), Out(d, [c]), Out(d, [c]));
                b.GroupNormBackward(dyin, xin, mean, rstd, groups, weight, dx, dw, db);
                var dxOnly = Out(d, shape);
                b.GroupNormBackward(dyin, xin, mean, rstd, groups, weight, dxOnly, null, null);
                var (dwOnly, dbOnly) = (Out(d, [c]), Out(d, [c]));
                b.GroupNormBackward(dyin, xin, mean, rstd, groups, weight, null, dwOnly, dbOnly);
                mean.Dispose();
                rstd.Dispose();
                return [dx, dw, db, dxOnly, dwOnly, dbOnly];
            }, NormGradAtol, NormGradRtol);
        }
    }

    [CudaFact]
    public void GroupNormGradientsRepeatBitForBit()
    {
        var g = Fresh(out var seed);
        int[] shape = [4, 12, 17, 19];
        using var x = Tensor.Randn(shape, g, 0, 3, Cuda);
        using var dy = Tensor.Randn(shape, g, 0, 1, Cuda);
        using var w = Tensor.Rand([12], g, 0.5, 2, Cuda);
        using var mean = Out(Cuda, [4, 4]);
        using var rstd = Out(Cuda, [4, 4]);
        using var y = Out(Cuda, shape);
        Gpu.GroupNormForward(x, 4, w, null, 1e-5, y, mean, rstd);
        var runs = Enumerable.Range(0, 3).Select(_ =>
        {
            using var dx = Out(Cuda, shape);
            using var dw = Out(Cuda, [12]);
            using var db = Out(Cuda, [12]);
            Gpu.GroupNormBackward(dy, x, mean, rstd, 4, w, dx, dw, db);
            return (Dx: dx.ToArray<float>(), Dw: dw.ToArray<float>(), Db: db.ToArray<float>());
        }).ToList();
        foreach (var run in runs.Skip(1))
        {
            Assert.True(runs[0].Dx.SequenceEqual(run.Dx), $"group_norm dx differs between identical calls (seed {seed})");
            Assert.True(runs[0].Dw.SequenceEqual(run.Dw), $"group_norm dweight differs between identical calls (seed {seed})");
            Assert.True(runs[0].Db.SequenceEqual(run.Db), $"group_norm dbias differs between identical calls (seed {seed})");
        }
    }

    public static TheoryData<int[], bool> BatchNormCases => new()
    {
        { [4, 3, 5, 7], true },
        { [8, 6, 1, 1], true },     // 1×1 maps: statistics over the batch only
        { [1, 5, 5, 7], false },    // N = 1: statistics over the map only, no affine
        { [1, 6, 1, 1], true },     // one value per channel: variance 0, rstd = 1/sqrt(eps)
        { [5, 4], true },           // (N, C)
        { [2, 3, 40, 40], true },   // channels of 3200 values in 2 runs
        { [0, 6, 5, 7], true },     // empty batch
        { [3, 2, 0, 4], false },    // empty maps
    };

    [CudaTheory]
    [MemberData(nameof(BatchNormCases))]
    public void BatchNormTrainingAndEvaluationForwardAndBackward(int[] shape, bool affine)
    {
        var g = Fresh(out var seed);
        var c = shape[1];
        using var x = Tensor.Randn(shape, g, -4, 2);
        using var dy = Tensor.Randn(shape, g);
        using var w = Tensor.Rand([c], g, 0.5, 2);
        using var bias = Tensor.Randn([c], g);
        using var runningMean = Tensor.Randn([c], g, -4, 1);
        using var runningRstd = Tensor.Rand([c], g, 0.3, 2);
        foreach (var strided in shape.Length >= 3 ? new[] { false, true } : [false])
        {
            var what = $"batch_norm {ShapeUtil.Format(shape)} affine={affine} strided={strided}";
            Parity(what + " training", seed, [x, w, bias], (b, d, t) =>
            {
                using var xin = Layout(t[0], strided && d == Cuda);
                var (y, mean, variance, rstd) = (Out(d, shape), Out(d, [c]), Out(d, [c]), Out(d, [c]));
                b.BatchNormTrainingForward(xin, affine ? t[1] : null, affine ? t[2] : null, 1e-5, y, mean, variance, rstd);
                return [y, mean, variance, rstd];
            }, NormAtol, NormRtol);
            Parity(what + " evaluation", seed, [x, runningMean, runningRstd, w, bias], (b, d, t) =>
            {
                using var xin = Layout(t[0], strided && d == Cuda);
                var y = Out(d, shape);
                b.BatchNormForward(xin, t[1], t[2], affine ? t[3] : null, affine ? t[4] : null, y);
                return [y];
            }, NormAtol, NormRtol);
            foreach (var training in new[] { true, false })
                Parity($"{what} backward training={training}", seed, [x, dy, w, bias, runningMean, runningRstd], (b, d, t) =>
                {
                    using var xin = Layout(t[0], strided && d == Cuda);
                    using var dyin = Layout(t[1], strided && d == Cuda);
                    var weight = affine ? t[2] : null;
                    using var mean = Out(d, [c]);
                    using var rstd = Out(d, [c]);
                    if (training)
                    {
                        using var y = Out(d, shape);
                        using var variance = Out(d, [c]);
                        b.BatchNormTrainingForward(t[0], weight, affine ? t[3] : null, 1e-5, y, mean, variance, rstd);
                    }
                    else
                    {
                        b.Copy(t[4], mean);
                        b.Copy(t[5], rstd);
                    }
                    var (dx, dw, db) = (Out(d, shape), Out(d, [c]), Out(d, [c]));
                    b.BatchNormBackward(dyin, xin, mean, rstd, weight, training, dx, dw, db);
                    var dxOnly = Out(d, shape);
                    b.BatchNormBackward(dyin, xin, mean, rstd, weight, training, dxOnly, null, null);
                    var (dwOnly, dbOnly) = (Out(d, [c]), Out(d, [c]));
                    b.BatchNormBackward(dyin, xin, mean, rstd, weight, training, null, dwOnly, dbOnly);
                    return [dx, dw, db, dxOnly, dwOnly, dbOnly];
                }, NormGradAtol, NormGradRtol);
        }
    }

    /// <summary>Evaluation-mode batch norm with the ReLU in the same pass (a frozen batch norm and its ReLU), against the
    /// CPU backend: NaN inputs stay NaN, everything else at or below 0 becomes 0.</summary>
    [CudaTheory]
    [MemberData(nameof(BatchNormCases))]
    public void BatchNormForwardWithReluMatchesTheCpu(int[] shape, bool affine)
    {
        var g = Fresh(out var seed);
        var c = shape[1];
        using var x = Tensor.Randn(shape, g, 0, 2);
        if (x.Numel > 3)
            using (var flat = x.Reshape(-1))
            using (var first = flat.Narrow(0, 0, 1))
                first.Fill(float.NaN);
        using var w = Tensor.Rand([c], g, 0.5, 2);
        using var bias = Tensor.Randn([c], g);
        using var mean = Tensor.Randn([c], g, 0, 1);
        using var rstd = Tensor.Rand([c], g, 0.3, 2);
        foreach (var strided in shape.Length >= 3 ? new[] { false, true } : [false])
            Parity($"batch_norm+relu {ShapeUtil.Format(shape)} affine={affine} strided={strided}", seed, [x, mean, rstd, w, bias], (b, d, t) =>
            {
                using var xin = Layout(t[0], strided && d == Cuda);
                var y = Out(d, shape);
                b.BatchNormForward(xin, t[1], t[2], affine ? t[3] : null, affine ? t[4] : null, y, relu: true);
                return [y];
            }, NormAtol, NormRtol);
    }

    /// <summary>The backward of that pass: the gradient masked where the output is positive, times the channel scale, and
    /// without the mask (the frozen batch norm alone). Bit for bit the CPU's (a mask and one correctly rounded product),
    /// so the tolerance is 0; NaN outputs are masked, NaN gradients pass where the output is positive.</summary>
    [CudaTheory]
    [MemberData(nameof(BatchNormCases))]
    public void BatchNormScaleBackwardMatchesTheCpu(int[] shape, bool affine)
    {
        var g = Fresh(out var seed);
        var c = shape[1];
        using var y = Tensor.Randn(shape, g, 0, 2);
        using var dy = Tensor.Randn(shape, g);
        if (y.Numel > 3)
            using (var flatY = y.Reshape(-1))
            using (var flatDy = dy.Reshape(-1))
            using (var firstY = flatY.Narrow(0, 0, 1))
            using (var secondDy = flatDy.Narrow(0, 1, 2))
            {
                firstY.Fill(float.NaN);
                secondDy.Fill(float.NaN);
            }
        using var w = Tensor.Rand([c], g, -2, 2);
        using var rstd = Tensor.Rand([c], g, 0.3, 2);
        foreach (var strided in shape.Length >= 3 ? new[] { false, true } : [false])
            Parity($"batch_norm_scale_backward {ShapeUtil.Format(shape)} affine={affine} strided={strided}", seed, [dy, y, rstd, w], (b, d, t) =>
            {
                using var dyin = Layout(t[0], strided && d == Cuda);
                var dx = Out(d, shape);
                b.BatchNormScaleBackward(dyin, t[1], t[2], affine ? t[3] : null, dx);
                var unmasked = Out(d, shape);
                b.BatchNormScaleBackward(dyin, null, t[2], affine ? t[3] : null, unmasked);
                return [dx, unmasked];
            }, 0, 0);
    }

    [CudaFact]
    public void NormalizationRejectsBadOperandsNamingTheCall()
    {
        using var x = Tensor.Zeros([2, 6, 3, 3], DType.Float32, Cuda);
        using var y = Out(Cuda, [2, 6, 3, 3]);
        using var stats = Out(Cuda, [2, 4]);
        var groups = Assert.Throws<ArgumentException>(() => Gpu.GroupNormForward(x, 4, null, null, 1e-5, y, stats, stats));
        Assert.Contains("CudaBackend.group_norm: 6 channels of x [2, 6, 3, 3] cannot be split into 4 groups", groups.Message);
        using var shortWeight = Tensor.Ones([5], DType.Float32, Cuda);
        using var channel = Out(Cuda, [6]);
        var weight = Assert.Throws<ArgumentException>(() => Gpu.BatchNormForward(x, channel, channel, shortWeight, null, y));
        Assert.Contains("CudaBackend.batch_norm: weight must be a float32 tensor of 6 elements", weight.Message);
        using var wide = Out(Cuda, [2, 6, 3, 6]);
        using var view = wide.Slice(-1, 0, 3);
        var output = Assert.Throws<ArgumentException>(() => Gpu.BatchNormForward(x, channel, channel, null, null, view));
        Assert.Contains("output y", output.Message);
        Assert.Contains("not contiguous", output.Message);
        using var onCpu = Tensor.Zeros([2, 6, 3, 3]);
        var device = Assert.Throws<ArgumentException>(() => Gpu.BatchNormBackward(onCpu, x, channel, channel, null, true, y, null, null));
        Assert.Contains("dy is on cpu", device.Message);
    }
}
