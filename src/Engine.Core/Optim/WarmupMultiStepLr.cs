// Learning rate as a function of the iteration: detectron2's WarmupMultiStepLR (solver/lr_scheduler.py), the
// schedule of its standard configs. At iteration i (0-based, the iteration about to run):
//   factor = gamma^(number of steps s with s ≤ i)
//   if i < warmupIters: linear:   alpha = i / warmupIters, factor ·= warmupFactor·(1 − alpha) + alpha
//                       constant: factor ·= warmupFactor
//   lr = baseLr · factor
// (detectron2's newer WarmupParamScheduler ramps towards the multi-step value at the end of warm-up; the two agree
// unless a step lies inside the warm-up.)
namespace Engine.Optim;

public interface ILrSchedule
{
    double LrAt(long iteration);
}

public enum WarmupMethod
{
    Linear,
    Constant,
}

public sealed class WarmupMultiStepLr : ILrSchedule
{
    private readonly long[] _steps;

    public WarmupMultiStepLr(double baseLr, long warmupIters, double warmupFactor, WarmupMethod warmupMethod, IReadOnlyList<long> steps, double gamma)
    {
        ArgumentNullException.ThrowIfNull(steps);
        if (!(baseLr >= 0) || double.IsInfinity(baseLr)) throw new ArgumentOutOfRangeException(nameof(baseLr), $"WarmupMultiStepLr: baseLr must be finite and ≥ 0, got {baseLr}.");
        if (warmupIters < 0) throw new ArgumentOutOfRangeException(nameof(warmupIters), $"WarmupMultiStepLr: warmupIters must be ≥ 0, got {warmupIters}.");
        if (!(warmupFactor >= 0) || double.IsInfinity(warmupFactor)) throw new ArgumentOutOfRangeException(nameof(warmupFactor), $"WarmupMultiStepLr: warmupFactor must be finite and ≥ 0, got {warmupFactor}.");
        if (!(gamma > 0) || double.IsInfinity(gamma)) throw new ArgumentOutOfRangeException(nameof(gamma), $"WarmupMultiStepLr: gamma must be finite and > 0, got {gamma}.");
        for (var i = 0; i < steps.Count; i++)
            if (steps[i] < 0 || (i > 0 && steps[i] <= steps[i - 1]))
                throw new ArgumentException($"WarmupMultiStepLr: steps must be non-negative and strictly increasing, got [{string.Join(", ", steps)}].");
        BaseLr = baseLr;
        WarmupIters = warmupIters;
        WarmupFactor = warmupFactor;
        Method = warmupMethod;
        Gamma = gamma;
        _steps = [.. steps];
    }

    public double BaseLr { get; }
    public long WarmupIters { get; }
    public double WarmupFactor { get; }
    public WarmupMethod Method { get; }
    public double Gamma { get; }
    public IReadOnlyList<long> Steps => _steps;

    /// <summary>lr / baseLr at <paramref name="iteration"/>.</summary>
    public double FactorAt(long iteration)
    {
        if (iteration < 0) throw new ArgumentOutOfRangeException(nameof(iteration), $"WarmupMultiStepLr: iteration must be ≥ 0, got {iteration}.");
        var passed = 0;
        while (passed < _steps.Length && _steps[passed] <= iteration) passed++;
        var factor = Math.Pow(Gamma, passed);
        if (iteration < WarmupIters)
        {
            if (Method == WarmupMethod.Constant) factor *= WarmupFactor;
            else
            {
                var alpha = (double)iteration / WarmupIters;
                factor *= WarmupFactor * (1 - alpha) + alpha;
            }
        }
        return factor;
    }

    public double LrAt(long iteration) => BaseLr * FactorAt(iteration);

    /// <summary>Sets <paramref name="optimizer"/>'s base learning rate for <paramref name="iteration"/>.</summary>
    public void Apply(Sgd optimizer, long iteration) => optimizer.Lr = LrAt(iteration);
}
