// Parameter groups: parameters that share a learning-rate multiplier and a weight decay. Build() makes
// detectron2's default groups (solver/build.py, get_default_optimizer_params): parameters of
// normalization layers can get their own weight decay (SOLVER.WEIGHT_DECAY_NORM), biases their own
// weight decay and learning-rate factor (SOLVER.WEIGHT_DECAY_BIAS, SOLVER.BIAS_LR_FACTOR), and groups with
// equal settings are merged.
using Engine.Nn;

namespace Engine.Optim;

public sealed class ParamGroup
{
    /// <param name="lrMultiplier">the group's learning rate is the optimizer's Lr times this.</param>
    /// <param name="weightDecay">null: the optimizer's weight decay.</param>
    public ParamGroup(IEnumerable<Parameter> parameters, double lrMultiplier = 1, double? weightDecay = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Parameters = parameters.ToList();
        if (!(lrMultiplier >= 0) || double.IsInfinity(lrMultiplier))
            throw new ArgumentOutOfRangeException(nameof(lrMultiplier), $"ParamGroup: lrMultiplier must be finite and ≥ 0, got {lrMultiplier}.");
        if (weightDecay is { } wd && (!(wd >= 0) || double.IsInfinity(wd)))
            throw new ArgumentOutOfRangeException(nameof(weightDecay), $"ParamGroup: weightDecay must be finite and ≥ 0, got {wd}.");
        LrMultiplier = lrMultiplier;
        WeightDecay = weightDecay;
    }

    public IReadOnlyList<Parameter> Parameters { get; }
    public double LrMultiplier { get; }
    public double? WeightDecay { get; }
}

public static class ParamGroups
{
    /// <summary>Groups the trainable parameters of <paramref name="model"/>: weight decay <paramref name="weightDecay"/>,
    /// except parameters of INormLayer modules (<paramref name="weightDecayNorm"/> when given) and parameters named
    /// "bias" (<paramref name="weightDecayBias"/> when given, learning rate × <paramref name="biasLrFactor"/>). The bias
    /// rule wins for a norm layer's bias, as in detectron2. Groups are ordered by first appearance.</summary>
    public static IReadOnlyList<ParamGroup> Build(Module model, double weightDecay, double? weightDecayNorm = null,
                                                  double? weightDecayBias = null, double biasLrFactor = 1)
    {
        ArgumentNullException.ThrowIfNull(model);
        var groups = new List<(double Lr, double Wd, List<Parameter> Params)>();
        var seen = new HashSet<Parameter>(ReferenceEqualityComparer.Instance);
        foreach (var (_, module) in model.NamedModules())
            foreach (var p in module.LocalParameters)
            {
                if (p.Frozen || !seen.Add(p)) continue;
                double lr = 1, wd = weightDecay;
                if (module is INormLayer && weightDecayNorm is { } wn) wd = wn;
                if (p.Name == "bias")
                {
                    lr = biasLrFactor;
                    if (weightDecayBias is { } wb) wd = wb;
                }
                var i = groups.FindIndex(g => g.Lr == lr && g.Wd == wd);
                if (i < 0) groups.Add((lr, wd, [p]));
                else groups[i].Params.Add(p);
            }
        return groups.Select(g => new ParamGroup(g.Params, g.Lr, g.Wd)).ToList();
    }
}
