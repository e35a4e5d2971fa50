// Reductions over dims (sum, mean, max, min, argmax, argmin) with keepdim, and their gradients.
// The backend reduces a contiguous (outer, n, inner) view; dims that are not adjacent are first permuted
// to the end.
namespace Engine;

public sealed partial class Tensor
{
    /// <summary>Sum over <paramref name="dims"/> (all dims when empty).</summary>
    public Tensor Sum(int[]? dims = null, bool keepDim = false) => SumCore(dims, keepDim, mean: false);

    public Tensor Sum(int dim, bool keepDim = false) => SumCore([dim], keepDim, mean: false);

    public Tensor Mean(int[]? dims = null, bool keepDim = false) => SumCore(dims, keepDim, mean: true);

    public Tensor Mean(int dim, bool keepDim = false) => SumCore([dim], keepDim, mean: true);

    private Tensor SumCore(int[]? dims, bool keepDim, bool mean)
    {
        var name = mean ? "mean" : "sum";
        if (DType != DType.Float32) throw new ArgumentException($"{name}: needs float32, got {DType.Name()}; convert with To(DType.Float32).");
        var reduced = ReducedDims(dims, name);
        long count = 1;
        foreach (var d in reduced) count *= _shape[d];
        var y = ReduceRaw(ReduceOp.Sum, reduced, keepDim, null);
        if (mean)
        {
            if (count == 0) y.Fill(double.NaN);
            else y.MulInPlaceRaw(1.0 / count);
        }
        if (Autograd.Tape.IsNeeded(this))
        {
            var inputShape = _shape;
            var keptShape = KeptShape(reduced);
            Autograd.Tape.Record(y, name, [this], _ => g =>
            {
                using var gk = g.Reshape(keptShape);
                using var scaled = mean ? gk.Mul(1.0 / Math.Max(count, 1)) : gk.Alias();
                using var e = scaled.BroadcastView(inputShape, name);
                return [e.Clone()];
            });
        }
        return y;
    }

    /// <summary>Max over dim: values and int64 indices (first occurrence). Values are differentiable.</summary>
    public (Tensor Values, Tensor Indices) Max(int dim, bool keepDim = false) => Extreme(ReduceOp.Max, dim, keepDim, "max");

    public (Tensor Values, Tensor Indices) Min(int dim, bool keepDim = false) => Extreme(ReduceOp.Min, dim, keepDim, "min");

    /// <summary>Max of all elements.</summary>
    public Tensor Max()
    {
        using var flat = Reshape(-1);
        var (v, i) = flat.Max(0);
        i.Dispose();
        return v;
    }

    public Tensor Min()
    {
        using var flat = Reshape(-1);
        var (v, i) = flat.Min(0);
        i.Dispose();
        return v;
    }

    public Tensor ArgMax(int dim, bool keepDim = false)
    {
        using (GradMode.NoGrad())
        {
            var (v, i) = Extreme(ReduceOp.Max, dim, keepDim, "argmax");
            v.Dispose();
            return i;
        }
    }

    public Tensor ArgMin(int dim, bool keepDim = false)
    {
        using (GradMode.NoGrad())
        {
            var (v, i) = Extreme(ReduceOp.Min, dim, keepDim, "argmin");
            v.Dispose();
            return i;
        }
    }

    private (Tensor, Tensor) Extreme(ReduceOp op, int dim, bool keepDim, string name)
    {
        if (DType != DType.Float32) throw new ArgumentException($"{name}: needs float32, got {DType.Name()}.");
        var d = ShapeUtil.NormalizeDim(dim, Rank, name);
        if (_shape[d] == 0) throw new ArgumentException($"{name}: cannot reduce over dim {dim} of size 0 (shape {ShapeUtil.Format(_shape)}).");
        var indices = Empty(KeptOrDropped([d], keepDim), DType.Int64, Device);
        var values = ReduceRaw(op, [d], keepDim, indices);
        if (Autograd.Tape.IsNeeded(this))
        {
            var inputShape = _shape;
            var kept = KeptShape([d]);
            Autograd.Tape.Record(values, name, [this], node =>
            {
                var si = node.Save(indices);
                return g =>
                {
                    // one-hot of the selected index along d, times the gradient
                    using var ik = si.Reshape(kept);
                    using var gk = g.Reshape(kept);
                    var iotaShape = Enumerable.Repeat(1, inputShape.Length).ToArray();
                    iotaShape[d] = inputShape[d];
                    using var iota0 = Arange(inputShape[d], DType.Int64, g.Device);
                    using var iota = iota0.Reshape(iotaShape);
                    using var hit = iota.Eq(ik);
                    using var zero = g.ScalarLike(0);
                    using var ge = gk.BroadcastView(inputShape, name);
                    return [Where(hit, ge, zero)];
                };
            });
        }
        return (values, indices);
    }

    /// <summary>Sums a broadcast-shaped tensor down to <paramref name="shape"/> (the adjoint of broadcasting).</summary>
    public Tensor SumToShape(ReadOnlySpan<int> shape)
    {
        if (_shape.AsSpan().SequenceEqual(shape)) return Alias().Registered();
        var lead = Rank - shape.Length;
        if (lead < 0) throw new ArgumentException($"SumToShape: {ShapeUtil.Format(_shape)} has fewer dims than {ShapeUtil.Format(shape)}.");
        var dims = new List<int>();
        for (var i = 0; i < Rank; i++)
        {
            if (i < lead) { dims.Add(i); continue; }
            if (shape[i - lead] == _shape[i]) continue;
            if (shape[i - lead] != 1)
                throw new ArgumentException($"SumToShape: {ShapeUtil.Format(_shape)} does not broadcast from {ShapeUtil.Format(shape)}.");
            dims.Add(i);
        }
        using var s = Sum([.. dims], keepDim: true);
        return s.Reshape(shape.ToArray());
    }

    private int[] ReducedDims(int[]? dims, string op)
    {
        if (dims is null || dims.Length == 0) return Enumerable.Range(0, Rank).ToArray();
        var set = new SortedSet<int>();
        foreach (var d in dims)
            if (!set.Add(ShapeUtil.NormalizeDim(d, Rank, op))) throw new ArgumentException($"{op}: dim {d} repeated.");
        return [.. set];
    }

    private int[] KeptShape(int[] reduced)
    {
        var s = (int[])_shape.Clone();
        foreach (var d in reduced) s[d] = 1;
        return s;
    }

    private int[] KeptOrDropped(int[] reduced, bool keepDim) =>
        keepDim ? KeptShape(reduced) : _shape.Where((_, i) => !reduced.Contains(i)).ToArray();

    /// <summary>Reduction without autograd: permutes the reduced dims to a contiguous block if needed.</summary>
    private Tensor ReduceRaw(ReduceOp op, int[] reduced, bool keepDim, Tensor? indices)
    {
        var outShape = KeptOrDropped(reduced, keepDim);
        var values = Empty(outShape, DType.Float32, Device);
        long count = 1;
        foreach (var d in reduced) count *= _shape[d];
        if (values.Numel == 0) return values;
        if (count == 0) { values.Fill(0); return values; }
        if (Rank == 0)
        {
            Backend.Copy(this, values);
            indices?.Fill(0);
            return values;
        }

        var adjacent = reduced[^1] - reduced[0] == reduced.Length - 1;
        Tensor src;
        long outer = 1, inner = 1;
        using (GradMode.NoGrad())
        using (DisposeScope.Suspend())
        {
            if (adjacent)
            {
                src = IsContiguous ? Alias() : Contiguous();
                for (var i = 0; i < reduced[0]; i++) outer *= _shape[i];
                for (var i = reduced[^1] + 1; i < Rank; i++) inner *= _shape[i];
            }
            else
            {
                var perm = Enumerable.Range(0, Rank).Where(i => !reduced.Contains(i)).Concat(reduced).ToArray();
                using var p = Permute(perm);
                src = p.Contiguous();
                outer = values.Numel;
            }
        }
        using (src) Backend.Reduce(op, src, outer, count, inner, values, indices);
        return values;
    }

    internal void MulInPlaceRaw(double v)
    {
        using var s = ScalarLike(v);
        using var eb = s.BroadcastView(_shape, "scale");
        Backend.Binary(BinaryOp.Mul, this, eb, this);
    }
}
