// Backend primitives for sorting along one dimension: a full stable sort and a top-k selection, both
// returning the values and their int64 positions along the dimension. Keys are float32 or int64; NaN
// orders above +inf (so it comes last ascending and first descending), and -0.0 equals +0.0.
namespace Engine;

public partial interface IBackend
{
    /// <summary>Sorts every line of x along dim, stably: equal keys keep their original order in both directions.
    /// x: float32 or int64, strided; values (x's dtype) and indices (int64): contiguous with x's shape.</summary>
    void Sort(Tensor x, int dim, bool descending, Tensor values, Tensor indices);

    /// <summary>The k largest (or smallest) elements of every line of x along dim, ordered by value (largest first
    /// when largest), ties broken by the lower position first; the selected set is the first k of the stable sort.
    /// x: float32 or int64, strided; 0 ≤ k ≤ x.size(dim); values (x's dtype) and indices (int64): contiguous,
    /// x's shape with size k at dim.</summary>
    void TopK(Tensor x, int dim, int k, bool largest, Tensor values, Tensor indices);
}
