// The optimizer, schedule and seed of a run from the SOLVER and SEED sections, resolved once here so the
// trainer itself takes explicit objects: SGD over detectron2's default parameter groups (norm-layer and
// bias weight decay, bias learning-rate factor) and WarmupMultiStepLR.
using Engine.Config;
using Engine.Nn;
using Engine.Optim;

namespace Engine.Training;

public static class SolverSetup
{
    public static Sgd BuildOptimizer(Module model, SolverConfig solver)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(solver);
        var groups = ParamGroups.Build(model, solver.WeightDecay, solver.WeightDecayNorm, solver.WeightDecayBias, solver.BiasLrFactor);
        if (groups.Count == 0)
            throw new InvalidOperationException($"SolverSetup: {model.GetType().Name} has no trainable parameters (all frozen?); nothing to optimize.");
        return new Sgd(groups, solver.BaseLr, solver.Momentum, solver.WeightDecay, solver.Nesterov);
    }

    public static WarmupMultiStepLr BuildSchedule(SolverConfig solver)
    {
        ArgumentNullException.ThrowIfNull(solver);
        var method = solver.WarmupMethod switch
        {
            Engine.Config.WarmupMethod.Linear => Engine.Optim.WarmupMethod.Linear,
            Engine.Config.WarmupMethod.Constant => Engine.Optim.WarmupMethod.Constant,
            _ => throw new ArgumentException($"SolverSetup: unknown SOLVER.WARMUP_METHOD {solver.WarmupMethod}."),
        };
        return new WarmupMultiStepLr(solver.BaseLr, solver.WarmupIters, solver.WarmupFactor, method, solver.Steps.Select(s => (long)s).ToList(), solver.Gamma);
    }

    /// <summary>SEED ≥ 0 is used as given; a negative SEED (detectron2's "random") draws one from the OS, and the
    /// returned config records it, so config.yaml of the run reproduces it.</summary>
    public static EngineConfig ResolveSeed(EngineConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config.Seed >= 0 ? config : config with { Seed = System.Security.Cryptography.RandomNumberGenerator.GetInt32(int.MaxValue) };
    }
}
