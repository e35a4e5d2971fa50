// Launcher of kernels/long_tail_losses.cu: the long-tail losses (weighted sigmoid BCE with its gradient statistics,
// FCBL, softmax CE, Seesaw), FCBL's confusion update, LogN's calibration with given shift and sd, the scalar
// scale and the float32 rounding of CRAT's row loss (with its label check), for CudaLongTailBackend, which checks shapes, dtypes and devices before it calls here. Launches are queued
// on the given stream; a label out of range found on the device goes to the CUDA backend's error record.
using System.Runtime.InteropServices;
using Engine.Cuda.Compilation;
using Engine.Cuda.Kernels;

namespace Engine.Cuda.Ops;

/// <summary>Mirror of <c>struct long_tail_args</c> (136 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct LongTailArgs
{
    public ulong Logits, Labels, W0, W1, W2, RowLoss, Grad, StatPos, StatNeg, Errors;
    public double Scale, Alpha, Beta, Eps;
    public long Count;
    public int Rows, Columns, NumForeground, Flag;
}

internal sealed class CudaLongTailKernels(CudaDevice device, KernelCompiler compiler) : KernelFamily(device, compiler, SourceFile, KernelNames)
{
    public const string SourceFile = "long_tail_losses.cu";

    public const string WeightedBce = "lt_weighted_bce_kernel";
    public const string BceStatistics = "lt_bce_statistics_kernel";
    public const string Fcbl = "lt_fcbl_kernel";
    public const string ConfusionRows = "lt_confusion_rows_kernel";
    public const string ConfusionColumns = "lt_confusion_columns_kernel";
    public const string SoftmaxCe = "lt_softmax_ce_kernel";
    public const string Seesaw = "lt_seesaw_kernel";
    public const string Calibrate = "lt_calibrate_kernel";
    public const string Scale = "lt_scale_kernel";
    public const string CratRowLoss = "lt_crat_row_loss_kernel";

    public static IReadOnlyList<string> KernelNames { get; } =
        [WeightedBce, BceStatistics, Fcbl, ConfusionRows, ConfusionColumns, SoftmaxCe, Seesaw, Calibrate, Scale, CratRowLoss];

    /// <summary>One warp per row of args.Rows rows.</summary>
    public void PerRow(string kernel, LongTailArgs args, CudaStream stream)
    {
        if (args.Rows == 0) return;
        Launch(kernel, LaunchConfig.GridStride(Device, args.Rows * 32L), stream, args);
    }

    /// <summary>One thread per item of <paramref name="items"/>.</summary>
    public void PerItem(string kernel, long items, LongTailArgs args, CudaStream stream)
    {
        if (items == 0) return;
        Launch(kernel, LaunchConfig.GridStride(Device, items), stream, args);
    }
}
