// Max pooling and nearest upsampling on the GPU (kernels/pooling.cu): one thread per output element
// forward; the max-pool backward scatters from each output with atomicAdd, the upsampling backward gathers
// one input element per thread in the CPU's summation order.
namespace Engine.Cuda.Backend;

public sealed unsafe partial class CudaBackend
{
    private void LaunchPool(string kernel, long count, PoolArgs args)
    {
        if (count == 0) return;
        Module("pooling.cu").Launch(kernel, Resident((count + BlockThreads - 1) / BlockThreads), Stream, args);
    }

    private static PoolArgs Planes(Tensor input, Tensor output) => new()
    {
        Planes = (long)input.Size(0) * input.Size(1), H = input.Size(2), W = input.Size(3), OH = output.Size(2), OW = output.Size(3),
    };

    public void MaxPool2d(Tensor x, Pool2dWindow window, Tensor y, Tensor indices)
    {
        if (x.DType != DType.Float32) throw Unsupported("max_pool2d", x.DType);
        Require("max_pool2d", "x", x);
        Require("max_pool2d", "y", y);
        Require("max_pool2d", "indices", indices);
        var args = Planes(x, y);
        (args.X, args.Y, args.Indices) = (Ptr(x), Ptr(y), Ptr(indices));
        (args.KH, args.KW, args.SH, args.SW, args.PH, args.PW) =
            (window.KernelH, window.KernelW, window.StrideH, window.StrideW, window.PadH, window.PadW);
        LaunchPool("max_pool2d_forward_kernel", y.Numel, args);
    }

    public void MaxPool2dBackward(Tensor gy, Tensor indices, Tensor gx)
    {
        Require("max_pool2d_backward", "gy", gy);
        Require("max_pool2d_backward", "indices", indices);
        Require("max_pool2d_backward", "gx", gx);
        // IBackend passes no window, so outputs scatter into a zeroed gx (atomicAdd) instead of inputs gathering.
        Fill(gx, 0);
        var args = Planes(gx, gy);
        (args.Gy, args.Indices, args.Gx) = (Ptr(gy), Ptr(indices), Ptr(gx));
        LaunchPool("max_pool2d_backward_kernel", gy.Numel, args);
    }

    public void UpsampleNearest2d(Tensor x, Tensor y)
    {
        if (x.DType != DType.Float32) throw Unsupported("upsample_nearest2d", x.DType);
        Require("upsample_nearest2d", "x", x);
        Require("upsample_nearest2d", "y", y);
        var args = Planes(x, y);
        (args.X, args.Y) = (Ptr(x), Ptr(y));
        LaunchPool("upsample_nearest2d_forward_kernel", y.Numel, args);
    }

    public void UpsampleNearest2dBackward(Tensor gy, Tensor gx)
    {
        Require("upsample_nearest2d_backward", "gy", gy);
        Require("upsample_nearest2d_backward", "gx", gx);
        var args = Planes(gx, gy);
        (args.Gy, args.Gx) = (Ptr(gy), Ptr(gx));
        LaunchPool("upsample_nearest2d_backward_kernel", gx.Numel, args);
    }
}
