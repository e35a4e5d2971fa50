// `engine selftest` rows of the long-tail ops: BAGS group softmax and log-softmax (forward and gradient), LogN's
// running statistics, `repo` mode's batch standardization fused with them (forward, statistics, gradient) and the
// calibration (with and without softmax), and CRAT's transfusion step (the Fisher bank's update, the gated and
// ungated weights, the extra gradient and the row losses, for both queries), on the device asked for, against the
// double references (SoftmaxLossReference, LogitNormReference, CratReference). The CLI registers them with SelfTest.Register; on cuda:N
// they run the CUDA long-tail backend's kernels.
using Engine.Diagnostics;
using Engine.LongTail.Reference;
using Engine.Reference;

namespace Engine.LongTail.Diagnostics;

public static class LongTailSelfTest
{
    // softmax within a group and its gradient: float exp and sums over at most a few hundred terms: 1e-5 / 1e-4 of
    // the largest value. LogN statistics: float data, double sums in the engine: 1e-5. Calibration: (z − shift) / sd
    // rounded to float: 1e-5.
    private const double Tolerance = 1e-5, GradientTolerance = 1e-4;

    /// <summary>Adds these checks to <see cref="SelfTest"/> (family "long-tail").</summary>
    public static void Register() => SelfTest.Register("long-tail", Checks);

    public static IEnumerable<SelfTestCheck> Checks()
    {
        yield return new SelfTestCheck("group_softmax", (d, g) => GroupSoftmaxCheck(d, g, log: false));
        yield return new SelfTestCheck("group_log_softmax", (d, g) => GroupSoftmaxCheck(d, g, log: true));
        yield return new SelfTestCheck("logn_statistics", LogNStatisticsCheck);
        yield return new SelfTestCheck("logn_standardize", LogNStandardizeCheck);
        yield return new SelfTestCheck("logn_calibrate", LogNCalibrateCheck);
        yield return new SelfTestCheck("crat_transfuse", CratTransfuseCheck);
    }

    private static IEnumerable<SelfTestResult> GroupSoftmaxCheck(Device device, Generator g, bool log)
    {
        var name = log ? "group_log_softmax" : "group_softmax";
        // odd rows; groups of 1 (background), a few, and a long one, as BAGS lays out its "others" columns
        long[] offsets = [0, 1, 4, 11, 12, 157];
        var (n, k) = (1 + 2 * (int)g.NextInt64(9), (int)offsets[^1]);
        var x = RefTensor.Random(g, [n, k], -6, 6);
        using var xt = SelfTest.Upload(x, device, requiresGrad: true);
        // the offsets on the host, as GroupSoftmaxLoss passes them (both backends read them there)
        using var o = Tensor.From(offsets, [offsets.Length]);
        using var y = LongTailOps.GroupSoftmax(xt, o, log);
        yield return SelfTest.Compare(name, "forward", device, new RefTensor([n, k], SoftmaxLossReference.GroupSoftmax(x.Data, n, k, offsets, log)), y, Tolerance);
        var u = RefTensor.Random(g, [n, k]);
        using var gy = SelfTest.Upload(u, device);
        y.Backward(gy);
        yield return SelfTest.Compare(name, "grad x", device,
                                      new RefTensor([n, k], SoftmaxLossReference.GroupSoftmaxBackward(x.Data, n, k, offsets, log, u.Data)), xt.Grad!,
                                      GradientTolerance);
    }

    private static IEnumerable<SelfTestResult> LogNStatisticsCheck(Device device, Generator g)
    {
        var (n, k) = (3 + 2 * (int)g.NextInt64(20), 1 + 2 * (int)g.NextInt64(300));
        const double momentum = 0.1;
        var z = RefTensor.Random(g, [n, k], -5, 5);
        var mean = RefTensor.Random(g, [k], -1, 1);
        var variance = RefTensor.Random(g, [k], 0.1, 2);
        using var zt = SelfTest.Upload(z, device);
        using var m = SelfTest.Upload(mean, device);
        using var v = SelfTest.Upload(variance, device);
        LongTailBackends.For(device).UpdateRunningStatistics(zt, momentum, m, v);
        var (em, ev) = (SelfTest.AsFloat32(mean.Data), SelfTest.AsFloat32(variance.Data));
        LogitNormReference.EmaUpdate(SelfTest.AsFloat32(z.Data), n, k, momentum, em, ev);
        yield return SelfTest.Compare("logn_statistics", "running mean", device, new RefTensor([k], em), m, Tolerance);
        yield return SelfTest.Compare("logn_statistics", "running variance", device, new RefTensor([k], ev), v, Tolerance);
    }

    private static IEnumerable<SelfTestResult> LogNStandardizeCheck(Device device, Generator g)
    {
        // odd sizes; N ≥ 3 draws from [-5, 5] keep every column's sd well above the 1e-5 eps
        var (n, k) = (3 + 2 * (int)g.NextInt64(20), 1 + 2 * (int)g.NextInt64(300));
        const double momentum = 0.1, eps = 1e-5;
        var z = RefTensor.Random(g, [n, k], -5, 5);
        var mean = RefTensor.Random(g, [k], -1, 1);
        var variance = RefTensor.Random(g, [k], 0.1, 2);
        using var zt = SelfTest.Upload(z, device, requiresGrad: true);
        using var m = SelfTest.Upload(mean, device);
        using var v = SelfTest.Upload(variance, device);
        using var y = LongTailOps.StandardizeLogits(zt, eps, (m, v, momentum));
        var zf = SelfTest.AsFloat32(z.Data);
        yield return SelfTest.Compare("logn_standardize", "forward", device, new RefTensor([n, k], LogitNormReference.Standardize(zf, n, k, eps)), y, Tolerance);
        var (em, ev) = (SelfTest.AsFloat32(mean.Data), SelfTest.AsFloat32(variance.Data));
        LogitNormReference.EmaUpdate(zf, n, k, momentum, em, ev);
        yield return SelfTest.Compare("logn_standardize", "running mean", device, new RefTensor([k], em), m, Tolerance);
        yield return SelfTest.Compare("logn_standardize", "running variance", device, new RefTensor([k], ev), v, Tolerance);
        var u = RefTensor.Random(g, [n, k]);
        using var gy = SelfTest.Upload(u, device);
        y.Backward(gy);
        yield return SelfTest.Compare("logn_standardize", "grad x", device,
                                      new RefTensor([n, k], LogitNormReference.StandardizeBackward(zf, n, k, eps, SelfTest.AsFloat32(u.Data))), zt.Grad!,
                                      GradientTolerance);
    }

    private static IEnumerable<SelfTestResult> CratTransfuseCheck(Device device, Generator g)
    {
        // odd R, D and C; about a third of the rows background; a bank of small positive values with every third class
        // never seen (gate closed); every input float32-exact so the reference sees what the engine sees
        var (r, d, c) = (3 + 2 * (int)g.NextInt64(20), 1 + 2 * (int)g.NextInt64(8), 3 + 2 * (int)g.NextInt64(30));
        const double rate = 0.3, lambda = 0.05;
        var x = SelfTest.AsFloat32(RefTensor.Random(g, [r, d], 0, 2).Data);
        var deltas = SelfTest.AsFloat32(RefTensor.Random(g, [r, 4 * c], -2, 2).Data);
        var targets = SelfTest.AsFloat32(RefTensor.Random(g, [r, 4], -2, 2).Data);
        var labels = Enumerable.Range(0, r).Select(i => i % 3 == 2 ? c : g.NextInt64((c + 1) / 2)).ToArray();
        var bank = SelfTest.AsFloat32(RefTensor.Random(g, [c, 4 * d], 0, 1e-3).Data);
        for (var j = 0; j < c; j += 3) Array.Clear(bank, j * 4 * d, 4 * d);
        using var dt = SelfTest.Upload(new RefTensor([r, 4 * c], deltas), device);
        using var xt = SelfTest.Upload(new RefTensor([r, d], x), device);
        using var tt = SelfTest.Upload(new RefTensor([r, 4], targets), device);
        using var lh = Tensor.From(labels, [r]);
        using var lt = lh.To(device);
        using var fisher = SelfTest.Upload(new RefTensor([c, 4 * d], bank), device);
        foreach (var query in new[] { CratQuery.FirstSample, CratQuery.PerSample })
        {
            var name = query == CratQuery.FirstSample ? "first sample" : "per sample";
            var parameters = new CratParameters(c, d, query, rate, CratTransfuser.DefaultTemperature, lambda);
            using var weights = Tensor.Full([r, c], double.NaN, DType.Float32, device);
            using var ungated = Tensor.Full([r, c], double.NaN, DType.Float32, device);
            using var extra = Tensor.Full([r, 4 * c], double.NaN, DType.Float32, device);
            using var rowLoss = Tensor.Full([r], double.NaN, DType.Float32, device);
            var expectedBank = fisher.ToDoubleArray();   // the bank as this query's step finds it
            LongTailBackends.For(device).CratTransfuse(parameters, dt, xt, tt, lt, r, fisher, updateFisher: true, weights, ungated, extra, rowLoss);
            CratReference.FisherUpdate(expectedBank, x, deltas, targets, labels, d, c, r, rate);
            yield return SelfTest.Compare("crat_transfuse", $"Fisher bank ({name})", device, new RefTensor([c, 4 * d], expectedBank), fisher, Tolerance);
            // the weights from the engine's float32 bank, as the engine computes them
            var updated = fisher.ToDoubleArray();
            var w = CratReference.Weights(query, updated, x, deltas, targets, labels, d, c, r, CratTransfuser.DefaultTemperature);
            yield return SelfTest.Compare("crat_transfuse", $"weights ({name})", device, new RefTensor([r, c], w), weights, GradientTolerance);
            var positives = Enumerable.Range(0, r).Where(i => labels[i] < c).ToArray();
            var expectedUngated = new double[r * c];
            var u = CratReference.UngatedWeights(query, updated, x, deltas, targets, labels, d, c, r, CratTransfuser.DefaultTemperature);
            for (var p = 0; p < positives.Length; p++) Array.Copy(u, p * c, expectedUngated, positives[p] * c, c);
            yield return SelfTest.Compare("crat_transfuse", $"ungated weights ({name})", device, new RefTensor([r, c], expectedUngated), ungated, GradientTolerance);
            yield return SelfTest.Compare("crat_transfuse", $"extra gradient ({name})", device,
                                          new RefTensor([r, 4 * c], CratReference.TransfusionGradient(w, deltas, targets, labels, c, lambda)), extra, GradientTolerance);
            var expectedRows = new double[r];
            for (var i = 0; i < r; i++)
                for (var j = 0; j < c; j++)
                    for (var k = 0; k < 4; k++) expectedRows[i] += lambda * w[i * c + j] * Math.Abs(deltas[i * 4 * c + 4 * j + k] - targets[i * 4 + k]);
            yield return SelfTest.Compare("crat_transfuse", $"row loss ({name})", device, new RefTensor([r], expectedRows), rowLoss, GradientTolerance);
        }
    }

    private static IEnumerable<SelfTestResult> LogNCalibrateCheck(Device device, Generator g)
    {
        // C foreground columns and the background last; shift μ − min μ and sd √max(v, 1e-11) per foreground column,
        // 0 and 1 for the background, which calibration leaves as it is
        var (n, c) = (1 + 2 * (int)g.NextInt64(20), 2 + 2 * (int)g.NextInt64(300));
        var k = c + 1;
        var z = RefTensor.Random(g, [n, k], -5, 5);
        var mean = SelfTest.AsFloat32(RefTensor.Random(g, [k], -2, 1).Data);
        var variance = SelfTest.AsFloat32(RefTensor.Random(g, [k], 0.05, 3).Data);
        var beta = mean.Take(c).Min();
        var shift = Enumerable.Range(0, k).Select(j => j < c ? mean[j] - beta : 0).ToArray();
        var sd = Enumerable.Range(0, k).Select(j => j < c ? Math.Sqrt(Math.Max(variance[j], 1e-11)) : 1).ToArray();
        var expected = LogitNormReference.Calibrate(SelfTest.AsFloat32(z.Data), n, c, mean, variance);
        using var zt = SelfTest.Upload(z, device);
        using var s = SelfTest.Upload(new RefTensor([k], shift), device);
        using var d = SelfTest.Upload(new RefTensor([k], sd), device);
        foreach (var softmax in new[] { false, true })
        {
            using var y = Tensor.Empty([n, k], DType.Float32, device);
            LongTailBackends.For(device).Calibrate(zt, s, d, softmax, y);
            var reference = new RefTensor([n, k], expected);
            yield return SelfTest.Compare("logn_calibrate", softmax ? "scores" : "logits", device,
                                          softmax ? SoftmaxReference.Softmax(reference, 1) : reference, y, Tolerance);
        }
    }
}
