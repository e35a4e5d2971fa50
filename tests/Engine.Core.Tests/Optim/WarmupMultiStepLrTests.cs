// The warm-up multi-step schedule at its boundary iterations.
using Engine.Nn;
using Engine.Optim;

namespace Engine.Tests.Optim;

public class WarmupMultiStepLrTests
{
    // Values derived by hand from lr(i) = base·gamma^#{s ≤ i}·(i < W ? wf·(1 − i/W) + i/W : 1); compared to
    // double rounding (a few ulps).
    private static void AssertLr(double expected, double actual, long i) =>
        Assert.True(Math.Abs(expected - actual) <= 1e-15 * Math.Abs(expected), $"iteration {i}: lr {actual:R}, expected {expected:R}");

    [Fact]
    public void Detectron2DefaultScheduleAtBoundaries()
    {
        // base 0.02, linear warm-up over 1000 iterations from 0.001×, steps at 60k and 80k, gamma 0.1
        var s = new WarmupMultiStepLr(0.02, 1000, 0.001, WarmupMethod.Linear, [60_000, 80_000], 0.1);
        AssertLr(0.02 * 0.001, s.LrAt(0), 0);
        AssertLr(0.02 * (0.001 * 0.999 + 0.001), s.LrAt(1), 1);
        AssertLr(0.02 * 0.5005, s.LrAt(500), 500);
        AssertLr(0.02 * (0.001 * 0.001 + 0.999), s.LrAt(999), 999);
        AssertLr(0.02, s.LrAt(1000), 1000);
        AssertLr(0.02, s.LrAt(59_999), 59_999);
        AssertLr(0.002, s.LrAt(60_000), 60_000);
        AssertLr(0.002, s.LrAt(79_999), 79_999);
        AssertLr(0.0002, s.LrAt(80_000), 80_000);
        AssertLr(0.0002, s.LrAt(10_000_000), 10_000_000);
    }

    [Fact]
    public void ConstantWarmupAndStepsInsideTheWarmup()
    {
        var c = new WarmupMultiStepLr(1.0, 10, 0.25, WarmupMethod.Constant, [20], 0.5);
        AssertLr(0.25, c.LrAt(0), 0);
        AssertLr(0.25, c.LrAt(9), 9);
        AssertLr(1.0, c.LrAt(10), 10);
        AssertLr(0.5, c.LrAt(20), 20);

        // a step at 5 inside a 10-iteration linear warm-up: the factors multiply
        var s = new WarmupMultiStepLr(2.0, 10, 0.1, WarmupMethod.Linear, [5], 0.5);
        AssertLr(2.0 * 0.1, s.LrAt(0), 0);
        AssertLr(2.0 * (0.1 * 0.6 + 0.4), s.LrAt(4), 4);
        AssertLr(2.0 * 0.5 * (0.1 * 0.5 + 0.5), s.LrAt(5), 5);
        AssertLr(1.0, s.LrAt(10), 10);

        // no warm-up; a step at 0 applies from the first iteration
        var n = new WarmupMultiStepLr(0.3, 0, 0.001, WarmupMethod.Linear, [0, 3], 0.1);
        AssertLr(0.03, n.LrAt(0), 0);
        AssertLr(0.003, n.LrAt(3), 3);
    }

    [Fact]
    public void ApplySetsTheOptimizerLearningRate()
    {
        using var p = new Parameter("w", Tensor.Zeros([1]));
        var sgd = new Sgd([p], lr: 123);
        var s = new WarmupMultiStepLr(0.02, 100, 0.5, WarmupMethod.Linear, [200], 0.1);
        s.Apply(sgd, 250);
        AssertLr(0.002, sgd.Lr, 250);
    }

    [Fact]
    public void InvalidSchedulesAreRejected()
    {
        Assert.Contains("increasing", Assert.Throws<ArgumentException>(() => new WarmupMultiStepLr(0.1, 0, 1, WarmupMethod.Linear, [5, 5], 0.1)).Message);
        Assert.Contains("increasing", Assert.Throws<ArgumentException>(() => new WarmupMultiStepLr(0.1, 0, 1, WarmupMethod.Linear, [9, 3], 0.1)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new WarmupMultiStepLr(0.1, -1, 1, WarmupMethod.Linear, [], 0.1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WarmupMultiStepLr(0.1, 0, 1, WarmupMethod.Linear, [], 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WarmupMultiStepLr(0.1, 0, 1, WarmupMethod.Linear, [], 0.1).LrAt(-1));
    }
}
