// Finite-difference checks (double) of every reference gradient in src/Engine.LongTail/Reference: the losses
// with their detached quantities (weights, margins, Seesaw factors, BAGS ω) held fixed, the group softmax,
// LogN's batch standardization and the normalized classifiers (section 8: "analytic gradient equals finite
// differences"). Small sizes: each check evaluates the forward twice per input coordinate.
using Engine.LongTail.Reference;
using Engine.Reference;

namespace Engine.LongTail.Tests.Reference;

public class GradcheckTests
{
    private static void Check(Func<double[], double> f, Func<double[], double[]> grad, double[] x, Generator g, ulong seed, string what)
    {
        var r = Gradcheck.Check(inp => [f(inp[0])], (inp, u) => [grad(inp[0]).Select(v => v * u[0]).ToArray()], [x], g);
        Assert.True(r.Passed, $"{what}: {r} (seed {seed})");
    }

    [Fact]
    public void SoftmaxCrossEntropyAndReweightingReference()
    {
        var g = TestUtil.Fresh(out var seed);
        const int n = 6, c = 4, k = c + 1;
        var y = TestUtil.Labels(g, n, c);
        var w = TestUtil.Uniform(g, k, 0.1, 5);
        var z = TestUtil.Logits(g, n, k);
        Check(x => SoftmaxLossReference.CrossEntropy(x, y, k, w), x => SoftmaxLossReference.CrossEntropyGradient(x, y, k, w), z, g, seed, "1.3 weighted CE");
        Check(x => SoftmaxLossReference.CrossEntropy(x, y, k, null), x => SoftmaxLossReference.CrossEntropyGradient(x, y, k, null), z, g, seed, "1.1 CE");
    }

    [Fact]
    public void WeightedBceWithMarginsReference()
    {
        var g = TestUtil.Fresh(out var seed);
        const int n = 5, k = 6;
        var y = SigmoidLossReference.Targets(TestUtil.Labels(g, n, k - 1), k);
        var w = TestUtil.Uniform(g, n * k, 0, 5);
        var d = TestUtil.Uniform(g, n * k, -2, 2);
        var z = TestUtil.Logits(g, n, k, -8, 8);
        Check(x => SigmoidLossReference.Loss(x, y, w, d, 1.0 / n), x => SigmoidLossReference.Gradient(x, y, w, d, 1.0 / n), z, g, seed, "weighted BCE (EQL, EQLv2, Federated, FCBL)");
    }

    [Fact]
    public void SeesawReferenceWithFactorsHeld()
    {
        var g = TestUtil.Fresh(out var seed);
        const int n = 6, c = 5;
        var y = TestUtil.Labels(g, n, c, 0.4);
        var counts = Enumerable.Range(0, c + 1).Select(_ => g.NextInt64(50)).ToArray();
        var z = TestUtil.Logits(g, n, c + 2);
        var s = SoftmaxLossReference.SeesawFactors(z, y, c, counts, 0.8, 2, 0.01);
        Check(x => SoftmaxLossReference.Seesaw(x, y, c, s), x => SoftmaxLossReference.SeesawGradient(x, y, c, s), z, g, seed, "1.6 Seesaw");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void GroupSoftmaxReference(bool log)
    {
        var g = TestUtil.Fresh(out var seed);
        const int n = 3, k = 9;
        long[] offsets = [0, 1, 4, 9]; // a group of size 1, then 3 and 5
        var x = TestUtil.Logits(g, n, k);
        var r = Gradcheck.Check(inp => SoftmaxLossReference.GroupSoftmax(inp[0], n, k, offsets, log),
                                (inp, u) => [SoftmaxLossReference.GroupSoftmaxBackward(inp[0], n, k, offsets, log, u)], [x], g);
        Assert.True(r.Passed, $"group softmax (log {log}): {r} (seed {seed})");
    }

    [Fact]
    public void BagsLossReference()
    {
        var g = TestUtil.Fresh(out var seed);
        const int n = 7;
        long[] offsets = [0, 2, 5, 9];
        var cols = new long[n * 3];
        var omega = new double[n * 3];
        for (var i = 0; i < n; i++)
            for (var k = 0; k < 3; k++)
            {
                cols[i * 3 + k] = offsets[k] + g.NextInt64(offsets[k + 1] - offsets[k]);
                omega[i * 3 + k] = g.NextDouble() < 0.7 ? 1 : 0;
            }
        var z = TestUtil.Logits(g, n, 9);
        Check(x => SoftmaxLossReference.GroupSoftmaxLoss(x, n, 9, offsets, cols, omega),
              x => SoftmaxLossReference.GroupSoftmaxLossGradient(x, n, 9, offsets, cols, omega), z, g, seed, "6.2 BAGS loss");
    }

    [Fact]
    public void LogNStandardizationReference()
    {
        var g = TestUtil.Fresh(out var seed);
        const int n = 5, k = 3;
        var x = TestUtil.Logits(g, n, k);
        var r = Gradcheck.Check(inp => LogitNormReference.Standardize(inp[0], n, k, 1e-5),
                                (inp, u) => [LogitNormReference.StandardizeBackward(inp[0], n, k, 1e-5, u)], [x], g);
        Assert.True(r.Passed, $"2.3 batch standardization: {r} (seed {seed})");
    }

    [Fact]
    public void NormalizedClassifierReferences()
    {
        var g = TestUtil.Fresh(out var seed);
        const int n = 3, o = 4, d = 5;
        var x = TestUtil.Uniform(g, n * d, -1, 1);
        var w = TestUtil.Uniform(g, o * d, -1, 1);
        var b = TestUtil.Uniform(g, o, -1, 1);
        var gain = TestUtil.Uniform(g, o, 0.3, 1);
        var r = Gradcheck.Check(
            inp => NormalizedClassifierReference.NormalizedLinear(inp[0], n, inp[1], o, d, inp[2], 20, 1e-6),
            (inp, u) =>
            {
                var (gx, gw, gb) = NormalizedClassifierReference.NormalizedLinearBackward(inp[0], n, inp[1], o, d, 20, 1e-6, u);
                return [gx, gw, gb];
            }, [x, w, b], g, atol: 1e-5);
        Assert.True(r.Passed, $"1.8 normalized linear: {r} (seed {seed})");
        r = Gradcheck.Check(
            inp => NormalizedClassifierReference.Cosine(inp[0], n, inp[1], inp[2], o, d, 48, 1e-5),
            (inp, u) =>
            {
                var (gx, gv, gg) = NormalizedClassifierReference.CosineBackward(inp[0], n, inp[1], inp[2], o, d, 48, 1e-5, u);
                return [gx, gv, gg];
            }, [x, w, gain], g, atol: 1e-5);
        Assert.True(r.Passed, $"1.8 cosine classifier: {r} (seed {seed})");
    }
}
