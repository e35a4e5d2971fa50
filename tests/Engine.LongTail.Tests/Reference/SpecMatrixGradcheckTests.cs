// Finite-difference checks (double) of the loss gradients that GradcheckTests does not reach: CRAT's box transfusion
// loss L_box_trans = λ_b·Σ_n Σ_c u_c·w_{n,c}·‖Δ_{n,c} − t_n‖₁ (section 3.4), with the weights w and gate u held constant
// as the code holds them, both with respect to the deltas and, through Δ = W·x + b, to the regressor's W and b
// (section 8, "every loss: analytic gradient equals finite differences").
using Engine.LongTail.Reference;
using Engine.Reference;

namespace Engine.LongTail.Tests.Reference;

public class SpecMatrixGradcheckTests
{
    /// <summary>A batch with embeddings ≥ 0 (after ReLU), random deltas and targets, positives from the first half of
    /// the classes, and the gated weights of a Fisher bank in which only some classes were seen (so u_c = 0 occurs).</summary>
    private static (double[] X, double[] Deltas, double[] Targets, long[] Labels, double[] Weights) Batch(Generator g, CratQuery query, int r, int d, int c)
    {
        var x = TestUtil.Uniform(g, r * d, 0, 2);
        var deltas = TestUtil.Uniform(g, r * 4 * c, -2, 2);
        var targets = TestUtil.Uniform(g, r * 4, -2, 2);
        var labels = TestUtil.Labels(g, r, c, 0.3);
        var fisher = new double[c * 4 * d];
        // one earlier batch fills the rows of the classes it holds; the rest stay zero (gate closed)
        var earlierX = TestUtil.Uniform(g, r * d, 0, 2);
        CratReference.FisherUpdate(fisher, earlierX, TestUtil.Uniform(g, r * 4 * c, -2, 2), TestUtil.Uniform(g, r * 4, -2, 2),
                                   TestUtil.Labels(g, r, c, 0.3), d, c, r, 0.3);
        var weights = CratReference.Weights(query, fisher, x, deltas, targets, labels, d, c, r, CratTransfuser.DefaultTemperature);
        return (x, deltas, targets, labels, weights);
    }

    [Theory]
    [InlineData(CratQuery.FirstSample)]
    [InlineData(CratQuery.PerSample)]
    public void CratBoxTransfusionGradientMatchesFiniteDifferences(CratQuery query)
    {
        var g = TestUtil.Fresh(out var seed);
        const int r = 7, d = 3, c = 5;
        const double lambda = 0.37;
        // the check must exercise non-zero weights; a small batch sometimes has none (no positive, or no open gate of
        // another class), so draw again from the same generator (about one batch in twenty)
        var (x, deltas, targets, labels, w) = Batch(g, query, r, d, c);
        for (var attempt = 0; attempt < 100 && !w.Any(v => v > 0); attempt++) (x, deltas, targets, labels, w) = Batch(g, query, r, d, c);
        Assert.Contains(w, v => v > 0);
        // L1 kinks: residuals are uniform in (−4, 4), so one within h = 1e-6 of 0 has probability ≈ 1e-6 per element
        var onDeltas = Gradcheck.Check(
            p => [CratReference.TransfusionLoss(w, p[0], targets, labels, c, lambda)],
            (p, u) => [CratReference.TransfusionGradient(w, p[0], targets, labels, c, lambda).Select(v => v * u[0]).ToArray()],
            [deltas], g);
        Assert.True(onDeltas.Passed, $"{query}: ∂L_box_trans/∂Δ vs finite differences: {onDeltas} (seed {seed})");

        // through the regressor Δ = W·x + b (W: 4C × D class-major, as CratReference.Deltas lays it out)
        var weight = TestUtil.Uniform(g, 4 * c * d, -1, 1);
        var bias = TestUtil.Uniform(g, 4 * c, -1, 1);
        var onRegressor = Gradcheck.Check(
            p => [CratReference.TransfusionLoss(w, CratReference.Deltas(x, p[0], p[1], r, d, c), targets, labels, c, lambda)],
            (p, u) =>
            {
                var gd = CratReference.TransfusionGradient(w, CratReference.Deltas(x, p[0], p[1], r, d, c), targets, labels, c, lambda);
                var gw = new double[4 * c * d];
                var gb = new double[4 * c];
                for (var n = 0; n < r; n++)
                    for (var o = 0; o < 4 * c; o++)
                    {
                        var v = u[0] * gd[n * 4 * c + o];
                        gb[o] += v;
                        for (var f = 0; f < d; f++) gw[o * d + f] += v * x[n * d + f];
                    }
                return [gw, gb];
            },
            [weight, bias], g);
        Assert.True(onRegressor.Passed, $"{query}: ∂L_box_trans/∂(W, b) vs finite differences: {onRegressor} (seed {seed})");
    }
}
