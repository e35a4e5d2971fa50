// Self-test checks of the normalization family: group norm, batch norm in training mode (with its running
// statistics) and in evaluation mode, and the frozen batch norm with its ReLU in one pass (the ResNet backbones'
// layer), each forward and every gradient against NormalizationReference / NormReference.
using Engine.Nn;
using Engine.Reference;

namespace Engine.Diagnostics;

public static partial class SelfTest
{
    // Forward: (x − μ)·scale + shift with μ and scale accurate to a few float ulps of values of order 1–3: 1e-5 of the
    // largest output. Gradients of the statistics paths are differences of sums over up to a few hundred terms:
    // AccumulationTolerance.
    private const double NormTolerance = 1e-5;
    private const double NormEps = 1e-5;

    private static IEnumerable<SelfTestCheck> NormalizationChecks()
    {
        yield return new SelfTestCheck("group_norm", GroupNormCheck);
        yield return new SelfTestCheck("batch_norm", (d, g) => BatchNormCheck(d, g, training: true));
        yield return new SelfTestCheck("batch_norm_eval", (d, g) => BatchNormCheck(d, g, training: false));
        yield return new SelfTestCheck("frozen_batch_norm_relu", FrozenBatchNormReluCheck);
    }

    /// <summary>x (N, C, H, W) of odd maps of at least 3×3, N ≥ 2 and C a multiple of <paramref name="groups"/>, with its
    /// (N, C, S) view sizes. At least 18 values per channel and 9 per group keep every spread σ well above the float
    /// rounding of x − μ (≈1e-7·|x|), which 1/σ amplifies in the statistics' gradients. The batch norms ask for C a
    /// multiple of 3: a channel's weight and bias gradients are sums of random-sign terms, and a lone channel's sum can
    /// cancel to ~1e-2, where the float sum's rounding exceeds 1e-4 of it (about 1 seed in 200); the largest of three
    /// does not.</summary>
    private static (int[] Shape, int N, int C, int S) NormShape(Generator g, int groups)
    {
        var odd = OddShape(g, 4, 4, 9, 7);
        var (n, c, h, w) = (odd[0] + 1, groups * odd[1], odd[2] + 2, odd[3] + 2);
        return ([n, c, h, w], n, c, h * w);
    }

    /// <summary>Random values already rounded to float32, so the double reference sees the engine's inputs.</summary>
    private static RefTensor FloatRandom(Generator g, int[] shape, double low = -1, double high = 1) =>
        new(shape, AsFloat32(RefTensor.Random(g, shape, low, high).Data));

    private static IEnumerable<SelfTestResult> GroupNormCheck(Device device, Generator g)
    {
        const int groups = 3;
        var (shape, n, c, s) = NormShape(g, groups);
        var x = FloatRandom(g, shape, -2, 3);
        var w = FloatRandom(g, [c], -2, 2);
        var b = FloatRandom(g, [c], -1, 1);
        using var xt = Upload(x, device, requiresGrad: true);
        using var wt = Upload(w, device, requiresGrad: true);
        using var bt = Upload(b, device, requiresGrad: true);
        using var y = Tensor.GroupNorm(xt, groups, wt, bt, NormEps);
        yield return Compare("group_norm", "forward", device,
                             new RefTensor(shape, NormalizationReference.GroupNormForward(x.Data, n, c, s, groups, w.Data, b.Data, NormEps)), y, NormTolerance);
        var u = FloatRandom(g, shape);
        using var gy = Upload(u, device);
        y.Backward(gy);
        var (dx, dw, db) = NormalizationReference.GroupNormBackward(x.Data, n, c, s, groups, w.Data, NormEps, u.Data);
        yield return Compare("group_norm", "grad x", device, new RefTensor(shape, dx), xt.Grad!, AccumulationTolerance);
        yield return Compare("group_norm", "grad weight", device, new RefTensor([c], dw), wt.Grad!, AccumulationTolerance);
        yield return Compare("group_norm", "grad bias", device, new RefTensor([c], db), bt.Grad!, AccumulationTolerance);
    }

    /// <summary>Batch norm in training mode (batch statistics; the running ones updated) or evaluation mode (the running
    /// statistics normalize), forward and every gradient.</summary>
    private static IEnumerable<SelfTestResult> BatchNormCheck(Device device, Generator g, bool training)
    {
        const double momentum = 0.1;
        var op = training ? "batch_norm" : "batch_norm_eval";
        var (shape, n, c, s) = NormShape(g, 3);
        var x = FloatRandom(g, shape, -2, 3);
        var w = FloatRandom(g, [c], -2, 2);
        var b = FloatRandom(g, [c], -1, 1);
        var mean = FloatRandom(g, [c], -1, 1);
        var variance = FloatRandom(g, [c], training ? 0.5 : 0.2, 2);
        using var xt = Upload(x, device, requiresGrad: true);
        using var wt = Upload(w, device, requiresGrad: true);
        using var bt = Upload(b, device, requiresGrad: true);
        using var mt = Upload(mean, device);
        using var vt = Upload(variance, device);
        using var y = Tensor.BatchNorm(xt, mt, vt, wt, bt, training, momentum, NormEps);
        var forward = training
            ? NormalizationReference.BatchNormTrainForward(x.Data, n, c, s, w.Data, b.Data, NormEps)
            : NormalizationReference.BatchNormForward(x.Data, n, c, s, mean.Data, variance.Data, w.Data, b.Data, NormEps);
        yield return Compare(op, "forward", device, new RefTensor(shape, forward), y, NormTolerance);
        if (training)
        {
            // the running statistics move toward the batch's mean and unbiased variance
            var (batchMean, batchVariance) = NormalizationReference.BatchNormStatistics(x.Data, n, c, s);
            var (em, ev) = (mean.Data.ToArray(), variance.Data.ToArray());
            NormalizationReference.BatchNormRunningUpdate(em, ev, batchMean, batchVariance, (long)n * s, momentum);
            yield return Compare(op, "running mean", device, new RefTensor([c], em), mt, NormTolerance);
            yield return Compare(op, "running variance", device, new RefTensor([c], ev), vt, NormTolerance);
        }
        var u = FloatRandom(g, shape);
        using var gy = Upload(u, device);
        y.Backward(gy);
        var (dx, dw, db) = training
            ? NormalizationReference.BatchNormTrainBackward(x.Data, n, c, s, w.Data, NormEps, u.Data)
            : NormalizationReference.BatchNormEvalBackward(x.Data, n, c, s, mean.Data, variance.Data, w.Data, NormEps, u.Data);
        // training's grad x goes through the batch statistics (sums over N·S); evaluation's is one product per element
        yield return Compare(op, "grad x", device, new RefTensor(shape, dx), xt.Grad!, training ? AccumulationTolerance : NormTolerance);
        yield return Compare(op, "grad weight", device, new RefTensor([c], dw), wt.Grad!, AccumulationTolerance);
        yield return Compare(op, "grad bias", device, new RefTensor([c], db), bt.Grad!, AccumulationTolerance);
    }

    private static IEnumerable<SelfTestResult> FrozenBatchNormReluCheck(Device device, Generator g)
    {
        var (shape, n, c, s) = NormShape(g, 1);
        var x = FloatRandom(g, shape, -3, 3);
        var buffers = new[] { FloatRandom(g, [c], -2, 2), FloatRandom(g, [c], -1, 1), FloatRandom(g, [c], -1, 1), FloatRandom(g, [c], 0.1, 3) };
        using var layer = new FrozenBatchNorm2d(c, NormEps);
        ModuleBuffer[] targets = [layer.Weight, layer.Bias, layer.RunningMean, layer.RunningVar];
        for (var i = 0; i < targets.Length; i++)
            using (var value = buffers[i].ToTensor())
                targets[i].Value.CopyFrom(value);
        layer.To(device);
        var (w, b, mean, variance) = (buffers[0].Data, buffers[1].Data, buffers[2].Data, buffers[3].Data);
        // keep every normalized value at least 1e-3 from the ReLU's edge, where float and double could take different
        // sides: such an x moves by one unit of its normalized value
        var normalized = NormReference.FrozenBatchNormForward(x.Data, n, c, s, w, b, mean, variance, NormEps);
        for (var i = 0; i < x.Data.Length; i++)
            if (Math.Abs(normalized[i]) < 1e-3)
            {
                var ch = i / s % c;
                x.Data[i] += Math.Sqrt(variance[ch] + NormEps) / w[ch];
            }
        x = new RefTensor(shape, AsFloat32(x.Data));
        using var xt = Upload(x, device, requiresGrad: true);
        using var y = layer.Forward(xt, relu: true);
        yield return Compare("frozen_batch_norm_relu", "forward", device,
                             new RefTensor(shape, NormReference.FrozenBatchNormReluForward(x.Data, n, c, s, w, b, mean, variance, NormEps)), y, NormTolerance);
        var u = FloatRandom(g, shape);
        using var gy = Upload(u, device);
        y.Backward(gy);
        yield return Compare("frozen_batch_norm_relu", "grad x", device,
                             new RefTensor(shape, NormReference.FrozenBatchNormReluBackward(u.Data, x.Data, n, c, s, w, b, mean, variance, NormEps)),
                             xt.Grad!, NormTolerance);
    }
}
