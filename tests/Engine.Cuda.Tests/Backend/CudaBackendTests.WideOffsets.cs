// The strided kernels do their index arithmetic in 32 bits when a map's element count and every operand's
// offsets fit in 31 bits (for_each_element, kernels/common.cuh), which every other test of the backend runs.
// Here a view of four elements reaches offset 2^31 + 1 of an 8 GiB tensor, so fill, copy (either side
// strided), a unary and a broadcast binary map take the 64-bit path, and must agree exactly with the host.
using Engine.Native;
using Engine.Tests;

namespace Engine.Cuda.Tests.Backend;

public sealed partial class CudaBackendTests
{
    [CudaFact]
    public void StridedKernelsReachOffsetsBeyond32Bits()
    {
        const int width = (1 << 30) + 1;
        var g = Fresh(out var seed);
        using var big = Tensor.Empty([2, width], DType.Float32, Cuda);
        // columns 0 and 2^30: strides (2^30 + 1, 2^30), last element at 2^31 + 1
        using var view = big.Slice(1, 0, width, 1 << 30);
        Assert.Equal([2, 2], view.Shape.ToArray());

        Gpu.Fill(view, 7);
        using var filled = Out(Cuda, [2, 2]);
        Gpu.Copy(view, filled);
        Assert.All(filled.ToDoubleArray(), v => Assert.Equal(7.0, v));

        using var host = Tensor.Randn([2, 2], g, 0, 1);
        using var values = host.To(Cuda);
        Gpu.Copy(values, view);
        using var back = Out(Cuda, [2, 2]);
        Gpu.Copy(view, back);
        Assert.Equal(host.ToDoubleArray(), back.ToDoubleArray());

        using var relu = Out(Cuda, [2, 2]);
        Gpu.Unary(UnaryOp.Relu, view, relu, 0, 0);
        Assert.Equal(host.ToDoubleArray().Select(v => v > 0 ? v : 0.0), relu.ToDoubleArray());

        using var column = Tensor.Randn([2, 1], g, 0, 1);
        using var columnOnGpu = column.To(Cuda);
        using var expanded = columnOnGpu.Expand(2, 2);
        using var product = Out(Cuda, [2, 2]);
        Gpu.Binary(BinaryOp.Mul, view, expanded, product);
        var (h, c) = (host.ToDoubleArray(), column.ToDoubleArray());
        var expected = Enumerable.Range(0, 4).Select(i => (double)((float)h[i] * (float)c[i / 2]));
        Assert.True(expected.SequenceEqual(product.ToDoubleArray()), $"broadcast multiply through the wide view (seed {seed})");
    }
}
