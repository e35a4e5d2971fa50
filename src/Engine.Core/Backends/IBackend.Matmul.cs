// Backend primitive of the matrix product (Ops/Tensor.Matmul.cs): one batched product in the layout of a
// MatmulGeometry (row-major matrices, leading dimensions, transposes, batch stride 0 = broadcast). The op
// works out the geometry from the operands' strides, so a transposed or broadcast operand reaches the
// backend as a flag or a zero stride rather than a copy.
using Engine.Native;

namespace Engine;

public partial interface IBackend
{
    /// <summary>C[b] = op(A[b]) @ op(B[b]), b &lt; g.Batch, C overwritten. <paramref name="a"/>, <paramref name="b"/>
    /// and <paramref name="c"/> are 1-D float32 views of the storage ranges the geometry addresses: element 0 of
    /// each is element 0 of its first matrix, and their lengths are at least g.ExtentA, g.ExtentB, g.ExtentC.
    /// Elements of c between rows (ldc &gt; N) are left as they are.</summary>
    void Matmul(MatmulGeometry g, Tensor a, Tensor b, Tensor c);
}
