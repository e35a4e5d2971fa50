// Backend primitives for integer indexing: selecting and gathering elements by int64 index tensors, the
// scatter-adds that are their adjoints, and the coordinates of nonzero elements. Every index is checked
// against the size of the dimension it addresses before anything is written; negative indices are errors
// (no wrap-around), so a bad index never turns into a write outside the output.
namespace Engine;

public partial interface IBackend
{
    /// <summary>y = x with dim d restricted to the positions in index: y[..., j, ...] = x[..., index[j], ...].
    /// x: any dtype, strided; index: int64 1-D (k), strided; y: contiguous, x's shape with size k at d.</summary>
    void IndexSelect(Tensor x, int dim, Tensor index, Tensor y);

    /// <summary>dst[..., index[j], ...] += src[..., j, ...] in place, repeated indices accumulating in order of j.
    /// dst: contiguous (float32, int32 or int64); src: same dtype, strided, dst's shape with size k at dim;
    /// index: int64 1-D (k), strided. The adjoint of IndexSelect.</summary>
    void IndexAdd(Tensor dst, int dim, Tensor index, Tensor src);

    /// <summary>y[p] = x[p with coordinate dim replaced by index[p]] for every position p of index.
    /// x: any dtype, strided; index: int64, same rank as x, strided, index.size(d) ≤ x.size(d) for d ≠ dim;
    /// y: contiguous with index's shape.</summary>
    void Gather(Tensor x, int dim, Tensor index, Tensor y);

    /// <summary>dst[p with coordinate dim replaced by index[p]] += src[p] in place, for every position p of index;
    /// values landing on the same element accumulate in order of p's coordinate along dim.
    /// dst: contiguous (float32, int32 or int64); index: int64, strided; src: dst's dtype, strided; all of one rank
    /// with index.size(d) ≤ src.size(d) for every d and index.size(d) ≤ dst.size(d) for d ≠ dim. The adjoint of Gather.</summary>
    void ScatterAdd(Tensor dst, int dim, Tensor index, Tensor src);

    /// <summary>Number of elements of x (any dtype, strided) that are not zero (NaN counts as nonzero).
    /// The count sizes the output of Nonzero, so on a GPU this is a device-to-host synchronization.</summary>
    long CountNonzero(Tensor x);

    /// <summary>Writes the coordinates of x's nonzero elements, in row-major order, into coords: contiguous int64
    /// (count, rank), where count is CountNonzero(x) of the same, unmodified x.</summary>
    void Nonzero(Tensor x, Tensor coords);
}
