// ILongTailBackend.CratTransfuse on the CPU: over three steps from a random bank with closed gates, the member's bank,
// gated weights and extra gradient are bit for bit those of CratTransfuser (the same shared routines, rounded once to
// float32) and its row losses sum to the transfuser's extra loss; every output is checked against the double reference
// (CratReference), the ungated weights against CratReference.UngatedWeights, for both queries, odd sizes, background
// rows, a batch without positives and an empty batch, with every output poisoned with NaN before the call. Also: the
// weights-only call leaves the bank alone, a bad label is rejected before the bank changes, and bad parameters.
using Engine.LongTail.Reference;

namespace Engine.LongTail.Tests.Transfusion;

public class CratBackendTests
{
    private static ILongTailBackend Cpu => LongTailBackends.Cpu;

    private sealed record Outputs(Tensor Weights, Tensor Ungated, Tensor Extra, Tensor RowLoss) : IDisposable
    {
        public static Outputs Poisoned(int r, int c) => new(Nan(r, c), Nan(r, c), Nan(r, 4 * c), Nan(r));

        private static Tensor Nan(params int[] shape) => Tensor.Full(shape, double.NaN);

        public void Dispose()
        {
            Weights.Dispose();
            Ungated.Dispose();
            Extra.Dispose();
            RowLoss.Dispose();
        }
    }

    /// <summary>Embeddings ≥ 0 (after ReLU); labels with about <paramref name="background"/> background, positives from the
    /// first half of the classes; every value float32-exact so the reference sees what the engine sees.</summary>
    private static (double[] X, double[] Deltas, double[] Targets, long[] Labels) Batch(Generator g, int r, int d, int c, double background) =>
        (TestUtil.Uniform(g, r * d, 0, 2).Select(v => (double)(float)v).ToArray(), TestUtil.Logits(g, r, 4 * c, -2, 2),
         TestUtil.Logits(g, r, 4, -2, 2), TestUtil.Labels(g, r, c, background));

    /// <summary>A bank (C·4D) of small positive values with every third class never seen (gate closed), float32-exact.</summary>
    private static double[] Bank(Generator g, int c, int d)
    {
        var bank = TestUtil.Uniform(g, c * 4 * d, 0, 1e-3).Select(v => (double)(float)v).ToArray();
        for (var j = 0; j < c; j += 3) Array.Clear(bank, j * 4 * d, 4 * d);
        return bank;
    }

    private static void AssertBitEqual(double[] expected, double[] actual, string what, ulong seed)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
            if (!(expected[i] == actual[i]))
                Assert.Fail($"{what}: element {i} of {expected.Length} is {actual[i]:R}, expected {expected[i]:R} bit for bit (seed {seed})");
    }

    public static TheoryData<CratQuery, int, int, int, double> Cases()
    {
        var data = new TheoryData<CratQuery, int, int, int, double>();
        foreach (var query in new[] { CratQuery.FirstSample, CratQuery.PerSample })
        {
            // R, D, C, background fraction: odd sizes, one RoI, LVIS width, one class, no positive, no RoI
            data.Add(query, 37, 13, 9, 0.5);
            data.Add(query, 1, 7, 5, 0.0);
            data.Add(query, 23, 5, 1203, 0.3);
            data.Add(query, 11, 3, 1, 0.4);
            data.Add(query, 17, 6, 8, 1.0);
            data.Add(query, 0, 4, 3, 0.5);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesTheTransfuserBitForBitAndTheReference(CratQuery query, int r, int d, int c, double background)
    {
        var g = TestUtil.Fresh(out var seed);
        const double rate = 0.3, lambda = 0.05;
        var parameters = new CratParameters(c, d, query, rate, CratTransfuser.DefaultTemperature, lambda);
        var bank = Bank(g, c, d);
        using var crat = new CratTransfuser(c, d, query, fisherRate: rate, boxWeight: lambda);
        using (var state = TestUtil.Float(bank, c, 4 * d)) crat.LoadStateDict(new Dictionary<string, Tensor> { ["fisher_box"] = state });
        using var fisher = TestUtil.Float(bank, c, 4 * d);
        for (var step = 0; step < 3; step++)
        {
            var what = $"{query} R={r} D={d} C={c} background={background} step {step}";
            var (x, deltas, targets, labels) = Batch(g, r, d, c, background);
            var n = Math.Max(r, 1) + step;
            using var scope = DisposeScope.Begin();
            var (tx, td, tt, tl) = (TestUtil.Float(x, r, d), TestUtil.Float(deltas, r, 4 * c), TestUtil.Float(targets, r, 4), TestUtil.Long(labels));
            using var o = Outputs.Poisoned(r, c);
            Cpu.CratTransfuse(parameters, td, tx, tt, tl, n, fisher, updateFisher: true, o.Weights, o.Ungated, o.Extra, o.RowLoss);

            // the transfuser on the same batch: incoming gradient 0, so the deltas' gradient is its extra gradient
            var dIn = TestUtil.Float(deltas, r, 4 * c).RequireGrad();
            using (var result = crat.Transfuse(dIn, tx, tt, tl, n))
            {
                if (r > 0) result.BoxDeltas.Backward(Tensor.Zeros([r, 4 * c]));
                using var f = crat.Fisher();
                AssertBitEqual(f.ToDoubleArray(), fisher.ToDoubleArray(), $"{what}: bank", seed);
                AssertBitEqual(crat.LastWeights!.Select(v => (double)(float)v).ToArray(), o.Weights.ToDoubleArray(), $"{what}: weights", seed);
                AssertBitEqual(dIn.Grad?.ToDoubleArray() ?? new double[r * 4 * c], o.Extra.ToDoubleArray(), $"{what}: extra gradient", seed);
                // each row loss is rounded to float once: 6e-8 relative on a sum of non-negative terms
                TestUtil.AssertClose(result.ExtraLoss, o.RowLoss.ToDoubleArray().Sum(), $"{what}: Σ row loss vs the transfuser's extra loss", seed, 1e-12, 2e-7);
            }

            CratReference.FisherUpdate(bank, x, deltas, targets, labels, d, c, n, rate);
            // float32 state of double-accumulated values: relative rounding 6e-8 per update
            TestUtil.AssertClose(bank, fisher.ToDoubleArray(), $"{what}: bank vs reference", seed, 1e-12, 1e-6);
            bank = fisher.ToDoubleArray();   // the reference continues from the engine's float32 bank
            var w = CratReference.Weights(query, bank, x, deltas, targets, labels, d, c, n, CratTransfuser.DefaultTemperature);
            // cosines from float32 state (≈1e-7 relative) divided by T = 0.05 move the softmax by ≈ 2e-6 relative
            TestUtil.AssertClose(w, o.Weights.ToDoubleArray(), $"{what}: weights vs reference", seed, 1e-7, 1e-4);
            var positives = Enumerable.Range(0, r).Where(i => labels[i] < c).ToArray();
            var ungated = new double[r * c];
            if (positives.Length > 0)
            {
                var u = CratReference.UngatedWeights(query, bank, x, deltas, targets, labels, d, c, n, CratTransfuser.DefaultTemperature);
                for (var p = 0; p < positives.Length; p++) Array.Copy(u, p * c, ungated, positives[p] * c, c);
            }
            TestUtil.AssertClose(ungated, o.Ungated.ToDoubleArray(), $"{what}: ungated weights vs reference", seed, 1e-7, 1e-4);
            TestUtil.AssertClose(CratReference.TransfusionGradient(w, deltas, targets, labels, c, lambda), o.Extra.ToDoubleArray(),
                                 $"{what}: extra gradient vs reference", seed, lambda * 1e-7, 1e-4);
            var rowLoss = new double[r];
            for (var i = 0; i < r; i++)
                for (var j = 0; j < c; j++)
                    for (var k = 0; k < 4; k++) rowLoss[i] += lambda * w[i * c + j] * Math.Abs(deltas[i * 4 * c + 4 * j + k] - targets[i * 4 + k]);
            TestUtil.AssertClose(rowLoss, o.RowLoss.ToDoubleArray(), $"{what}: row loss vs reference", seed, 1e-9, 1e-4);
            if (positives.Length == 0)
                Assert.True(o.Weights.ToDoubleArray().All(v => v == 0) && o.RowLoss.ToDoubleArray().All(v => v == 0), $"{what}: a batch without positives writes zeros (seed {seed})");
        }
    }

    [Theory]
    [InlineData(CratQuery.FirstSample)]
    [InlineData(CratQuery.PerSample)]
    public void WeightsOnlyCallLeavesTheBankAndMatchesTheTransfusersWeights(CratQuery query)
    {
        var g = TestUtil.Fresh(out var seed);
        const int r = 29, d = 7, c = 13;
        var parameters = new CratParameters(c, d, query, CratTransfuser.DefaultFisherRate, CratTransfuser.DefaultTemperature, CratTransfuser.DefaultBoxWeight);
        var bank = Bank(g, c, d);
        using var crat = new CratTransfuser(c, d, query);
        using (var state = TestUtil.Float(bank, c, 4 * d)) crat.LoadStateDict(new Dictionary<string, Tensor> { ["fisher_box"] = state });
        using var fisher = TestUtil.Float(bank, c, 4 * d);
        var (x, deltas, targets, labels) = Batch(g, r, d, c, 0.4);
        using var scope = DisposeScope.Begin();
        var (tx, td, tt, tl) = (TestUtil.Float(x, r, d), TestUtil.Float(deltas, r, 4 * c), TestUtil.Float(targets, r, 4), TestUtil.Long(labels));
        using var o = Outputs.Poisoned(r, c);
        Cpu.CratTransfuse(parameters, td, tx, tt, tl, r, fisher, updateFisher: false, o.Weights, null, o.Extra, o.RowLoss);
        AssertBitEqual(bank, fisher.ToDoubleArray(), $"{query}: bank after a weights-only call", seed);
        Assert.True(o.Ungated.ToDoubleArray().All(double.IsNaN), $"{query}: an ungated output not asked for was written (seed {seed})");
        using var expected = crat.Weights(td, tx, tt, tl, r);
        AssertBitEqual(expected.ToDoubleArray(), o.Weights.ToDoubleArray(), $"{query}: weights vs CratTransfuser.Weights", seed);
        var w = CratReference.Weights(query, bank, x, deltas, targets, labels, d, c, r, CratTransfuser.DefaultTemperature);
        TestUtil.AssertClose(w, o.Weights.ToDoubleArray(), $"{query}: weights vs reference", seed, 1e-7, 1e-4);
    }

    [Fact]
    public void BadLabelIsRejectedBeforeTheBankChangesAndBadParametersAreNamed()
    {
        var g = TestUtil.Fresh(out var seed);
        const int r = 6, d = 3, c = 4;
        var parameters = new CratParameters(c, d, CratQuery.FirstSample, 0.5, 0.05, 1);
        var bank = Bank(g, c, d);
        using var fisher = TestUtil.Float(bank, c, 4 * d);
        var (x, deltas, targets, labels) = Batch(g, r, d, c, 0.2);
        labels[4] = c + 1;
        using var scope = DisposeScope.Begin();
        using var o = Outputs.Poisoned(r, c);
        var e = Assert.Throws<ArgumentException>(() => Cpu.CratTransfuse(parameters, TestUtil.Float(deltas, r, 4 * c), TestUtil.Float(x, r, d),
            TestUtil.Float(targets, r, 4), TestUtil.Long(labels), r, fisher, true, o.Weights, o.Ungated, o.Extra, o.RowLoss));
        Assert.StartsWith($"CratTransfuse: label {c + 1} at row 4 is outside 0..{c}", e.Message);
        AssertBitEqual(bank, fisher.ToDoubleArray(), $"bank after a rejected batch (seed {seed})", seed);

        Assert.Contains("C must be ≥ 1", Assert.Throws<ArgumentException>(() => new CratParameters(0, d, CratQuery.FirstSample, 0.5, 0.05, 1)).Message);
        Assert.Contains("D must be ≥ 1", Assert.Throws<ArgumentException>(() => new CratParameters(c, 0, CratQuery.FirstSample, 0.5, 0.05, 1)).Message);
        Assert.Contains("(0, 1]", Assert.Throws<ArgumentException>(() => new CratParameters(c, d, CratQuery.FirstSample, 0, 0.05, 1)).Message);
        Assert.Contains("temperature", Assert.Throws<ArgumentException>(() => new CratParameters(c, d, CratQuery.FirstSample, 0.5, 0, 1)).Message);
        Assert.Contains("λ_b", Assert.Throws<ArgumentException>(() => new CratParameters(c, d, CratQuery.FirstSample, 0.5, 0.05, -1)).Message);
        Assert.Contains("not a CratQuery", Assert.Throws<ArgumentException>(() => new CratParameters(c, d, (CratQuery)7, 0.5, 0.05, 1)).Message);
    }
}
