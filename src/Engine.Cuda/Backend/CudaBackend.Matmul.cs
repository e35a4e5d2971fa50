// Matrix products on the GPU through cuBLAS (CublasGemm): the geometry's transposes, leading dimensions and
// broadcast batch strides go to cuBLAS as they are, so no operand is copied. K = 0 gives zeros, written by
// the fill kernel over C's (Batch, M, N) view so that elements between rows keep their values.
using Engine.Native;

namespace Engine.Cuda.Backend;

public sealed unsafe partial class CudaBackend
{
    private CublasGemm? _cublas;
    private readonly Lock _cublasGate = new();

    private CublasGemm Gemm
    {
        get
        {
            lock (_cublasGate)
                return _cublas ??= new CublasGemm(CudaDevice, Stream, Memory, Options.CublasWorkspaceBytes, Options.AllowTf32);
        }
    }

    public void Matmul(MatmulGeometry g, Tensor a, Tensor b, Tensor c)
    {
        CheckMatmulRange("a", a, g.ExtentA, g);
        CheckMatmulRange("b", b, g.ExtentB, g);
        CheckMatmulRange("c", c, g.ExtentC, g);
        if (g.Batch == 0 || g.M == 0 || g.N == 0) return;
        if (g.K == 0)
        {
            var map = Kernels.ElementwiseLayout.Build("matmul", [g.Batch, g.M, g.N], [g.BatchStrideC, g.Ldc, 1]);
            LaunchTensor("fill_kernel", new TensorArgs { Out = Ptr(c), OutDType = Code(DType.Float32), Alpha = 0, Map = map });
            return;
        }
        Gemm.Run(g, Ptr(a), Ptr(b), Ptr(c));
    }

    private void CheckMatmulRange(string name, Tensor t, long extent, MatmulGeometry g)
    {
        Require("matmul", name, t);
        if (t.DType != DType.Float32 || t.Rank != 1 || !t.IsContiguous || t.Numel < extent)
            throw new InvalidOperationException(
                $"CudaBackend.matmul: {name} must be a 1-D contiguous float32 view of at least {extent} elements, " +
                $"got {t.DType.Name()} {ShapeUtil.Format(t.Shape)} ({g}).");
    }
}
