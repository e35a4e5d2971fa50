// `engine selftest` rows of the long-tail ops: BAGS group softmax and log-softmax (forward and gradient), LogN's
// running statistics, `repo` mode's batch standardization fused with them (forward, statistics, gradient), the
// calibration (with and without softmax) and the exact statistics (Chan's merge of a batch into a running count,
// mean and m2), CRAT's transfusion step (the Fisher bank's update, the gated and ungated weights, the extra gradient
// and the row losses, for both queries), the fused losses (row losses and the gradient at scale 1/N) of the
// element-weighted sigmoid BCE (with EQLv2's gradient statistics), FCBL (with and without its hard-negative mask),
// the class-weighted softmax CE and Seesaw, FCBL's confusion update, and the scalar scale of the fused losses'
// backward, on the device asked for, against the double references (SigmoidLossReference, SoftmaxLossReference,
// LogitNormReference, CratReference). The loss, statistics and scale rows call the backend member itself. The CLI
// registers them with SelfTest.Register; on cuda:N they run the CUDA long-tail backend's kernels.
using Engine.Diagnostics;
using Engine.LongTail.Reference;
using Engine.Reference;

namespace Engine.LongTail.Diagnostics;

public static class LongTailSelfTest
{
    // softmax within a group and its gradient: float exp and sums over at most a few hundred terms: 1e-5 / 1e-4 of
    // the largest value. LogN statistics: float data, double sums in the engine: 1e-5. Calibration: (z − shift) / sd
    // rounded to float: 1e-5. The fused losses: row losses are float sums of at most a few hundred float terms: 1e-5;
    // their gradients (and the BCE's gradient statistics) 1e-4, as every gradient here. FCBL's confusion update, LogN's
    // exact statistics and the scale: float data, a sum over rows in row order or one product: 1e-5. Counts are
    // integers and compared exactly.
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
        yield return new SelfTestCheck("weighted_sigmoid_bce", WeightedSigmoidBceCheck);
        yield return new SelfTestCheck("fcbl", FcblCheck);
        yield return new SelfTestCheck("accumulate_confusion", AccumulateConfusionCheck);
        yield return new SelfTestCheck("softmax_cross_entropy", SoftmaxCrossEntropyCheck);
        yield return new SelfTestCheck("seesaw", SeesawCheck);
        yield return new SelfTestCheck("logn_merge", LogNMergeCheck);
        yield return new SelfTestCheck("logit_scale", LogitScaleCheck);
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

    private static IEnumerable<SelfTestResult> WeightedSigmoidBceCheck(Device device, Generator g)
    {
        // C foreground classes and the background logit (K = C + 1, numForeground = C); about a third of the rows
        // background (label C: the background logit is their positive column, their negatives weighted by
        // negWeightBackground) and one row labelled K (a background row of a head without a background logit: no
        // positive column); N up to 61, past one of the CPU kernel's 32-row chunks (whose statistics are merged); random
        // positive weights per column
        var (n, c) = (3 + 2 * (int)g.NextInt64(30), 2 + 2 * (int)g.NextInt64(150));
        var k = c + 1;
        var z = SelfTest.AsFloat32(RefTensor.Random(g, [n, k], -6, 6).Data);
        var labels = Enumerable.Range(0, n).Select(i => i == n / 2 ? k : i % 3 == 2 ? c : g.NextInt64(c)).ToArray();
        var positive = SelfTest.AsFloat32(RefTensor.Random(g, [k], 0.1, 3).Data);
        var negativeForeground = SelfTest.AsFloat32(RefTensor.Random(g, [k], 0.1, 3).Data);
        var negativeBackground = SelfTest.AsFloat32(RefTensor.Random(g, [k], 0.1, 3).Data);
        var w = new double[n * k];
        for (var i = 0; i < n; i++)
            for (var j = 0; j < k; j++) w[i * k + j] = labels[i] == j ? positive[j] : labels[i] < c ? negativeForeground[j] : negativeBackground[j];
        var y = SigmoidLossReference.Targets(labels, k);
        var scale = 1.0 / n;
        using var zt = SelfTest.Upload(new RefTensor([n, k], z), device);
        using var lh = Tensor.From(labels, [n]);
        using var lt = lh.To(device);
        using var pw = SelfTest.Upload(new RefTensor([k], positive), device);
        using var nwf = SelfTest.Upload(new RefTensor([k], negativeForeground), device);
        using var nwb = SelfTest.Upload(new RefTensor([k], negativeBackground), device);
        using var rowLoss = Tensor.Full([n], double.NaN, DType.Float32, device);
        using var grad = Tensor.Full([n, k], double.NaN, DType.Float32, device);
        using var magnitudePos = Tensor.Full([k], double.NaN, DType.Float32, device);
        using var magnitudeNeg = Tensor.Full([k], double.NaN, DType.Float32, device);
        LongTailBackends.For(device).WeightedSigmoidBce(zt, lt, c, pw, nwf, nwb, scale, rowLoss, grad, magnitudePos, magnitudeNeg);
        var rows = PerRow(n, i => SigmoidLossReference.Loss(Row(z, i, k), Row(y, i, k), Row(w, i, k), null, 1));
        yield return SelfTest.Compare("weighted_sigmoid_bce", "row loss", device, new RefTensor([n], rows), rowLoss, Tolerance);
        yield return SelfTest.Compare("weighted_sigmoid_bce", "grad logits", device,
                                      new RefTensor([n, k], SigmoidLossReference.Gradient(z, y, w, null, scale)), grad, GradientTolerance);
        // Eqlv2Statistics sums the first c of c + 1 columns: a zero-weight column appended to every row makes it sum all K
        var (zp, wp) = (new double[n * (k + 1)], new double[n * (k + 1)]);
        for (var i = 0; i < n; i++)
        {
            Array.Copy(z, i * k, zp, i * (k + 1), k);
            Array.Copy(w, i * k, wp, i * (k + 1), k);
        }
        var (pos, neg) = SigmoidLossReference.Eqlv2Statistics(zp, labels, wp, k);
        // sums of gradient magnitudes, formed from the float σ as the gradient is: when every positive logit of the batch
        // is large, 1 − σ(t) ≈ e^−t keeps the rounding of σ near 1 (up to 2.4e-5 of it at t = 6), so the gradients' 1e-4
        yield return SelfTest.Compare("weighted_sigmoid_bce", "grad magnitude pos", device, new RefTensor([k], pos), magnitudePos, GradientTolerance);
        yield return SelfTest.Compare("weighted_sigmoid_bce", "grad magnitude neg", device, new RefTensor([k], neg), magnitudeNeg, GradientTolerance);
    }

    private static IEnumerable<SelfTestResult> FcblCheck(Device device, Generator g)
    {
        // logits (N, C+1) on a grid of 1/32 in [-4, 4]: the mask compares float probabilities, and on this grid two
        // logits of a row give either equal probabilities (kept: π_j ≥ π_y) or ones at least 5e-4 apart relatively, and
        // no π_j = σ(z_j)·(1 − σ(z_C)) lies within 5e-5 of τ = 0.7, so rounding cannot flip a decision. About a third of
        // the rows background; a confusion matrix with about a quarter of its entries 0 (below the 1e-3 floor) and counts
        // with about a quarter 0
        var (n, c) = (3 + 2 * (int)g.NextInt64(20), 2 + 2 * (int)g.NextInt64(60));
        var k = c + 1;
        const double alpha = 0.85, tau = 0.7;
        var z = Enumerable.Range(0, n * k).Select(_ => g.NextInt64(257) / 32.0 - 4).ToArray();
        var labels = Enumerable.Range(0, n).Select(i => i % 3 == 2 ? c : g.NextInt64(c)).ToArray();
        var confusion = SelfTest.AsFloat32(RefTensor.Random(g, [c, c], 0, 4).Data.Select(v => g.NextInt64(4) == 0 ? 0 : v));
        var counts = Enumerable.Range(0, c).Select(_ => g.NextInt64(4) == 0 ? 0.0 : 1 + g.NextInt64(20)).ToArray();
        var y = SigmoidLossReference.Targets(labels, k);
        var margins = SigmoidLossReference.FcblMargins(labels, SigmoidLossReference.Confusion(confusion, counts), c, alpha);
        var scale = 1.0 / n;
        using var zt = SelfTest.Upload(new RefTensor([n, k], z), device);
        using var lh = Tensor.From(labels, [n]);
        using var lt = lh.To(device);
        using var a = SelfTest.Upload(new RefTensor([c, c], confusion), device);
        using var cnt = SelfTest.Upload(new RefTensor([c], counts), device);
        foreach (var reweight in new[] { false, true })
        {
            var suffix = reweight ? " (reweighted)" : "";
            // the mask as the engine evaluates it, in float32 steps
            var w = reweight ? SigmoidLossReference.FcblMask(z, labels, c, tau, float32: true) : Enumerable.Repeat(1.0, n * k).ToArray();
            using var rowLoss = Tensor.Full([n], double.NaN, DType.Float32, device);
            using var grad = Tensor.Full([n, k], double.NaN, DType.Float32, device);
            LongTailBackends.For(device).Fcbl(zt, lt, a, cnt, alpha, tau, reweight, scale, rowLoss, grad);
            var rows = PerRow(n, i => SigmoidLossReference.Loss(Row(z, i, k), Row(y, i, k), Row(w, i, k), Row(margins, i, k), 1));
            yield return SelfTest.Compare("fcbl", "row loss" + suffix, device, new RefTensor([n], rows), rowLoss, Tolerance);
            yield return SelfTest.Compare("fcbl", "grad logits" + suffix, device,
                                          new RefTensor([n, k], SigmoidLossReference.Gradient(z, y, w, margins, scale)), grad, GradientTolerance);
        }
    }

    private static IEnumerable<SelfTestResult> AccumulateConfusionCheck(Device device, Generator g)
    {
        // labels from the first half of the classes (several rows add into one confusion row, in row order) and about a
        // third background (skipped); a random starting matrix and integer counts, some 0
        var (n, c) = (3 + 2 * (int)g.NextInt64(30), 2 + 2 * (int)g.NextInt64(60));
        var k = c + 1;
        var z = SelfTest.AsFloat32(RefTensor.Random(g, [n, k], -6, 6).Data);
        var labels = Enumerable.Range(0, n).Select(i => i % 3 == 2 ? c : g.NextInt64((c + 1) / 2)).ToArray();
        var confusion = SelfTest.AsFloat32(RefTensor.Random(g, [c, c], 0, 3).Data);
        var counts = Enumerable.Range(0, c).Select(_ => g.NextInt64(4) == 0 ? 0.0 : 1 + g.NextInt64(20)).ToArray();
        using var zt = SelfTest.Upload(new RefTensor([n, k], z), device);
        using var lh = Tensor.From(labels, [n]);
        using var lt = lh.To(device);
        using var a = SelfTest.Upload(new RefTensor([c, c], confusion), device);
        using var cnt = SelfTest.Upload(new RefTensor([c], counts), device);
        LongTailBackends.For(device).AccumulateConfusion(zt, lt, a, cnt);
        SigmoidLossReference.FcblAccumulate(z, labels, c, confusion, counts);
        yield return SelfTest.Compare("accumulate_confusion", "confusion", device, new RefTensor([c, c], confusion), a, Tolerance);
        yield return SelfTest.Exact("accumulate_confusion", "counts", device, counts, cnt.ToDoubleArray(), "class");
    }

    private static IEnumerable<SelfTestResult> SoftmaxCrossEntropyCheck(Device device, Generator g)
    {
        // K = C + 1 with about a third of the rows background (label C); random positive class weights
        var (n, c) = (3 + 2 * (int)g.NextInt64(30), 2 + 2 * (int)g.NextInt64(150));
        var k = c + 1;
        var z = SelfTest.AsFloat32(RefTensor.Random(g, [n, k], -6, 6).Data);
        var labels = Enumerable.Range(0, n).Select(i => i % 3 == 2 ? c : g.NextInt64(c)).ToArray();
        var weight = SelfTest.AsFloat32(RefTensor.Random(g, [k], 0.1, 3).Data);
        var scale = 1.0 / n;
        using var zt = SelfTest.Upload(new RefTensor([n, k], z), device);
        using var lh = Tensor.From(labels, [n]);
        using var lt = lh.To(device);
        using var wt = SelfTest.Upload(new RefTensor([k], weight), device);
        using var rowLoss = Tensor.Full([n], double.NaN, DType.Float32, device);
        using var grad = Tensor.Full([n, k], double.NaN, DType.Float32, device);
        LongTailBackends.For(device).SoftmaxCrossEntropy(zt, lt, wt, scale, rowLoss, grad);
        // CrossEntropy of one row is that row's loss; CrossEntropyGradient divides by N, as scale = 1/N does
        var rows = PerRow(n, i => SoftmaxLossReference.CrossEntropy(Row(z, i, k), [labels[i]], k, weight));
        yield return SelfTest.Compare("softmax_cross_entropy", "row loss", device, new RefTensor([n], rows), rowLoss, Tolerance);
        yield return SelfTest.Compare("softmax_cross_entropy", "grad logits", device,
                                      new RefTensor([n, k], SoftmaxLossReference.CrossEntropyGradient(z, labels, k, weight)), grad, GradientTolerance);
    }

    private static IEnumerable<SelfTestResult> SeesawCheck(Device device, Generator g)
    {
        // logits (N, C+2) = (class logits, o_fg, o_bg); about a third of the rows background; cumulative counts (C) with
        // about a quarter 0 (clamped to 1); small class probabilities below eps occur at these widths
        var (n, c) = (3 + 2 * (int)g.NextInt64(20), 3 + 2 * (int)g.NextInt64(60));
        var k = c + 2;
        const double p = 0.8, q = 2.0, eps = 1e-2;
        var z = SelfTest.AsFloat32(RefTensor.Random(g, [n, k], -4, 4).Data);
        var labels = Enumerable.Range(0, n).Select(i => i % 3 == 2 ? c : g.NextInt64(c)).ToArray();
        var counts = Enumerable.Range(0, c).Select(_ => g.NextInt64(4) == 0 ? 0 : g.NextInt64(1000)).ToArray();
        var scale = 1.0 / n;
        using var zt = SelfTest.Upload(new RefTensor([n, k], z), device);
        using var lh = Tensor.From(labels, [n]);
        using var lt = lh.To(device);
        using var ch = Tensor.From(counts, [c]);
        using var ct = ch.To(device);
        using var rowLoss = Tensor.Full([n], double.NaN, DType.Float32, device);
        using var grad = Tensor.Full([n, k], double.NaN, DType.Float32, device);
        LongTailBackends.For(device).Seesaw(zt, lt, ct, p, q, eps, scale, rowLoss, grad);
        var factors = SoftmaxLossReference.SeesawFactors(z, labels, c, counts, p, q, eps);
        // Seesaw of one row is that row's loss; SeesawGradient divides by N, as scale = 1/N does
        var rows = PerRow(n, i => SoftmaxLossReference.Seesaw(Row(z, i, k), [labels[i]], c, Row(factors, i, c)));
        yield return SelfTest.Compare("seesaw", "row loss", device, new RefTensor([n], rows), rowLoss, Tolerance);
        yield return SelfTest.Compare("seesaw", "grad logits", device,
                                      new RefTensor([n, k], SoftmaxLossReference.SeesawGradient(z, labels, c, factors)), grad, GradientTolerance);
    }

    private static IEnumerable<SelfTestResult> LogNMergeCheck(Device device, Generator g)
    {
        // a batch (N ≥ 3) merged into a running count of up to 5000 RoIs with random means and m2
        var (n, k) = (3 + 2 * (int)g.NextInt64(20), 1 + 2 * (int)g.NextInt64(300));
        var na = 1 + g.NextInt64(5000);
        var z = SelfTest.AsFloat32(RefTensor.Random(g, [n, k], -5, 5).Data);
        var mean = SelfTest.AsFloat32(RefTensor.Random(g, [k], -2, 2).Data);
        var m2 = SelfTest.AsFloat32(RefTensor.Random(g, [k], 0.1 * na, 3.0 * na).Data);
        using var zt = SelfTest.Upload(new RefTensor([n, k], z), device);
        using var ch = Tensor.From(new[] { na }, [1]);
        using var count = ch.To(device);
        using var m = SelfTest.Upload(new RefTensor([k], mean), device);
        using var s = SelfTest.Upload(new RefTensor([k], m2), device);
        LongTailBackends.For(device).MergeStatistics(zt, count, m, s);
        // Chan et al.'s merge of (n_a, mean_a, M2_a) with the batch's (n_b, mean_b, M2_b = (n_b − 1)·unbiased variance):
        // δ = mean_b − mean_a, mean = mean_a + δ·n_b/n, M2 = M2_a + M2_b + δ²·n_a·n_b/n, n = n_a + n_b
        var (batchMean, batchVariance) = LogitNormReference.BatchStatistics(z, n, k);
        double total = na + n;
        var (expectedMean, expectedM2) = (new double[k], new double[k]);
        for (var j = 0; j < k; j++)
        {
            var delta = batchMean[j] - mean[j];
            expectedMean[j] = mean[j] + delta * n / total;
            expectedM2[j] = m2[j] + batchVariance[j] * (n - 1) + delta * delta * na * n / total;
        }
        yield return SelfTest.Exact("logn_merge", "count", device, [na + n], count.ToArray<long>().Select(v => (double)v).ToArray(), "element");
        yield return SelfTest.Compare("logn_merge", "mean", device, new RefTensor([k], expectedMean), m, Tolerance);
        yield return SelfTest.Compare("logn_merge", "m2", device, new RefTensor([k], expectedM2), s, Tolerance);
    }

    private static IEnumerable<SelfTestResult> LogitScaleCheck(Device device, Generator g)
    {
        // an odd 3-d shape of up to about 110k elements (several pieces of the CPU kernel) and a factor ≠ 1
        var x = RefTensor.Random(g, SelfTest.OddShape(g, 8, 64, 256), -4, 4);
        var factor = SelfTest.AsFloat32([0.25 + 2 * g.NextDouble()]);
        using var xt = SelfTest.Upload(x, device);
        using var f = SelfTest.Upload(new RefTensor([1], factor), device);
        using var y = Tensor.Full(x.Shape, double.NaN, DType.Float32, device);
        LongTailBackends.For(device).Scale(xt, f, y);
        yield return SelfTest.Compare("logit_scale", "forward", device, x.Map(v => v * factor[0]), y, Tolerance);
    }

    /// <summary>Row <paramref name="i"/> of a row-major (·, <paramref name="k"/>) array.</summary>
    private static double[] Row(double[] a, int i, int k) => a[(i * k)..((i + 1) * k)];

    /// <summary>The per-row values of a reference that sums over the rows it is given: <paramref name="row"/>(i) for each row.</summary>
    private static double[] PerRow(int n, Func<int, double> row) => Enumerable.Range(0, n).Select(row).ToArray();
}
