// Recording ops on the tape and running backward. An op records one Node per differentiable output:
//
//   if (Tape.IsNeeded(a, b))
//       Tape.Record(y, "mul", [a, b], node => { var sa = node.Save(a); var sb = node.Save(b);
//                                               return g => [g * sb, g * sa]; });
//
// Gradients returned by a backward closure may have the broadcast (output) shape; the engine sums them
// down to each input's shape, so binary ops need no reduction logic of their own.
namespace Engine.Autograd;

public static class Tape
{
    /// <summary>True when grad mode is on and some input requires grad: the condition for recording an op.</summary>
    public static bool IsNeededFor(params ReadOnlySpan<Tensor> inputs) => IsNeeded(inputs);

    /// <summary>Records an op defined outside Engine.Core (detection ops, long-tail losses) with its hand-written
    /// backward. <paramref name="build"/> runs now: it saves what backward needs through the ISavedTensors it is
    /// given and returns the backward closure, which maps the output gradient to one gradient (or null) per input
    /// and must dispose its own temporaries.</summary>
    public static void RecordCustom(Tensor output, string op, ReadOnlySpan<Tensor> inputs, Func<ISavedTensors, Func<Tensor, Tensor?[]>> build) =>
        Record(output, op, inputs, node => build(node));

    internal static bool IsNeeded(Tensor a) => GradMode.IsEnabled && a.RequiresGrad;
    internal static bool IsNeeded(Tensor a, Tensor b) => GradMode.IsEnabled && (a.RequiresGrad || b.RequiresGrad);

    internal static bool IsNeeded(ReadOnlySpan<Tensor> inputs)
    {
        if (!GradMode.IsEnabled) return false;
        foreach (var t in inputs)
            if (t.RequiresGrad) return true;
        return false;
    }

    /// <summary>Links <paramref name="output"/> to <paramref name="inputs"/> with the backward closure that
    /// <paramref name="build"/> returns (build runs now and may save tensors on the node).</summary>
    internal static void Record(Tensor output, string op, ReadOnlySpan<Tensor> inputs, Func<Node, Func<Tensor, Tensor?[]>> build)
    {
        var edges = new Edge[inputs.Length];
        var shapes = new int[inputs.Length][];
        for (var i = 0; i < inputs.Length; i++)
        {
            var t = inputs[i];
            shapes[i] = t._shape;
            if (t.RequiresGrad) edges[i] = t.GradFn is not null ? new Edge(t.GradFn, null) : new Edge(null, t);
        }
        var node = new Node(op, edges, shapes);
        node.SetBackward(build(node));
        output.GradFn = node;
    }

    internal static void Backward(Tensor root, Tensor? gradient, bool retainGraph)
    {
        if (!root.RequiresGrad)
            throw new InvalidOperationException($"Backward: tensor{ShapeUtil.Format(root.Shape)} does not require grad (no input of it requires grad, or it was computed under NoGrad).");
        if (gradient is null && root.Numel != 1)
            throw new ArgumentException($"Backward: tensor{ShapeUtil.Format(root.Shape)} is not a scalar; pass the gradient of the output explicitly.");
        if (gradient is not null) ShapeUtil.CheckSameShape(root, gradient, "Backward (gradient vs output)");

        using var noGrad = GradMode.NoGrad();
        using var unscoped = DisposeScope.Suspend();
        var seed = gradient is null ? Tensor.Ones(root.ShapeArray(), root.DType, root.Device) : gradient.Clone();

        if (root.GradFn is null)
        {
            AccumulateLeaf(root, seed);
            return;
        }

        var nodes = Reachable(root.GradFn);
        var pending = new Dictionary<Node, Tensor>(ReferenceEqualityComparer.Instance) { [root.GradFn] = seed };
        try
        {
            foreach (var node in nodes)
            {
                if (!pending.Remove(node, out var g)) continue;
                Tensor?[] grads;
                try { grads = node.Apply(g); }
                catch { g.Dispose(); throw; }
                if (grads.Length != node.Edges.Length)
                    throw new InvalidOperationException($"Backward of '{node.Op}' returned {grads.Length} gradients for {node.Edges.Length} inputs.");

                // a tensor returned for several inputs: its later occurrences become aliases before the first is consumed
                // (reduced to its input's shape or accumulated into a leaf, either of which may dispose it)
                for (var i = 1; i < grads.Length; i++)
                    if (grads[i] is { } d && !ReferenceEquals(d, g) && Array.FindIndex(grads, 0, i, x => ReferenceEquals(x, d)) >= 0)
                        grads[i] = d.Alias();
                var owned = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
                for (var i = 0; i < grads.Length; i++)
                {
                    var gi = grads[i];
                    var edge = node.Edges[i];
                    if (gi is null) continue;
                    if (edge.Fn is null && edge.Leaf is null)
                    {
                        if (!ReferenceEquals(gi, g) && owned.Add(gi)) gi.Dispose();
                        continue;
                    }
                    if (ReferenceEquals(gi, g) || !owned.Add(gi)) gi = gi.Alias();
                    gi = ReduceToShape(gi, node.InputShapes[i], node.Op);
                    if (edge.Fn is not null)
                        pending[edge.Fn] = pending.Remove(edge.Fn, out var prev) ? AddOwned(prev, gi) : gi;
                    else
                        AccumulateLeaf(edge.Leaf!, gi);
                }
                g.Dispose();
                if (!retainGraph) node.Release();
            }
        }
        finally
        {
            foreach (var t in pending.Values) t.Dispose();
        }
    }

    /// <summary>Every node reachable from <paramref name="root"/>, outputs before inputs (descending creation order).</summary>
    private static List<Node> Reachable(Node root)
    {
        var seen = new HashSet<Node>(ReferenceEqualityComparer.Instance) { root };
        var stack = new Stack<Node>();
        stack.Push(root);
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            foreach (var e in n.Edges)
                if (e.Fn is not null && seen.Add(e.Fn)) stack.Push(e.Fn);
        }
        var list = seen.ToList();
        list.Sort((a, b) => b.Sequence.CompareTo(a.Sequence));
        return list;
    }

    private static Tensor ReduceToShape(Tensor grad, int[] shape, string op)
    {
        if (grad.Shape.SequenceEqual(shape)) return grad;
        using (grad)
        {
            try { return grad.SumToShape(shape); }
            catch (ArgumentException e)
            {
                throw new InvalidOperationException($"Backward of '{op}' produced a gradient of shape {ShapeUtil.Format(grad.Shape)} for an input of shape {ShapeUtil.Format(shape)}.", e);
            }
        }
    }

    private static Tensor AddOwned(Tensor a, Tensor b)
    {
        var sum = a.Add(b);
        a.Dispose();
        b.Dispose();
        return sum;
    }

    private static void AccumulateLeaf(Tensor leaf, Tensor grad)
    {
        if (leaf.Grad is null)
        {
            // Take the gradient as is when nothing else shares its memory; otherwise copy, because later
            // accumulations write into leaf.Grad in place.
            if (grad.IsContiguous && grad.Storage.RefCount == 1 && grad.Offset == 0) leaf.Grad = grad;
            else
            {
                leaf.Grad = grad.Clone();
                grad.Dispose();
            }
            leaf.Grad.DetachFromScope();
            return;
        }
        leaf.Grad.AddInPlace(grad);
        grad.Dispose();
    }
}
