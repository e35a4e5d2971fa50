// The shared half of every classification loss: argument checks with messages that name the loss, the
// shapes and the fix; the labels read to the host once per call (every method needs them there: class
// histograms, sampling, group membership); the 1/N normalizer; and the named state tensors with their
// checkpoint round trip.
using Engine.Nn;

namespace Engine.LongTail;

public abstract class ClassificationLoss : IClassificationLoss
{
    private readonly List<(string Name, Tensor Value)> _state = [];
    private bool _disposed;

    protected ClassificationLoss(int numClasses, int logitCount)
    {
        if (numClasses < 1) throw new ArgumentException($"{GetType().Name}: the number of foreground classes must be ≥ 1, got {numClasses}.");
        (NumClasses, LogitCount) = (numClasses, logitCount);
    }

    public int NumClasses { get; }
    public int LogitCount { get; }

    public Tensor Loss(Tensor logits, Tensor labels, LossContext? context = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var host = CheckLossInputs(logits, labels, null);
        return ComputeLoss(logits, labels, host, context ?? LossContext.Training);
    }

    /// <summary>The loss where the caller has read the labels to the host already: <paramref name="hostLabels"/> holds the
    /// values of <paramref name="labels"/> (checked like them), so they are not read again (on a GPU, one wait fewer).</summary>
    public Tensor Loss(Tensor logits, Tensor labels, long[] hostLabels, LossContext? context = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(hostLabels);
        var host = CheckLossInputs(logits, labels, hostLabels);
        return ComputeLoss(logits, labels, host, context ?? LossContext.Training);
    }

    public Tensor Scores(Tensor logits)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckLogits(logits, "Scores");
        using (GradMode.NoGrad()) return ComputeScores(logits);
    }

    /// <param name="labels">labels on the host, checked to lie in [0, C].</param>
    protected abstract Tensor ComputeLoss(Tensor logits, Tensor labels, long[] hostLabels, LossContext context);

    protected abstract Tensor ComputeScores(Tensor logits);

    /// <summary>1/N with N the number of sampled RoIs (section 0.2); 1 for an empty batch (whose loss is 0).</summary>
    protected static double Normalizer(long rows) => 1.0 / Math.Max(rows, 1);

    // ---- state ----

    /// <summary>Registers a persistent state tensor (ownership passes to this loss) and returns it.</summary>
    protected Tensor AddState(string name, Tensor value)
    {
        if (_state.Any(s => s.Name == name)) throw new ArgumentException($"{GetType().Name}: state '{name}' registered twice.");
        value.DetachFromScope();
        _state.Add((name, value));
        return value;
    }

    /// <summary><paramref name="state"/> (a tensor AddState returned) on <paramref name="device"/>: moved there the first
    /// time the loss runs on another device (the registered entry is replaced, the old tensor freed), so state the loss
    /// updates every call stays beside the logits instead of crossing to them and back each time. Keep the returned tensor.</summary>
    protected Tensor StateOn(Tensor state, Device device)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Device == device) return state;
        var i = _state.FindIndex(s => ReferenceEquals(s.Value, state));
        if (i < 0) throw new ArgumentException($"{GetType().Name}.StateOn: the tensor is not registered state; pass one AddState returned.");
        Tensor moved;
        using (GradMode.NoGrad())
        using (DisposeScope.Suspend())
            moved = state.To(device);
        _state[i] = (_state[i].Name, moved);
        state.Dispose();
        return moved;
    }

    /// <summary>Called before StateDict copies the state, so that state kept outside tensors (a generator) can be written into them.</summary>
    protected virtual void BeforeSave() { }

    /// <summary>Called after LoadStateDict wrote the state tensors, to rebuild what derives from them.</summary>
    protected virtual void AfterLoad() { }

    public StateDict StateDict()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        BeforeSave();
        var dict = new StateDict();
        using (GradMode.NoGrad())
        using (DisposeScope.Suspend())
            foreach (var (name, value) in _state) dict.Add(name, value.Clone());
        return dict;
    }

    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(state);
        var errors = StateCheck.Problems(state, StateCheck.Of(_state));
        if (errors.Count > 0)
            throw new InvalidOperationException($"{GetType().Name}.LoadStateDict: nothing was loaded: {string.Join("; ", errors)}. " +
                                                "Load a state saved by the same loss with the same number of classes.");
        StateCheck.CopyInto(state, _state);
        AfterLoad();
    }

    // ---- checks ----

    private long[] CheckLossInputs(Tensor logits, Tensor labels, long[]? hostLabels)
    {
        CheckLogits(logits, "Loss");
        var name = GetType().Name;
        if (labels.DType != DType.Int64 || labels.Rank != 1 || labels.Size(0) != logits.Size(0))
            throw new ArgumentException($"{name}.Loss: labels must be int64 [{logits.Size(0)}] (one per RoI), got {labels.DType.Name()} {ShapeUtil.Format(labels.Shape)}.");
        if (labels.Device != logits.Device)
            throw new ArgumentException($"{name}.Loss: labels are on {labels.Device}, logits on {logits.Device}; move one with To(device).");
        if (hostLabels is not null && hostLabels.Length != labels.Size(0))
            throw new ArgumentException($"{name}.Loss: {hostLabels.Length} host labels were given for labels {ShapeUtil.Format(labels.Shape)}; pass the same values.");
        var host = hostLabels ?? labels.ToArray<long>();
        for (var i = 0; i < host.Length; i++)
            if (host[i] < 0 || host[i] > NumClasses)
                throw new ArgumentException($"{name}.Loss: label {host[i]} of RoI {i} is outside [0, {NumClasses}] " +
                                            $"(foreground 0..{NumClasses - 1}, background = {NumClasses}); map ignored RoIs out before the loss.");
        return host;
    }

    private void CheckLogits(Tensor logits, string call)
    {
        if (logits.DType != DType.Float32 || logits.Rank != 2 || logits.Size(1) != LogitCount)
            throw new ArgumentException($"{GetType().Name}.{call}: logits must be float32 [N, {LogitCount}] (C = {NumClasses}), got " +
                                        $"{logits.DType.Name()} {ShapeUtil.Format(logits.Shape)}; the classifier must have {LogitCount} outputs for this loss.");
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var (_, value) in _state) value.Dispose();
        DisposeOwned();
        GC.SuppressFinalize(this);
    }

    /// <summary>Disposes what a loss owns besides its state tensors.</summary>
    protected virtual void DisposeOwned() { }
}
