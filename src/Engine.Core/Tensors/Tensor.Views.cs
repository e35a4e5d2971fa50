// Views: tensors that share storage with their source and differ in shape, strides and offset
// (reshape, permute, slice, select, unsqueeze, expand). All are differentiable; a view's backward maps the
// gradient back onto the source's shape.
namespace Engine;

public sealed partial class Tensor
{
    private Tensor MakeView(int[] shape, long[] strides, long offset, string op, Func<Tensor, Tensor> backward)
    {
        var v = new Tensor(Storage, shape, strides, offset, DType, addRef: true);
        if (Autograd.Tape.IsNeeded(this)) Autograd.Tape.Record(v, op, [this], _ => g => [backward(g)]);
        return v;
    }

    /// <summary>Same elements in a new shape (one dim may be -1). A view when the layout allows, else a copy.</summary>
    public Tensor Reshape(params int[] shape)
    {
        var target = ShapeUtil.InferShape(shape, Numel, "Reshape");
        var strides = ViewStrides(target);
        var inputShape = _shape;
        if (strides is not null) return MakeView(target, strides, Offset, "reshape", g => g.Reshape(inputShape));
        using var c = Contiguous();
        return c.Reshape(target);
    }

    /// <summary>Like Reshape but never copies: throws when the layout does not allow a view.</summary>
    public Tensor View(params int[] shape)
    {
        var target = ShapeUtil.InferShape(shape, Numel, "View");
        var strides = ViewStrides(target) ?? throw new InvalidOperationException(
            $"View: tensor{ShapeUtil.Format(_shape)} with strides [{string.Join(", ", _strides)}] cannot be viewed as {ShapeUtil.Format(target)}; use Reshape (copies) or Contiguous() first.");
        var inputShape = _shape;
        return MakeView(target, strides, Offset, "view", g => g.Reshape(inputShape));
    }

    /// <summary>Strides that present this tensor's elements in row-major order with <paramref name="target"/> shape, or null.</summary>
    private long[]? ViewStrides(int[] target)
    {
        if (IsContiguous) return ShapeUtil.ContiguousStrides(target);
        // Split/merge groups of dims that are contiguous among themselves (PyTorch's computeStride rule).
        var result = new long[target.Length];
        var viewD = target.Length - 1;
        long chunkBase = _strides.Length > 0 ? _strides[^1] : 1;
        long tensorNumel = 1, viewNumel = 1;
        for (var d = _shape.Length - 1; d >= 0; d--)
        {
            tensorNumel *= _shape[d];
            if (d == 0 || (_shape[d - 1] != 1 && _strides[d - 1] != tensorNumel * chunkBase))
            {
                while (viewD >= 0 && (viewNumel < tensorNumel || target[viewD] == 1))
                {
                    result[viewD] = viewNumel * chunkBase;
                    viewNumel *= target[viewD];
                    viewD--;
                }
                if (viewNumel != tensorNumel) return null;
                if (d > 0)
                {
                    chunkBase = _strides[d - 1];
                    tensorNumel = 1;
                    viewNumel = 1;
                }
            }
        }
        return viewD == -1 ? result : null;
    }

    public Tensor Flatten(int startDim = 0, int endDim = -1)
    {
        if (Rank == 0) return Reshape(1);
        var s = ShapeUtil.NormalizeDim(startDim, Rank, "Flatten");
        var e = ShapeUtil.NormalizeDim(endDim, Rank, "Flatten");
        var shape = new List<int>();
        for (var i = 0; i < s; i++) shape.Add(_shape[i]);
        var merged = 1;
        for (var i = s; i <= e; i++) merged *= _shape[i];
        shape.Add(merged);
        for (var i = e + 1; i < Rank; i++) shape.Add(_shape[i]);
        return Reshape([.. shape]);
    }

    public Tensor Permute(params int[] dims)
    {
        if (dims.Length != Rank)
            throw new ArgumentException($"Permute: {dims.Length} dims given for a tensor of rank {Rank} (shape {ShapeUtil.Format(_shape)}).");
        var seen = new bool[Rank];
        var shape = new int[Rank];
        var strides = new long[Rank];
        var inverse = new int[Rank];
        for (var i = 0; i < Rank; i++)
        {
            var d = ShapeUtil.NormalizeDim(dims[i], Rank, "Permute");
            if (seen[d]) throw new ArgumentException($"Permute: dim {d} repeated in [{string.Join(", ", dims)}].");
            seen[d] = true;
            shape[i] = _shape[d];
            strides[i] = _strides[d];
            inverse[d] = i;
        }
        return MakeView(shape, strides, Offset, "permute", g => g.Permute(inverse));
    }

    public Tensor Transpose(int dim0, int dim1)
    {
        var perm = Enumerable.Range(0, Rank).ToArray();
        var a = ShapeUtil.NormalizeDim(dim0, Rank, "Transpose");
        var b = ShapeUtil.NormalizeDim(dim1, Rank, "Transpose");
        (perm[a], perm[b]) = (perm[b], perm[a]);
        return Permute(perm);
    }

    /// <summary>Transpose of a 2-D tensor.</summary>
    public Tensor T()
    {
        if (Rank != 2) throw new InvalidOperationException($"T: needs a 2-D tensor, got {ShapeUtil.Format(_shape)}; use Transpose(d0, d1).");
        return Transpose(0, 1);
    }

    /// <summary>Elements start, start+step, ... below end along dim (negative start/end count from the end; clamped).</summary>
    public Tensor Slice(int dim, long start, long end, long step = 1)
    {
        var d = ShapeUtil.NormalizeDim(dim, Rank, "Slice");
        if (step <= 0) throw new ArgumentException($"Slice: step must be positive, got {step}.");
        long n = _shape[d];
        if (start < 0) start += n;
        if (end < 0) end += n;
        start = Math.Clamp(start, 0, n);
        end = Math.Clamp(end, start, n);
        var len = (int)((end - start + step - 1) / step);
        var shape = (int[])_shape.Clone();
        shape[d] = len;
        var strides = (long[])_strides.Clone();
        strides[d] *= step;
        var inputShape = _shape;
        var (s0, st) = (start, step);
        return MakeView(shape, strides, Offset + start * _strides[d], "slice", g =>
        {
            var full = Zeros(inputShape, g.DType, g.Device);
            using (var target = full.SliceRaw(d, s0, st, len)) g.Backend.Copy(g, target);
            return full;
        });
    }

    public Tensor Narrow(int dim, long start, int length) => Slice(dim, start, start + length);

    /// <summary>An un-recorded strided view (for kernels and backward code).</summary>
    internal Tensor SliceRaw(int d, long start, long step, int len)
    {
        var shape = (int[])_shape.Clone();
        shape[d] = len;
        var strides = (long[])_strides.Clone();
        strides[d] *= step;
        using (DisposeScope.Suspend())
            return new Tensor(Storage, shape, strides, Offset + start * _strides[d], DType, addRef: true);
    }

    /// <summary>The slice at <paramref name="index"/> along dim, with that dim removed.</summary>
    public Tensor Select(int dim, long index)
    {
        var d = ShapeUtil.NormalizeDim(dim, Rank, "Select");
        var n = _shape[d];
        var i = index < 0 ? index + n : index;
        if (i < 0 || i >= n) throw new ArgumentOutOfRangeException(nameof(index), $"Select: index {index} is out of range for dim {dim} of size {n}.");
        var shape = _shape.Where((_, k) => k != d).ToArray();
        var strides = _strides.Where((_, k) => k != d).ToArray();
        var inputShape = _shape;
        return MakeView(shape, strides, Offset + i * _strides[d], "select", g =>
        {
            var full = Zeros(inputShape, g.DType, g.Device);
            using (var target = full.SliceRaw(d, i, 1, 1))
            using (var g1 = g.UnsqueezeRaw(d))
                g.Backend.Copy(g1, target);
            return full;
        });
    }

    public Tensor Unsqueeze(int dim)
    {
        var d = ShapeUtil.NormalizeDim(dim, Rank + 1, "Unsqueeze");
        using var raw = UnsqueezeRaw(d);
        var inputShape = _shape;
        return MakeView(raw._shape, raw._strides, Offset, "unsqueeze", g => g.Reshape(inputShape));
    }

    internal Tensor UnsqueezeRaw(int d)
    {
        var shape = _shape.ToList();
        var strides = _strides.ToList();
        shape.Insert(d, 1);
        strides.Insert(d, d < Rank ? _strides[d] * _shape[d] : 1);
        using (DisposeScope.Suspend())
            return new Tensor(Storage, [.. shape], [.. strides], Offset, DType, addRef: true);
    }

    /// <summary>Removes dim (which must have size 1), or every size-1 dim when dim is null.</summary>
    public Tensor Squeeze(int? dim = null)
    {
        var keep = new List<int>();
        for (var i = 0; i < Rank; i++) keep.Add(i);
        if (dim is { } dd)
        {
            var d = ShapeUtil.NormalizeDim(dd, Rank, "Squeeze");
            if (_shape[d] != 1) throw new ArgumentException($"Squeeze: dim {dd} has size {_shape[d]}, not 1 (shape {ShapeUtil.Format(_shape)}).");
            keep.Remove(d);
        }
        else keep.RemoveAll(i => _shape[i] == 1);
        var inputShape = _shape;
        return MakeView(keep.Select(i => _shape[i]).ToArray(), keep.Select(i => _strides[i]).ToArray(), Offset, "squeeze", g => g.Reshape(inputShape));
    }

    /// <summary>A broadcast view with <paramref name="shape"/> (size-1 dims repeated with stride 0; -1 keeps a size).</summary>
    public Tensor Expand(params int[] shape)
    {
        var target = (int[])shape.Clone();
        var lead = target.Length - Rank;
        for (var i = 0; i < target.Length; i++)
            if (target[i] == -1)
            {
                if (i < lead) throw new ArgumentException($"Expand: -1 is not allowed for the new leading dim {i}.");
                target[i] = _shape[i - lead];
            }
        using var raw = BroadcastView(target, "Expand");
        var inputShape = _shape;
        return MakeView(raw._shape, raw._strides, Offset, "expand", g => g.SumToShape(inputShape));
    }

    /// <summary>Un-recorded broadcast view of this tensor with shape <paramref name="target"/>.</summary>
    internal Tensor BroadcastView(int[] target, string op)
    {
        if (target.Length < Rank)
            throw new ArgumentException($"{op}: cannot broadcast {ShapeUtil.Format(_shape)} to fewer dims {ShapeUtil.Format(target)}.");
        var strides = new long[target.Length];
        var lead = target.Length - Rank;
        for (var i = 0; i < target.Length; i++)
        {
            if (i < lead) continue;
            var s = _shape[i - lead];
            if (s == target[i]) strides[i] = _strides[i - lead];
            else if (s != 1)
                throw new ArgumentException($"{op}: cannot broadcast {ShapeUtil.Format(_shape)} to {ShapeUtil.Format(target)} (dim {i}: {s} vs {target[i]}).");
        }
        using (DisposeScope.Suspend())
            return new Tensor(Storage, target, strides, Offset, DType, addRef: true);
    }

    /// <summary>This tensor when already contiguous (as a new reference), else a contiguous copy. Differentiable.</summary>
    public Tensor Contiguous()
    {
        if (IsContiguous) return MakeView(_shape, _strides, Offset, "contiguous", g => g);
        return Clone();
    }
}
