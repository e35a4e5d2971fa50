// CPU matrix product through the oneDNN shim (Native/OneDnn.cs), which describes each operand to oneDNN
// by its strides, so transposes, leading dimensions and broadcast batch entries cost no copy.
using Engine.Native;

namespace Engine;

public sealed unsafe partial class CpuBackend
{
    public void Matmul(MatmulGeometry g, Tensor a, Tensor b, Tensor c)
    {
        CheckMatmulRange("a", a, g.ExtentA, g);
        CheckMatmulRange("b", b, g.ExtentB, g);
        CheckMatmulRange("c", c, g.ExtentC, g);
        OneDnn.Matmul(g, a.Data<float>(), b.Data<float>(), c.Data<float>());
    }

    private static void CheckMatmulRange(string name, Tensor t, long extent, MatmulGeometry g)
    {
        if (t.DType != DType.Float32 || t.Rank != 1 || !t.IsContiguous || t.Numel < extent)
            throw new InvalidOperationException(
                $"CpuBackend.matmul: {name} must be a 1-D contiguous float32 view of at least {extent} elements, " +
                $"got {t.DType.Name()} {ShapeUtil.Format(t.Shape)} ({g}).");
    }
}
