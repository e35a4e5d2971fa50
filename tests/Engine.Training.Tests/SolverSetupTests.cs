// The optimizer and schedule built from SOLVER, the seed resolution, and gradient clipping in the loop.
using Engine.Config;
using Engine.Nn;
using Engine.Optim;

namespace Engine.Training.Tests;

public sealed class SolverSetupTests
{
    [Fact]
    public void ScheduleAndOptimizerFollowSolverConfig()
    {
        var solver = new SolverConfig { BaseLr = 0.4, WarmupIters = 10, WarmupFactor = 0.25, WarmupMethod = Engine.Config.WarmupMethod.Constant, Steps = [20, 30], Gamma = 0.5, MaxIter = 40, BiasLrFactor = 2, Momentum = 0.8 };
        var schedule = SolverSetup.BuildSchedule(solver);
        Assert.Equal(0.4 * 0.25, schedule.LrAt(9));
        Assert.Equal(0.4, schedule.LrAt(10));
        Assert.Equal(0.2, schedule.LrAt(20));
        Assert.Equal(0.1, schedule.LrAt(35));
        using var net = new ToyNet(new Generator(1));
        using var sgd = SolverSetup.BuildOptimizer(net, solver);
        Assert.Equal(0.8, sgd.Momentum);
        var biasGroup = Assert.Single(sgd.Groups, g => g.Parameters.All(p => p.Name == "bias"));
        Assert.Equal(2, biasGroup.LrMultiplier);
        Assert.Equal(4, sgd.Groups.Sum(g => g.Parameters.Count));
    }

    [Fact]
    public void NegativeSeedIsDrawnAndRecorded()
    {
        var config = SolverSetup.ResolveSeed(new EngineConfig { Seed = -1 });
        Assert.True(config.Seed >= 0);
        Assert.Contains($"SEED: {config.Seed}", config.ToYaml());
        Assert.Equal(17, SolverSetup.ResolveSeed(new EngineConfig { Seed = 17 }).Seed);
    }

    /// <summary>One parameter w (3 elements) with loss Σ c_i·w_i: the gradient is c, so the step shows the clipped gradient.</summary>
    private sealed class Linear3 : ITrainable<int>
    {
        private sealed class M : Module
        {
            public M() => W = RegisterParameter("w", Tensor.Zeros([3]));
            public Parameter W { get; }
        }

        private readonly M _m = new();
        public Module Module => _m;
        public Parameter W => _m.W;

        public IReadOnlyDictionary<string, Tensor> Losses(int batch)
        {
            using var c = Tensor.From([3f, -4f, 0.5f], 3);
            return new Dictionary<string, Tensor> { ["loss"] = _m.W.Value.Mul(c).Sum() };
        }
    }

    private sealed class Zeros : IBatchSource<int>
    {
        public long Position { get; private set; }
        public int Next() => (int)Position++;
        public void Dispose() { }
    }

    [Theory]
    [InlineData(ClipType.Value, 1.0, new[] { 1.0, -1.0, 0.5 })]
    [InlineData(ClipType.Norm, 2.5, new double[0])]                   // ‖(3, −4, 0.5)‖ > 2.5: scaled by 2.5 / (‖g‖ + 1e-6), computed below
    [InlineData(ClipType.FullModel, 100.0, new[] { 3.0, -4.0, 0.5 })] // under the limit: unchanged
    public void GradientClippingIsApplied(ClipType type, double value, double[] expectedGradient)
    {
        var m = new Linear3();
        using var _ = m.Module;
        using var sgd = new Sgd([m.W], lr: 1);
        var options = new TrainerOptions
        {
            OutputDir = Toy.TempDir(), MaxIter = 1, WriteReport = false,
            ClipGradients = new ClipGradientsConfig { Enabled = true, ClipType = type, ClipValue = value, NormType = 2 },
        };
        new Trainer<int>(m, sgd, new WarmupMultiStepLr(1, 0, 1, Engine.Optim.WarmupMethod.Linear, [], 1), _ => new Zeros(), options).Run();
        var w = m.W.Value.ToFloatArray();
        var norm = Math.Sqrt(9 + 16 + 0.25);
        for (var i = 0; i < 3; i++)
        {
            var expected = type == ClipType.Norm ? -new[] { 3.0, -4.0, 0.5 }[i] * value / (norm + 1e-6) : -expectedGradient[i];
            // One float32 rounding of the gradient and one of the update: 1e-6 relative.
            Assert.True(Math.Abs(w[i] - expected) <= 1e-6 * Math.Abs(expected) + 1e-7, $"{type}: w[{i}] = {w[i]}, expected {expected}");
        }
    }
}
