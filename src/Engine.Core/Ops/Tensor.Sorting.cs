// Sorting along a dimension (sort, argsort) and top-k selection, for float32 and int64 keys. Both are
// stable: equal values keep their original order (ascending and descending), and top-k breaks ties by the
// lower position. NaN sorts as the largest value (last ascending, first descending, first in a largest
// top-k), as in PyTorch; -0.0 and +0.0 are equal. The values are differentiable: the gradient is scattered
// back to the positions the indices name.
namespace Engine;

public sealed partial class Tensor
{
    private int SortDim(string op, int dim)
    {
        if (DType is not (DType.Float32 or DType.Int64))
            throw new ArgumentException($"{op}: needs float32 or int64 keys, got {DType.Name()}{ShapeUtil.Format(_shape)}; convert with To(DType.Float32) or To(DType.Int64).");
        if (Rank == 0) throw new ArgumentException($"{op}: the tensor is zero-dimensional; Reshape(1) it first.");
        return ShapeUtil.NormalizeDim(dim, Rank, op);
    }

    /// <summary>Values sorted along dim and their int64 positions in this tensor. Stable in both directions.</summary>
    public (Tensor Values, Tensor Indices) Sort(int dim = -1, bool descending = false)
    {
        var d = SortDim("sort", dim);
        var values = Empty(_shape, DType, Device);
        var indices = Empty(_shape, DType.Int64, Device);
        try { Backend.Sort(this, d, descending, values, indices); }
        catch
        {
            values.Dispose();
            indices.Dispose();
            throw;
        }
        RecordSelection(values, indices, d, "sort");
        return (values, indices);
    }

    /// <summary>The int64 positions that sort this tensor along dim (stable).</summary>
    public Tensor ArgSort(int dim = -1, bool descending = false)
    {
        using (GradMode.NoGrad())
        {
            var (values, indices) = Sort(dim, descending);
            values.Dispose();
            return indices;
        }
    }

    /// <summary>The k largest (or smallest) values along dim, ordered by value (largest first when largest), ties
    /// broken by the lower position, and their int64 positions. 0 ≤ k ≤ size(dim).</summary>
    public (Tensor Values, Tensor Indices) TopK(int k, int dim = -1, bool largest = true)
    {
        var d = SortDim("topk", dim);
        if (k < 0 || k > _shape[d])
            throw new ArgumentOutOfRangeException(nameof(k), $"topk: k = {k} is out of range for dim {dim} of size {_shape[d]} (shape {ShapeUtil.Format(_shape)}); need 0 ≤ k ≤ {_shape[d]}.");
        var shape = ShapeArray();
        shape[d] = k;
        var values = Empty(shape, DType, Device);
        var indices = Empty(shape, DType.Int64, Device);
        try { Backend.TopK(this, d, k, largest, values, indices); }
        catch
        {
            values.Dispose();
            indices.Dispose();
            throw;
        }
        RecordSelection(values, indices, d, "topk");
        return (values, indices);
    }

    /// <summary>Records values = this gathered at indices along d: the backward scatters g back.</summary>
    private void RecordSelection(Tensor values, Tensor indices, int d, string op)
    {
        if (!Autograd.Tape.IsNeeded(this)) return;
        var inputShape = _shape;
        Autograd.Tape.Record(values, op, [this], node =>
        {
            var si = node.Save(indices);
            return g => [ScatterAddIntoZeros(inputShape, d, si, g)];
        });
    }
}
