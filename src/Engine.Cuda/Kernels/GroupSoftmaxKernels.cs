// Launcher of kernels/group_softmax.cu: BAGS's segmented softmax (or log-softmax) over column groups of each row,
// forward and backward. The group offsets are host values (the loss knows its layout) and travel to the kernel by
// value, so they are checked here and no device memory holds them.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Engine.Cuda.Compilation;

namespace Engine.Cuda.Kernels;

[InlineArray(GroupSoftmaxKernels.MaxGroups + 1)]
internal struct GroupOffsetArray
{
    private long _element;
}

/// <summary>Mirror of <c>struct group_softmax_args</c> (560 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct GroupSoftmaxArgs
{
    public ulong Input;
    public ulong Grad;
    public ulong Output;
    public GroupOffsetArray Offsets;
    public int Rows;
    public int Columns;
    public int Groups;
    public int Log;
}

public sealed class GroupSoftmaxKernels(CudaDevice device, KernelCompiler compiler)
    : KernelFamily(device, compiler, SourceFile, KernelNames)
{
    public const string SourceFile = "group_softmax.cu";

    /// <summary>GROUP_SOFTMAX_MAX_GROUPS of the kernel.</summary>
    public const int MaxGroups = 64;

    private const string ForwardKernel = "group_softmax_forward_kernel";
    private const string BackwardKernel = "group_softmax_backward_kernel";

    public static IReadOnlyList<string> KernelNames { get; } = [ForwardKernel, BackwardKernel];

    /// <summary>y (N, K) = softmax (or log-softmax) of x (N, K) within each group [offsets[g], offsets[g+1]); offsets
    /// run from 0 to K, strictly increasing, at most <see cref="MaxGroups"/> groups.</summary>
    public void Forward(DeviceView x, IReadOnlyList<long> offsets, bool log, DeviceBuffer<float> y, CudaStream? stream = null)
    {
        const string op = "GroupSoftmaxKernels.Forward";
        var args = Arguments(op, x, offsets, log);
        RequireBuffer(op, nameof(y), y, x.Count);
        RequireDistinct(op, nameof(y), y, ("x", x.Buffer));
        args.Input = x.Count == 0 ? 0 : x.Address;
        args.Output = y.Pointer;
        LaunchPairs(ForwardKernel, args, stream);
    }

    /// <summary>gradX (N, K) from the forward's output y and gradY (both (N, K)), per group: softmax
    /// y·(gradY − Σ gradY·y), log-softmax gradY − exp(y)·Σ gradY.</summary>
    public void Backward(DeviceView y, DeviceView gradY, IReadOnlyList<long> offsets, bool log, DeviceBuffer<float> gradX, CudaStream? stream = null)
    {
        const string op = "GroupSoftmaxKernels.Backward";
        var args = Arguments(op, y, offsets, log);
        RequireDense(op, nameof(gradY), gradY, y.Shape);
        RequireBuffer(op, nameof(gradX), gradX, y.Count);
        RequireDistinct(op, nameof(gradX), gradX, ("y", y.Buffer), ("gradY", gradY.Buffer));
        args.Input = y.Count == 0 ? 0 : y.Address;
        args.Grad = gradY.Count == 0 ? 0 : gradY.Address;
        args.Output = gradX.Pointer;
        LaunchPairs(BackwardKernel, args, stream);
    }

    private void LaunchPairs(string kernel, GroupSoftmaxArgs args, CudaStream? stream)
    {
        var pairs = (long)args.Rows * args.Groups;
        if (pairs == 0) return;
        // one warp per (row, group) pair
        Launch(kernel, LaunchConfig.GridStride(Device, checked(pairs * 32)), stream, args);
    }

    private GroupSoftmaxArgs Arguments(string op, DeviceView x, IReadOnlyList<long> offsets, bool log)
    {
        ArgumentNullException.ThrowIfNull(offsets);
        if (x.Shape.Length != 2 || x.Shape[0] > int.MaxValue || x.Shape[1] > int.MaxValue)
            throw new ArgumentException($"{op}: the input has shape {ElementwiseLayout.Format(x.Shape)}; it must be (N, K) with N, K < 2^31.");
        RequireDense(op, "the input", x, x.Shape);
        var k = x.Shape[1];
        var groups = offsets.Count - 1;
        var text = $"[{string.Join(", ", offsets)}]";
        if (groups < 1 || groups > MaxGroups)
            throw new ArgumentException($"{op}: offsets {text} give {groups} groups; pass 2..{MaxGroups + 1} offsets (1..{MaxGroups} groups).", nameof(offsets));
        if (offsets[0] != 0 || offsets[groups] != k)
            throw new ArgumentException($"{op}: offsets {text} must start at 0 and end at K = {k}, the column count of {ElementwiseLayout.Format(x.Shape)}.", nameof(offsets));
        for (var g = 0; g < groups; g++)
            if (offsets[g + 1] <= offsets[g])
                throw new ArgumentException($"{op}: offsets {text} must rise strictly (group {g} is empty or reversed); every group needs a column.", nameof(offsets));
        var args = new GroupSoftmaxArgs { Rows = (int)x.Shape[0], Columns = (int)k, Groups = groups, Log = log ? 1 : 0 };
        for (var g = 0; g <= groups; g++) args.Offsets[g] = offsets[g];
        return args;
    }
}
