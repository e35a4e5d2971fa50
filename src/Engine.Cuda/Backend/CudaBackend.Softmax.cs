// Softmax, log-softmax and the fused cross-entropy on the GPU (kernels/softmax.cu): one block per row when
// the reduced dim is the last one, one thread per column otherwise. Targets are validated on the device;
// a bad one surfaces at the next host synchronization (DeviceErrorLog), not at this call.
namespace Engine.Cuda.Backend;

public sealed unsafe partial class CudaBackend
{
    public void Softmax(Tensor x, long outer, long n, long inner, bool log, Tensor y)
    {
        if (x.DType != DType.Float32) throw Unsupported(log ? "log_softmax" : "softmax", x.DType);
        Require("softmax", "x", x);
        Require("softmax", "y", y);
        LaunchSoftmax("forward", new SoftmaxArgs { X = Ptr(x), Y = Ptr(y), Outer = outer, N = n, Inner = inner, Log = log ? 1 : 0 });
    }

    public void SoftmaxBackward(Tensor y, Tensor g, long outer, long n, long inner, bool log, Tensor gx)
    {
        Require("softmax_backward", "y", y);
        Require("softmax_backward", "g", g);
        Require("softmax_backward", "gx", gx);
        LaunchSoftmax("backward", new SoftmaxArgs { X = Ptr(y), G = Ptr(g), Y = Ptr(gx), Outer = outer, N = n, Inner = inner, Log = log ? 1 : 0 });
    }

    private void LaunchSoftmax(string pass, SoftmaxArgs args)
    {
        if (args.Outer * args.N * args.Inner == 0) return;
        var set = Module("softmax.cu");
        if (args.Inner == 1) set.Launch($"softmax_rows_{pass}_kernel", Resident(args.Outer), Stream, args);
        else set.Launch($"softmax_columns_{pass}_kernel", Resident((args.Outer * args.Inner + BlockThreads - 1) / BlockThreads), Stream, args);
    }

    public void CrossEntropyForward(Tensor logits, Tensor target, Tensor? weight, long ignoreIndex, double labelSmoothing,
                                    Tensor loss, Tensor rowWeight, Tensor logSumExp)
    {
        foreach (var (name, t) in new[] { ("logits", logits), ("target", target), ("loss", loss), ("rowWeight", rowWeight), ("logSumExp", logSumExp) })
            Require("cross_entropy", name, t);
        if (weight is not null) Require("cross_entropy", "weight", weight);
        var rows = logits.Size(0);
        if (rows == 0) return;
        Module("softmax.cu").Launch("cross_entropy_forward_kernel", Resident(rows), Stream, new CrossEntropyArgs
        {
            Logits = Ptr(logits), Target = Ptr(target), Weight = PtrOrZero(weight), Loss = Ptr(loss), RowWeight = Ptr(rowWeight),
            Lse = Ptr(logSumExp), Errors = _errors.DevicePointer, Rows = rows, Classes = logits.Size(1), IgnoreIndex = ignoreIndex,
            Smoothing = labelSmoothing, ErrorOp = (int)DeviceErrorLog.Op.CrossEntropyForward,
        });
    }

    public void CrossEntropyBackward(Tensor logits, Tensor target, Tensor? weight, Tensor logSumExp, Tensor gradRow,
                                     long ignoreIndex, double labelSmoothing, Tensor gradLogits)
    {
        foreach (var (name, t) in new[] { ("logits", logits), ("target", target), ("logSumExp", logSumExp), ("gradRow", gradRow), ("gradLogits", gradLogits) })
            Require("cross_entropy_backward", name, t);
        if (weight is not null) Require("cross_entropy_backward", "weight", weight);
        var rows = logits.Size(0);
        if (rows == 0) return;
        Module("softmax.cu").Launch("cross_entropy_backward_kernel", Resident(rows), Stream, new CrossEntropyArgs
        {
            Logits = Ptr(logits), Target = Ptr(target), Weight = PtrOrZero(weight), Lse = Ptr(logSumExp), GradRow = Ptr(gradRow),
            GradLogits = Ptr(gradLogits), Errors = _errors.DevicePointer, Rows = rows, Classes = logits.Size(1), IgnoreIndex = ignoreIndex,
            GradStride = rows > 1 ? gradRow.Strides[0] : 0, Smoothing = labelSmoothing, ErrorOp = (int)DeviceErrorLog.Op.CrossEntropyBackward,
        });
    }
}
