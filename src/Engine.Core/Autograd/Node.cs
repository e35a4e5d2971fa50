// One recorded op of the dynamic tape: where its inputs' gradients go (edges) and how to compute them
// from the output gradient (a closure over tensors saved at forward time). Saved tensors are private
// aliases, so the caller may dispose the forward tensors; an in-place write to a saved tensor before
// backward is detected through the storage version.
namespace Engine.Autograd;

/// <summary>Where the gradient of one input goes: the node that produced it, or a leaf to accumulate into.</summary>
internal readonly record struct Edge(Node? Fn, Tensor? Leaf);

/// <summary>What a backward closure may keep from the forward pass: private aliases of tensors, checked for
/// in-place modification before backward runs.</summary>
public interface ISavedTensors
{
    /// <summary>Keeps <paramref name="t"/> for backward; use the returned alias in the closure.</summary>
    Tensor Save(Tensor t);
}

internal sealed class Node : ISavedTensors
{
    private static long _nextSequence;
    private Func<Tensor, Tensor?[]>? _backward;
    private List<(Tensor Alias, long Version)>? _saved;

    public Node(string op, Edge[] edges, int[][] inputShapes)
    {
        Op = op;
        Edges = edges;
        InputShapes = inputShapes;
        Sequence = Interlocked.Increment(ref _nextSequence);
    }

    public string Op { get; }
    public Edge[] Edges { get; }
    public int[][] InputShapes { get; }

    /// <summary>Creation order; a node is always created after the nodes of its inputs.</summary>
    public long Sequence { get; }

    public bool IsReleased => _backward is null;

    internal void SetBackward(Func<Tensor, Tensor?[]> backward) => _backward = backward;

    public Tensor Save(Tensor t)
    {
        var alias = t.Alias();
        (_saved ??= []).Add((alias, t.Storage.Version));
        return alias;
    }

    public Tensor?[] Apply(Tensor gradOutput)
    {
        if (_backward is null)
            throw new InvalidOperationException(
                $"Backward through '{Op}' a second time: its saved tensors were freed by the first Backward(). Pass retainGraph: true to the first call.");
        if (_saved is not null)
            foreach (var (alias, version) in _saved)
                if (alias.Storage.Version != version)
                    throw new InvalidOperationException(
                        $"A tensor{ShapeUtil.Format(alias.Shape)} saved by '{Op}' for backward was modified in place after the forward pass; " +
                        "clone it before modifying, or modify a copy.");
        return _backward(gradOutput);
    }

    public void Release()
    {
        _backward = null;
        if (_saved is null) return;
        foreach (var (alias, _) in _saved) alias.Dispose();
        _saved = null;
    }
}
