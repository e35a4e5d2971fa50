// Launcher of kernels/box_ops.cu: pairwise IoU, the box coder's encode and decode, FPN levels and the proposal matcher, for
// CudaDetectionBackend, which checks shapes, dtypes and devices before it calls here. Every launch is queued on the
// given stream; bad input found on the device goes to the CUDA backend's error record.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Engine.Cuda.Compilation;
using Engine.Cuda.Kernels;
using Engine.Detection;

namespace Engine.Cuda.Ops;

[InlineArray(CudaBoxOpsKernels.MaxThresholds)]
internal struct ThresholdArray
{
    private double _element;
}

[InlineArray(CudaBoxOpsKernels.MaxThresholds + 1)]
internal struct IntervalLabelArray
{
    private int _element;
}

/// <summary>Mirror of <c>struct box_ops_args</c> (208 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct BoxOpsArgs
{
    public ulong A, B, Out, Out2, Errors;
    public double Wx, Wy, Ww, Wh;
    public double ScaleClamp;
    public ThresholdArray Thresholds;
    public long Rows, Columns;
    public IntervalLabelArray Labels;
    public int NumThresholds, AllowLowQuality, Reserved;
}

/// <summary>Mirror of <c>struct fpn_level_args</c> (40 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct FpnLevelArgs
{
    public ulong Rois, Levels;
    public long Rows;
    public int MinLevel, MaxLevel, CanonicalBoxSize, CanonicalLevel;
}

internal sealed class CudaBoxOpsKernels(CudaDevice device, KernelCompiler compiler) : KernelFamily(device, compiler, SourceFile, KernelNames)
{
    public const string SourceFile = "box_ops.cu";

    /// <summary>BOX_MAX_THRESHOLDS: matcher thresholds one launch carries by value.</summary>
    public const int MaxThresholds = 8;

    private const string Iou = "box_pairwise_iou_kernel";
    private const string Encode = "box_encode_kernel";
    private const string Decode = "box_decode_kernel";
    private const string Level = "box_fpn_level_kernel";
    private const string Match = "box_match_kernel";
    private const string RowMax = "box_row_max_kernel";
    private const int RowMaxThreads = 512;
    private const string LowQuality = "box_low_quality_kernel";

    public static IReadOnlyList<string> KernelNames { get; } = [Iou, Encode, Decode, Level, Match, RowMax, LowQuality];

    /// <summary>iou (n, m) of boxes a (n, 4) and b (m, 4).</summary>
    public void PairwiseIou(ulong a, ulong b, ulong iou, long n, long m, CudaStream stream)
    {
        if (n * m == 0) return;
        Launch(Iou, LaunchConfig.GridStride(Device, n * m), stream, new BoxOpsArgs { A = a, B = b, Out = iou, Rows = n, Columns = m });
    }

    /// <summary>deltas (r, 4) from source and target (r, 4); a non-positive source box is reported to <paramref name="errors"/>.</summary>
    public void EncodeBoxes(ulong source, ulong target, BoxCoderWeights w, ulong deltas, long r, ulong errors, CudaStream stream)
    {
        if (r == 0) return;
        Launch(Encode, LaunchConfig.GridStride(Device, r), stream, new BoxOpsArgs
        {
            A = source, B = target, Out = deltas, Errors = errors, Wx = w.X, Wy = w.Y, Ww = w.W, Wh = w.H, Rows = r,
        });
    }

    /// <summary>output (r, k·4) from deltas (r, k·4) and boxes (r, 4).</summary>
    public void DecodeBoxes(ulong deltas, ulong boxes, BoxCoderWeights w, double scaleClamp, ulong output, long r, long k, CudaStream stream)
    {
        if (r * k == 0) return;
        Launch(Decode, LaunchConfig.GridStride(Device, r * k), stream, new BoxOpsArgs
        {
            A = deltas, B = boxes, Out = output, Wx = w.X, Wy = w.Y, Ww = w.W, Wh = w.H, ScaleClamp = scaleClamp, Rows = r, Columns = k,
        });
    }

    /// <summary>levels (r) int64 from rois (r, 5).</summary>
    public void AssignFpnLevels(ulong rois, FpnLevelRule rule, ulong levels, long r, CudaStream stream)
    {
        if (r == 0) return;
        Launch(Level, LaunchConfig.GridStride(Device, r), stream, new FpnLevelArgs
        {
            Rois = rois, Levels = levels, Rows = r, MinLevel = rule.MinLevel, MaxLevel = rule.MaxLevel,
            CanonicalBoxSize = rule.CanonicalBoxSize, CanonicalLevel = rule.CanonicalLevel,
        });
    }

    /// <summary>matches, labels (n) from quality (m, n); <paramref name="highest"/> (m floats) is scratch for low-quality
    /// matches and must stay allocated until the launches ran (stream-ordered memory freed after them is).</summary>
    public void MatchProposals(ulong quality, long m, long n, MatcherRule rule, ulong matches, ulong labels, ulong highest, ulong errors,
                               CudaStream stream)
    {
        if (n == 0) return;
        var args = new BoxOpsArgs
        {
            A = quality, B = highest, Out = matches, Out2 = labels, Errors = errors, Rows = m, Columns = n,
            NumThresholds = rule.Thresholds.Count, AllowLowQuality = rule.AllowLowQualityMatches ? 1 : 0,
        };
        for (var t = 0; t < rule.Thresholds.Count; t++) args.Thresholds[t] = rule.Thresholds[t];
        for (var l = 0; l < rule.Labels.Count; l++) args.Labels[l] = rule.Labels[l];
        Launch(Match, LaunchConfig.GridStride(Device, n), stream, args);
        if (m == 0 || !rule.AllowLowQualityMatches) return;
        // one block per ground truth: its row spans every anchor of the image
        Launch(RowMax, LaunchConfig.GridStride(Device, m * RowMaxThreads, RowMaxThreads), stream, args);
        Launch(LowQuality, LaunchConfig.GridStride(Device, n), stream, args);
    }
}
