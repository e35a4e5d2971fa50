// LogN (section 2): the fused statistics update against the double reference (EMA and exact, odd sizes, LVIS width),
// the calibration and its "How to verify" items (2.5), the LogN row of section 8, state round trips, and repo mode's
// batch-standardized training loss against its reference gradient.
using Engine.LongTail.Reference;

namespace Engine.LongTail.Tests.Calibration;

public class LogitNormTests
{
    [Fact]
    public void EmaUpdateMatchesReference()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (n, c) in new[] { (2, 3), (37, 9), (129, 1203) })
        {
            using var cal = new LogitNormCalibrator(c, momentum: 0.3);
            var mean = new double[c + 1];
            var variance = Enumerable.Repeat(1.0, c + 1).ToArray();
            for (var it = 0; it < 3; it++)
            {
                var z = TestUtil.Logits(g, n, c + 1, -10, 10);
                using var zt = TestUtil.Float(z, n, c + 1);
                cal.Accumulate(zt);
                LogitNormReference.EmaUpdate(z, n, c + 1, 0.3, mean, variance);
            }
            using var m = cal.Mean();
            using var v = cal.Variance();
            // double accumulation in the kernel, float32 state: a few ulps of values of order 10 (means) and 30 (variances)
            TestUtil.AssertClose(mean, m.ToDoubleArray(), $"EMA mean n={n} C={c}", seed, 1e-5, 1e-5);
            TestUtil.AssertClose(variance, v.ToDoubleArray(), $"EMA variance n={n} C={c}", seed, 1e-5, 1e-5);
        }
    }

    [Fact]
    public void EmaWithConstantBatchesFollowsTheClosedForm()
    {
        // 2.5: with constant batch statistics s, μ after n updates equals s + (μ0 − s)(1 − m)^n; one-RoI batches are skipped
        var g = TestUtil.Fresh(out var seed);
        const int c = 4, rows = 6;
        var z = TestUtil.Logits(g, rows, c + 1);
        var (s, b) = LogitNormReference.BatchStatistics(z, rows, c + 1);
        const double m = 0.05;
        using var cal = new LogitNormCalibrator(c, momentum: m);
        using var zt = TestUtil.Float(z, rows, c + 1);
        using var single = TestUtil.Float(z.Take(c + 1).ToArray(), 1, c + 1);
        for (var u = 0; u < 40; u++)
        {
            cal.Accumulate(zt);
            cal.Accumulate(single);
        }
        var decay = Math.Pow(1 - m, 40);
        using var mu = cal.Mean();
        using var v = cal.Variance();
        TestUtil.AssertClose(s.Select(x => x + (0 - x) * decay).ToArray(), mu.ToDoubleArray(), "closed-form EMA mean", seed, 1e-5, 1e-4);
        TestUtil.AssertClose(b.Select(x => x + (1 - x) * decay).ToArray(), v.ToDoubleArray(), "closed-form EMA variance", seed, 1e-5, 1e-4);
        Assert.Equal(1 - Math.Pow(1 - 5e-5, 16), LogitNormCalibrator.BatchMomentum(5e-5, 16), 15);
    }

    [Fact]
    public void ExactModeEqualsMeanAndUnbiasedVarianceOfThePass()
    {
        // 2.5: exact statistics over batches of uneven sizes (one of a single RoI) equal the plain mean and unbiased variance
        var g = TestUtil.Fresh(out var seed);
        const int c = 1203;
        int[] sizes = [17, 1, 64, 5];
        var all = new List<double>();
        using var cal = new LogitNormCalibrator(c, LogitStatisticsMode.Exact);
        foreach (var n in sizes)
        {
            var z = TestUtil.Logits(g, n, c + 1, -5, 5).Select(v => v + 3).Select(v => (double)(float)v).ToArray();
            all.AddRange(z);
            using var zt = TestUtil.Float(z, n, c + 1);
            cal.Accumulate(zt);
        }
        var (mean, variance) = LogitNormReference.BatchStatistics(all.ToArray(), sizes.Sum(), c + 1);
        Assert.Equal(sizes.Sum(), cal.Count);
        using var mu = cal.Mean();
        using var v = cal.Variance();
        TestUtil.AssertClose(mean, mu.ToDoubleArray(), "exact mean", seed, 1e-5, 1e-5);
        TestUtil.AssertClose(variance, v.ToDoubleArray(), "exact variance", seed, 1e-5, 1e-5);
    }

    [Fact]
    public void CalibrationMatchesReferenceAndVerifyItems()
    {
        var g = TestUtil.Fresh(out var seed);
        const int n = 50, c = 1203;
        using var cal = new LogitNormCalibrator(c, momentum: 0.5);
        for (var it = 0; it < 3; it++)
        {
            var stats = TestUtil.Logits(g, 40, c + 1, -6, 6);
            for (var e = 0; e < stats.Length; e++) stats[e] = (float)(stats[e] * (1 + e % 7) + e % 11);
            using var st = TestUtil.Float(stats, 40, c + 1);
            cal.Accumulate(st);
        }
        var z = TestUtil.Logits(g, n, c + 1, -8, 8);
        using var zt = TestUtil.Float(z, n, c + 1);
        using var m = cal.Mean();
        using var v = cal.Variance();
        var mean = m.ToDoubleArray();
        var variance = v.ToDoubleArray();
        var expected = LogitNormReference.Calibrate(z, n, c, mean, variance);
        using var calibrated = cal.Calibrate(zt);
        var actual = calibrated.ToDoubleArray();
        TestUtil.AssertClose(expected, actual, "calibrated logits", seed, 1e-5, 1e-5);
        // the background logit is bit-identical; the class with the minimum mean gets zero shift, every other shift ≥ 0
        for (var i = 0; i < n; i++) Assert.Equal((float)z[i * (c + 1) + c], (float)actual[i * (c + 1) + c]);
        var (shift, sd) = cal.Calibration(Device.Cpu);
        var sh = shift.ToDoubleArray();
        var argMin = Enumerable.Range(0, c).MinBy(j => mean[j]);
        Assert.Equal(0.0, sh[argMin]);
        Assert.All(sh, x => Assert.True(x >= 0));
        shift.Dispose();
        sd.Dispose();
        // the order of logits across RoIs is preserved within every column
        for (var j = 0; j < c + 1; j += 97)
        {
            var raw = Enumerable.Range(0, n).Select(i => z[i * (c + 1) + j]).ToArray();
            var cal2 = Enumerable.Range(0, n).Select(i => actual[i * (c + 1) + j]).ToArray();
            for (var a = 0; a < n; a++)
                for (var b = 0; b < n; b++)
                    if (raw[a] < raw[b]) Assert.True(cal2[a] <= cal2[b], $"order of column {j} (seed {seed})");
        }
        // scores = softmax of the calibrated logits
        using var scores = cal.Scores(zt);
        var s = scores.ToDoubleArray();
        for (var i = 0; i < n; i += 7)
        {
            var lp = SoftmaxLossReference.LogSoftmax(expected, i * (c + 1), c + 1);
            TestUtil.AssertClose(lp.Select(Math.Exp).ToArray(), s.Skip(i * (c + 1)).Take(c + 1).ToArray(), $"scores row {i}", seed, 1e-6, 1e-4);
        }
        // calibration does not touch the state
        using var m2 = cal.Mean();
        Assert.Equal(mean, m2.ToDoubleArray());
    }

    [Fact]
    public void EqualMeansAndUnitVariancesLeaveScoresUnchanged()
    {
        // section 8 / 2.5: equal foreground means and sd = 1 give the raw logits (β equals every mean)
        var g = TestUtil.Fresh(out var seed);
        const int n = 12, c = 30;
        using var cal = new LogitNormCalibrator(c);
        using (var state = cal.StateDict())
        {
            using (GradMode.NoGrad())
            {
                state["running_mean"].Fill(2.75);
                state["running_var"].Fill(1);
            }
            cal.LoadStateDict(state);
        }
        var z = TestUtil.Logits(g, n, c + 1);
        using var zt = TestUtil.Float(z, n, c + 1);
        using var calibrated = cal.Calibrate(zt);
        Assert.Equal(zt.ToDoubleArray(), calibrated.ToDoubleArray());
        using var plain = new SoftmaxCrossEntropyLoss(c);
        using var s0 = plain.Scores(zt);
        using var s1 = cal.Scores(zt);
        // the same logits through two float32 softmax implementations (Engine.Core's and the fused calibration's)
        TestUtil.AssertClose(s0.ToDoubleArray(), s1.ToDoubleArray(), "scores with equal means and unit variances", seed, 1e-7, 1e-6);
    }

    [Fact]
    public void ScoresStayFiniteWhenATinyVarianceMakesCalibratedLogitsHuge()
    {
        // a class whose logits never varied has σ = √1e-11: z / σ reaches 1e6, far beyond exp's float range, and a
        // softmax that does not subtract the row maximum turns the whole row into NaN
        var g = TestUtil.Fresh(out var seed);
        const int n = 9, c = 6;
        using var cal = new LogitNormCalibrator(c);
        var mean = Enumerable.Range(0, c + 1).Select(_ => (float)(g.NextDouble() * 2 - 1)).ToArray();
        var variance = Enumerable.Range(0, c + 1).Select(j => j == 2 ? 0f : (float)(0.5 + g.NextDouble())).ToArray();
        using (var m = Tensor.From(mean, [c + 1]))
        using (var v = Tensor.From(variance, [c + 1]))
            cal.LoadStateDict(new Dictionary<string, Tensor> { ["running_mean"] = m, ["running_var"] = v });
        var z = TestUtil.Logits(g, n, c + 1);
        using var zt = TestUtil.Float(z, n, c + 1);
        using var scores = cal.Scores(zt);
        var s = scores.ToDoubleArray();
        var expected = LogitNormReference.Calibrate(z, n, c, mean.Select(x => (double)x).ToArray(), variance.Select(x => (double)x).ToArray());
        Assert.Contains(expected, x => Math.Abs(x) > 1e4);
        for (var i = 0; i < n; i++)
        {
            var lp = SoftmaxLossReference.LogSoftmax(expected, i * (c + 1), c + 1);
            TestUtil.AssertClose(lp.Select(Math.Exp).ToArray(), s.Skip(i * (c + 1)).Take(c + 1).ToArray(), $"scores row {i}", seed, 1e-6, 1e-4);
        }
    }

    [Fact]
    public void DegenerateClassesAndStateRoundTrip()
    {
        var g = TestUtil.Fresh(out var seed);
        const int c = 5, n = 20;
        using var cal = new LogitNormCalibrator(c, LogitStatisticsMode.Exact);
        var z = TestUtil.Logits(g, n, c + 1);
        for (var i = 0; i < n; i++) z[i * (c + 1) + 2] = 1.5; // class 2 constant: variance 0
        using var zt = TestUtil.Float(z, n, c + 1);
        cal.Accumulate(zt);
        Assert.Equal([2], cal.DegenerateClasses());
        // the 1e-11 floor keeps the calibrated column finite
        using var calibrated = cal.Calibrate(zt);
        Assert.All(calibrated.ToDoubleArray(), x => Assert.True(double.IsFinite(x)));
        using var saved = cal.StateDict();
        using var other = new LogitNormCalibrator(c, LogitStatisticsMode.Exact);
        other.LoadStateDict(saved);
        var more = TestUtil.Logits(g, 7, c + 1);
        using var mt = TestUtil.Float(more, 7, c + 1);
        cal.Accumulate(mt);
        other.Accumulate(mt);
        using var a = cal.StateDict();
        using var b = other.StateDict();
        foreach (var key in a.Keys) Assert.Equal(a[key].ToDoubleArray(), b[key].ToDoubleArray());
        using var ema = new LogitNormCalibrator(c);
        Assert.Throws<InvalidOperationException>(() => ema.LoadStateDict(saved));
        using var wrong = Tensor.Zeros([4, 7]);
        Assert.Contains("[N, 6]", Assert.Throws<ArgumentException>(() => cal.Calibrate(wrong)).Message);
    }

    [Fact]
    public void CalibrationFollowsEveryChangeOfTheStatistics()
    {
        // the calibrator keeps (shift, sd) between calls; every way the statistics change must reach the next call
        var g = TestUtil.Fresh(out var seed);
        const int c = 9, n = 13;
        var z = TestUtil.Logits(g, n, c + 1, -6, 6);
        using var zt = TestUtil.Float(z, n, c + 1);
        Tensor Batch(int rows)
        {
            var values = TestUtil.Logits(g, rows, c + 1, -6, 6);
            for (var e = 0; e < values.Length; e++) values[e] = values[e] * (1 + e % 5) + e % 3;
            return TestUtil.Float(values, rows, c + 1);
        }
        void AssertCalibratedByCurrentStatistics(LogitNormCalibrator cal, string after)
        {
            using var m = cal.Mean();
            using var v = cal.Variance();
            var expected = LogitNormReference.Calibrate(z, n, c, m.ToDoubleArray(), v.ToDoubleArray());
            using var calibrated = cal.Calibrate(zt);
            TestUtil.AssertClose(expected, calibrated.ToDoubleArray(), $"calibrated logits after {after}", seed, 1e-5, 1e-5);
            using var again = cal.Calibrate(zt);
            Assert.Equal(calibrated.ToDoubleArray(), again.ToDoubleArray());
        }

        foreach (var mode in new[] { LogitStatisticsMode.Ema, LogitStatisticsMode.Exact })
        {
            using var cal = new LogitNormCalibrator(c, mode, momentum: 0.3);
            AssertCalibratedByCurrentStatistics(cal, $"construction ({mode})");
            using (var b = Batch(17)) cal.Accumulate(b);
            AssertCalibratedByCurrentStatistics(cal, $"an update ({mode})");
            using (var b = Batch(5)) cal.Accumulate(b);
            AssertCalibratedByCurrentStatistics(cal, $"a second update ({mode})");
            using var saved = cal.StateDict();
            using (var b = Batch(11)) cal.Accumulate(b);
            AssertCalibratedByCurrentStatistics(cal, $"a third update ({mode})");
            cal.LoadStateDict(saved);
            AssertCalibratedByCurrentStatistics(cal, $"loading earlier statistics ({mode})");
            if (mode != LogitStatisticsMode.Ema) continue;
            using (var b = Batch(8))
            using (cal.Standardize(b, 1e-5, 0.2)) AssertCalibratedByCurrentStatistics(cal, "repo mode's standardization");
            using var mean = Tensor.FromDoubles(Enumerable.Range(0, c + 1).Select(j => 0.5 * j - 2).ToArray(), [c + 1], DType.Float32, Device.Cpu);
            using var variance = Tensor.FromDoubles(Enumerable.Range(0, c + 1).Select(j => 0.25 + j).ToArray(), [c + 1], DType.Float32, Device.Cpu);
            cal.SetStatistics(mean, variance);
            AssertCalibratedByCurrentStatistics(cal, "SetStatistics");
        }
    }

    [Fact]
    public void RepoModeTrainingLossMatchesReference()
    {
        // 2.3 repo mode: CE of the batch-standardized logits; the gradient through the standardization against the
        // reference VJP, and the running statistics updated with the training momentum
        var g = TestUtil.Fresh(out var seed);
        foreach (var (n, c) in new[] { (2, 4), (23, 9), (64, 1203) })
        {
            using var cal = new LogitNormCalibrator(c);
            using var loss = new LogitNormSoftmaxLoss(cal, momentum: 0.1);
            var z = TestUtil.Logits(g, n, c + 1, -5, 5);
            // the tolerance below assumes sd ≥ ~1; with two rows a column's sd is half the gap of its two values, so draw
            // again until every gap is at least 2 (two rows whose logits nearly agree amplify float rounding by 1/sd)
            while (n == 2 && Enumerable.Range(0, c + 1).Any(j => Math.Abs(z[j] - z[c + 1 + j]) < 2)) z = TestUtil.Logits(g, n, c + 1, -5, 5);
            var y = TestUtil.Labels(g, n, c);
            var (value, grad) = TestUtil.LossAndGrad(loss, z, y);
            var zs = LogitNormReference.Standardize(z, n, c + 1, 1e-5);
            TestUtil.AssertClose(SoftmaxLossReference.CrossEntropy(zs, y, c + 1, null), value, $"repo loss n={n}", seed, 1e-5, 1e-4);
            var gz = SoftmaxLossReference.CrossEntropyGradient(zs, y, c + 1, null);
            var expected = LogitNormReference.StandardizeBackward(z, n, c + 1, 1e-5, gz);
            // the chain through 1/sd amplifies float rounding of centred values; sd ≥ ~1 here, 1e-5 absolute suffices
            TestUtil.AssertClose(expected, grad, $"repo gradient n={n}", seed, 1e-5, 1e-3);
            var mean = new double[c + 1];
            var variance = Enumerable.Repeat(1.0, c + 1).ToArray();
            LogitNormReference.EmaUpdate(z, n, c + 1, 0.1, mean, variance);
            using var m = cal.Mean();
            TestUtil.AssertClose(mean, m.ToDoubleArray(), $"repo running mean n={n}", seed, 1e-6, 1e-5);
        }
    }
}
