// Indexing with int64 index tensors (index_select, gather, scatter_add) and with masks (nonzero,
// masked_select), with gradients. Index tensors are int64 and their entries must lie in [0, size) of the
// dim they address; negative indices are errors, not counted from the end. The backward of a selection is
// a scatter-add of the gradient (repeated indices accumulate), and the backward of scatter_add is a gather.
namespace Engine;

public sealed partial class Tensor
{
    private void CheckIndexTensor(string op, Tensor index)
    {
        if (index.DType != DType.Int64)
            throw new ArgumentException($"{op}: index must be int64, got {index.DType.Name()}{ShapeUtil.Format(index.Shape)}; convert with To(DType.Int64).");
        if (index.Device != Device)
            throw new ArgumentException($"{op}: index is on {index.Device} but the tensor is on {Device}; move it with To(device).");
    }

    /// <summary>Runs a backend call that fills <paramref name="y"/>, disposing y when the call throws.</summary>
    private static Tensor Filled(Tensor y, Action<Tensor> fill)
    {
        try { fill(y); }
        catch
        {
            y.Dispose();
            throw;
        }
        return y;
    }

    /// <summary>Zeros of <paramref name="shape"/> with src scatter-added along dim at index (un-recorded; backward code).</summary>
    internal static Tensor ScatterAddIntoZeros(int[] shape, int dim, Tensor index, Tensor src)
    {
        var z = Zeros(shape, src.DType, src.Device);
        return Filled(z, t => t.Backend.ScatterAdd(t, dim, index, src));
    }

    /// <summary>The entries of this tensor at the positions <paramref name="index"/> (int64, 1-D) along dim:
    /// y[..., j, ...] = this[..., index[j], ...]. Repeats allowed. Differentiable (the gradient is index-added back).</summary>
    public Tensor IndexSelect(int dim, Tensor index)
    {
        if (Rank == 0) throw new ArgumentException("index_select: the tensor is zero-dimensional; Reshape(1) it first.");
        var d = ShapeUtil.NormalizeDim(dim, Rank, "index_select");
        CheckIndexTensor("index_select", index);
        if (index.Rank != 1)
            throw new ArgumentException($"index_select: index must be 1-D, got shape {ShapeUtil.Format(index.Shape)}; Reshape(-1) it, or use Gather for per-element indices.");
        var shape = ShapeArray();
        shape[d] = index._shape[0];
        var y = Filled(Empty(shape, DType, Device), t => Backend.IndexSelect(this, d, index, t));
        if (Autograd.Tape.IsNeeded(this))
        {
            var inputShape = _shape;
            Autograd.Tape.Record(y, "index_select", [this], node =>
            {
                var si = node.Save(index);
                return g =>
                {
                    var gx = Zeros(inputShape, g.DType, g.Device);
                    return [Filled(gx, t => t.Backend.IndexAdd(t, d, si, g))];
                };
            });
        }
        return y;
    }

    /// <summary>y[p] = this[p with coordinate dim replaced by index[p]] (PyTorch gather): index is int64 of this
    /// tensor's rank with index.size(k) ≤ size(k) for k ≠ dim; y has index's shape. Differentiable (scatter-add back).</summary>
    public Tensor Gather(int dim, Tensor index)
    {
        if (Rank == 0) throw new ArgumentException("gather: the tensor is zero-dimensional; Reshape(1) it first.");
        var d = ShapeUtil.NormalizeDim(dim, Rank, "gather");
        CheckIndexTensor("gather", index);
        if (index.Rank != Rank)
            throw new ArgumentException($"gather: index has shape {ShapeUtil.Format(index.Shape)} but the tensor has {ShapeUtil.Format(_shape)}; both need the same rank.");
        for (var k = 0; k < Rank; k++)
            if (k != d && index._shape[k] > _shape[k])
                throw new ArgumentException(
                    $"gather: index shape {ShapeUtil.Format(index.Shape)} exceeds the tensor's {ShapeUtil.Format(_shape)} in dim {k}; index.size(k) ≤ size(k) is needed for every k ≠ dim ({d}).");
        var y = Filled(Empty(index._shape, DType, Device), t => Backend.Gather(this, d, index, t));
        if (Autograd.Tape.IsNeeded(this))
        {
            var inputShape = _shape;
            Autograd.Tape.Record(y, "gather", [this], node =>
            {
                var si = node.Save(index);
                return g => [ScatterAddIntoZeros(inputShape, d, si, g)];
            });
        }
        return y;
    }

    /// <summary>Out of place: a copy of this tensor with src[p] added at p's position with coordinate dim replaced by
    /// index[p], for every position p of index (PyTorch scatter_add). index: int64, rank of this and src,
    /// index.size(k) ≤ src.size(k) for all k and ≤ size(k) for k ≠ dim. Repeated targets accumulate.
    /// Differentiable: the gradient of this is g, of src gather(g) (zero where src lies outside index's shape).</summary>
    public Tensor ScatterAdd(int dim, Tensor index, Tensor src)
    {
        if (Rank == 0) throw new ArgumentException("scatter_add: the tensor is zero-dimensional; Reshape(1) it first.");
        var d = ShapeUtil.NormalizeDim(dim, Rank, "scatter_add");
        CheckIndexTensor("scatter_add", index);
        if (src.DType != DType)
            throw new ArgumentException($"scatter_add: src has dtype {src.DType.Name()} but the tensor has {DType.Name()}; convert with To(dtype).");
        if (src.Device != Device)
            throw new ArgumentException($"scatter_add: src is on {src.Device} but the tensor is on {Device}; move it with To(device).");
        if (index.Rank != Rank || src.Rank != Rank)
            throw new ArgumentException(
                $"scatter_add: tensor {ShapeUtil.Format(_shape)}, index {ShapeUtil.Format(index.Shape)} and src {ShapeUtil.Format(src.Shape)} need the same rank.");
        for (var k = 0; k < Rank; k++)
            if (index._shape[k] > src._shape[k] || (k != d && index._shape[k] > _shape[k]))
                throw new ArgumentException(
                    $"scatter_add: index shape {ShapeUtil.Format(index.Shape)} exceeds src {ShapeUtil.Format(src.Shape)} or the tensor {ShapeUtil.Format(_shape)} in dim {k}; " +
                    $"index.size(k) ≤ src.size(k) for every k and ≤ size(k) for k ≠ dim ({d}) is needed.");
        var y = Empty(_shape, DType, Device);
        Filled(y, t =>
        {
            Backend.Copy(this, t);
            Backend.ScatterAdd(t, d, index, src);
        });
        if (Autograd.Tape.IsNeeded(this, src))
        {
            var srcShape = src._shape;
            var (needSelf, needSrc) = (RequiresGrad, src.RequiresGrad);
            Autograd.Tape.Record(y, "scatter_add", [this, src], node =>
            {
                var si = node.Save(index);
                return g => [needSelf ? g : null, needSrc ? GatherPadded(g, d, si, srcShape) : null];
            });
        }
        return y;
    }

    /// <summary>gather(g, dim, index) written into zeros of <paramref name="shape"/> (which contains index's shape).</summary>
    private static Tensor GatherPadded(Tensor g, int dim, Tensor index, int[] shape)
    {
        var gathered = Filled(Empty(index._shape, g.DType, g.Device), t => g.Backend.Gather(g, dim, index, t));
        if (index.Shape.SequenceEqual(shape)) return gathered;
        using (gathered)
        {
            var full = Zeros(shape, g.DType, g.Device);
            using (DisposeScope.Suspend())
            using (var corner = new Tensor(full.Storage, index.ShapeArray(), full._strides, full.Offset, full.DType, addRef: true))
                g.Backend.Copy(gathered, corner);
            return full;
        }
    }

    /// <summary>Coordinates of the nonzero elements (NaN counts as nonzero) in row-major order: int64 (N, rank).
    /// Any dtype. N depends on the data, so on a GPU this waits for the device. Not differentiable.</summary>
    public Tensor Nonzero()
    {
        var n = Backend.CountNonzero(this);
        var y = Empty([checked((int)n), Rank], DType.Int64, Device);
        return Filled(y, t => Backend.Nonzero(this, t));
    }

    /// <summary>Positions (int64, 1-D) where a 1-D mask is nonzero, in increasing order. With IndexSelect this is
    /// boolean row indexing: <c>boxes.IndexSelect(0, Tensor.IndexFromMask(keep))</c> keeps the rows of boxes (R, 4)
    /// where keep (R) is nonzero.</summary>
    public static Tensor IndexFromMask(Tensor mask)
    {
        if (mask.Rank != 1)
            throw new ArgumentException($"IndexFromMask: mask must be 1-D, got shape {ShapeUtil.Format(mask.Shape)}; Reshape(-1) it (positions are then flat).");
        using var coords = mask.Nonzero();
        using (GradMode.NoGrad())
            return coords.Reshape(-1);
    }

    /// <summary>The elements where mask (uint8, broadcastable with this tensor) is nonzero, as a 1-D tensor in row-major
    /// order of the broadcast shape (PyTorch masked_select). Differentiable in this tensor.</summary>
    public Tensor MaskedSelect(Tensor mask)
    {
        if (mask.DType != DType.UInt8)
            throw new ArgumentException($"masked_select: mask must be uint8 (a comparison result), got {mask.DType.Name()}{ShapeUtil.Format(mask.Shape)}.");
        if (mask.Device != Device)
            throw new ArgumentException($"masked_select: mask is on {mask.Device} but the tensor is on {Device}; move it with To(device).");
        var shape = ShapeUtil.Broadcast(_shape, mask._shape, "masked_select");
        using var expanded = Expand(shape);
        using var flat = expanded.Reshape(-1);
        using var maskView = mask.BroadcastView(shape, "masked_select");
        using var flatMask = Empty([checked((int)ShapeUtil.Numel(shape))], DType.UInt8, Device);
        using (var m = flatMask.Reshape(shape)) Backend.Copy(maskView, m);
        using var index = IndexFromMask(flatMask);
        return flat.IndexSelect(0, index);
    }
}
