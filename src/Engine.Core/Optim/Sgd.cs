// Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay, with the
// update of PyTorch's torch.optim.SGD (docs, "Algorithm"), per parameter with gradient g:
//   g ← g + wd·p                                    (weight decay, when wd ≠ 0)
//   b ← g on the first step, else b ← μ·b + (1 − τ)·g   (momentum buffer, when μ ≠ 0; τ = dampening)
//   g ← g + μ·b (Nesterov) or g ← b                  (when μ ≠ 0)
//   p ← p − lr·g
// Parameters without a gradient (frozen, or unused this step) are skipped and keep their buffer.
// Updates run under NoGrad and write in place (the storage version is bumped), so a graph that saved a
// parameter before the step refuses to backward through the stale value.
using Engine.Nn;

namespace Engine.Optim;

public sealed class Sgd : IDisposable
{
    private readonly List<ParamGroup> _groups;
    private readonly Dictionary<Parameter, Tensor> _momentum = new(ReferenceEqualityComparer.Instance);

    public Sgd(IEnumerable<Parameter> parameters, double lr, double momentum = 0, double weightDecay = 0, bool nesterov = false, double dampening = 0)
        : this([new ParamGroup(parameters)], lr, momentum, weightDecay, nesterov, dampening)
    {
    }

    public Sgd(IEnumerable<ParamGroup> groups, double lr, double momentum = 0, double weightDecay = 0, bool nesterov = false, double dampening = 0)
    {
        ArgumentNullException.ThrowIfNull(groups);
        _groups = groups.ToList();
        Check(lr >= 0 && !double.IsInfinity(lr), $"lr must be finite and ≥ 0, got {lr}");
        Check(momentum >= 0 && momentum < double.PositiveInfinity, $"momentum must be finite and ≥ 0, got {momentum}");
        Check(weightDecay >= 0 && !double.IsInfinity(weightDecay), $"weightDecay must be finite and ≥ 0, got {weightDecay}");
        Check(dampening >= 0 && dampening <= 1, $"dampening must be in [0, 1], got {dampening}");
        Check(!nesterov || (momentum > 0 && dampening == 0), "Nesterov momentum needs momentum > 0 and dampening = 0");
        var seen = new HashSet<Parameter>(ReferenceEqualityComparer.Instance);
        foreach (var g in _groups)
            foreach (var p in g.Parameters)
                Check(seen.Add(p), $"parameter '{p.Name}' {ShapeUtil.Format(p.Shape)} appears in more than one group (or twice in one)");
        Lr = lr;
        Momentum = momentum;
        WeightDecay = weightDecay;
        Nesterov = nesterov;
        Dampening = dampening;
    }

    private static void Check(bool ok, string message)
    {
        if (!ok) throw new ArgumentException($"Sgd: {message}.");
    }

    /// <summary>Base learning rate; a learning-rate schedule sets it before each step. Each group uses Lr × its multiplier.</summary>
    public double Lr { get; set; }

    public double Momentum { get; }
    public double WeightDecay { get; }
    public bool Nesterov { get; }
    public double Dampening { get; }
    public IReadOnlyList<ParamGroup> Groups => _groups;

    /// <summary>Drops every parameter's gradient (the next backward starts from zero).</summary>
    public void ZeroGrad()
    {
        foreach (var g in _groups)
            foreach (var p in g.Parameters)
                p.Value.ZeroGrad();
    }

    public void Step()
    {
        using var noGrad = GradMode.NoGrad();
        using var unscoped = DisposeScope.Suspend();
        foreach (var group in _groups)
        {
            var lr = Lr * group.LrMultiplier;
            var wd = group.WeightDecay ?? WeightDecay;
            foreach (var p in group.Parameters)
            {
                if (p.Grad is not { } grad || p.Frozen) continue;
                var value = p.Value;
                if (grad.Device != value.Device || !grad.Shape.SequenceEqual(value.Shape))
                    throw new InvalidOperationException($"Sgd.Step: parameter '{p.Name}' {ShapeUtil.Format(value.Shape)} on {value.Device} has a gradient {ShapeUtil.Format(grad.Shape)} on {grad.Device}.");
                using var d = wd != 0 ? AddScaled(grad, value, wd) : grad.Alias();
                Tensor step = d;
                if (Momentum != 0)
                {
                    if (_momentum.TryGetValue(p, out var buf))
                    {
                        if (buf.Device != value.Device)
                            throw new InvalidOperationException($"Sgd.Step: the momentum buffer of '{p.Name}' is on {buf.Device} but the parameter is on {value.Device}; create the optimizer after Module.To(device).");
                        buf.MulInPlace(Momentum).AddInPlace(d, 1 - Dampening);
                    }
                    else _momentum[p] = buf = d.Clone();
                    step = Nesterov ? AddScaled(d, buf, Momentum) : buf.Alias();
                }
                using (step == d ? null : step)
                    value.AddInPlace(step, -lr);
            }
        }
    }

    /// <summary>a + alpha·b as a new tensor.</summary>
    private static Tensor AddScaled(Tensor a, Tensor b, double alpha)
    {
        using var scaled = b.Mul(alpha);
        return a.Add(scaled);
    }

    /// <summary>The momentum buffers, keyed "{group}.{index}.momentum_buffer" by position in Groups (as PyTorch keys its
    /// optimizer state), as aliases of the live buffers. Resuming needs the same groups in the same order.</summary>
    public StateDict StateDict()
    {
        var dict = new StateDict();
        using (DisposeScope.Suspend())
            for (var gi = 0; gi < _groups.Count; gi++)
                for (var pi = 0; pi < _groups[gi].Parameters.Count; pi++)
                    if (_momentum.TryGetValue(_groups[gi].Parameters[pi], out var buf))
                        dict.Add(Key(gi, pi), buf.Alias());
        return dict;
    }

    /// <summary>Replaces the momentum buffers with copies of <paramref name="state"/>'s (a parameter without an entry has
    /// none yet, as after construction). Every key and shape is checked before anything changes.</summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var incoming = new Dictionary<Parameter, Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var (key, t) in state)
        {
            var parts = key.Split('.');
            if (parts.Length != 3 || parts[2] != "momentum_buffer" || !int.TryParse(parts[0], out var gi) || !int.TryParse(parts[1], out var pi))
                throw new InvalidOperationException($"Sgd.LoadStateDict: unexpected key '{key}'; keys look like '0.3.momentum_buffer'.");
            if (gi < 0 || gi >= _groups.Count || pi < 0 || pi >= _groups[gi].Parameters.Count)
                throw new InvalidOperationException($"Sgd.LoadStateDict: key '{key}' refers to a parameter this optimizer does not have " +
                                                    $"({_groups.Count} groups of sizes {string.Join(", ", _groups.Select(g => g.Parameters.Count))}); build the groups as when the state was saved.");
            var p = _groups[gi].Parameters[pi];
            if (!t.Shape.SequenceEqual(p.Shape) || t.DType != p.Value.DType)
                throw new InvalidOperationException($"Sgd.LoadStateDict: '{key}' has {t.DType.Name()} {ShapeUtil.Format(t.Shape)} but parameter '{p.Name}' is {p.Value.DType.Name()} {ShapeUtil.Format(p.Shape)}.");
            incoming[p] = t;
        }
        var copies = new Dictionary<Parameter, Tensor>(ReferenceEqualityComparer.Instance);
        using (GradMode.NoGrad())
        using (DisposeScope.Suspend())
            foreach (var (p, t) in incoming)
                copies[p] = t.Device == p.Value.Device ? t.Clone() : t.To(p.Value.Device);
        foreach (var b in _momentum.Values) b.Dispose();
        _momentum.Clear();
        foreach (var (p, b) in copies) _momentum[p] = b;
    }

    private static string Key(int group, int index) => $"{group}.{index}.momentum_buffer";

    /// <summary>Frees the momentum buffers (the parameters belong to their module).</summary>
    public void Dispose()
    {
        foreach (var b in _momentum.Values) b.Dispose();
        _momentum.Clear();
    }
}
