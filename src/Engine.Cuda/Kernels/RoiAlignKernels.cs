// Launcher of kernels/roi_align.cu: multi-level ROIAlign (torchvision semantics, aligned or not, fixed or adaptive
// sampling) in one forward launch over every FPN level (grid x over the RoIs, y over one RoI's outputs), and a
// backward of two launches (clear the level gradients, then one scatter into all of them, a block per RoI and group of
// channels). The caller assigns each RoI its level (the pooler does, on the RoIs' device) and passes it as an int64
// array; the level feature maps travel to the kernel by value in one argument struct.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Engine.Cuda.Compilation;

namespace Engine.Cuda.Kernels;

/// <summary>The fixed parameters of a ROIAlign call.</summary>
/// <param name="PooledHeight">Ph, output bins per RoI vertically.</param>
/// <param name="PooledWidth">Pw.</param>
/// <param name="Scales">spatial scale of each feature level (feature size / image size, e.g. 1/4 … 1/32).</param>
/// <param name="SamplingRatio">samples per bin along each axis; 0 = adaptive, ceil(roi size / pooled size) per RoI.</param>
/// <param name="Aligned">half-pixel shift of the box (Detectron2's ROIAlignV2).</param>
public sealed record RoiAlignSpec(int PooledHeight, int PooledWidth, IReadOnlyList<double> Scales, int SamplingRatio, bool Aligned);

/// <summary>Mirror of <c>struct roi_align_level</c> (24 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct RoiAlignLevelArgs
{
    public ulong Data;
    public int Height;
    public int Width;
    public double Scale;
}

[InlineArray(RoiAlignKernels.MaxLevels)]
internal struct RoiAlignLevelArray
{
    private RoiAlignLevelArgs _element;
}

/// <summary>Mirror of <c>struct roi_align_args</c> (184 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct RoiAlignArgs
{
    public RoiAlignLevelArray Levels;
    public ulong Rois;
    public ulong LevelOf;
    public ulong Output;
    public long Count;
    public int NumLevels;
    public int Batch;
    public int Channels;
    public int PooledHeight;
    public int PooledWidth;
    public int SamplingRatio;
    public int Aligned;
    public int Reserved;
}

public sealed class RoiAlignKernels(CudaDevice device, KernelCompiler compiler)
    : KernelFamily(device, compiler, SourceFile, KernelNames)
{
    public const string SourceFile = "roi_align.cu";

    /// <summary>ROI_ALIGN_MAX_LEVELS of the kernel: P2–P6 at most.</summary>
    public const int MaxLevels = 5;

    private const string ForwardKernel = "roi_align_forward_kernel";
    private const string ZeroKernel = "roi_align_zero_kernel";
    private const string BackwardKernel = "roi_align_backward_kernel";

    public static IReadOnlyList<string> KernelNames { get; } = [ForwardKernel, ZeroKernel, BackwardKernel];

    /// <summary>output (R, C, Ph, Pw) from features[l] (N, C, H_l, W_l) and rois (R, 5) = (batch index, x1, y1, x2, y2)
    /// in image coordinates; levelOfRoi (R) int64 gives each RoI's level (null: all on level 0). Every output element
    /// is written; an RoI with an invalid batch index or level pools to NaN. Queued on <paramref name="stream"/>.</summary>
    public void Forward(RoiAlignSpec spec, IReadOnlyList<DeviceView> features, DeviceView rois, DeviceBuffer<long>? levelOfRoi,
                        DeviceBuffer<float> output, CudaStream? stream = null)
    {
        const string op = "RoiAlignKernels.Forward";
        ArgumentNullException.ThrowIfNull(features);
        if (features.Count == 0)
            throw new ArgumentException($"{op}: no feature levels; pass 1..{MaxLevels} (N, C, H, W) views.", nameof(features));
        var shapes = features.Select(f => f.Shape).ToList();
        var args = Arguments(op, spec, shapes, rois, levelOfRoi);
        for (var l = 0; l < features.Count; l++)
        {
            RequireDense(op, $"features[{l}]", features[l], shapes[l]);
            args.Levels[l].Data = features[l].Count == 0 ? 0 : features[l].Address;
        }
        RequireBuffer(op, nameof(output), output, args.Count);
        RequireDistinct(op, nameof(output), output, [("rois", rois.Buffer), .. features.Select((f, l) => ($"features[{l}]", (object?)f.Buffer))]);
        args.Output = output.Pointer;
        if (args.Count == 0) return;
        Launch(ForwardKernel, PerRoi(args, rois.Shape[0]), stream, args);
    }

    /// <summary>Overwrites gradFeatures[l] (each (N, C, H_l, W_l), or null for a level that needs no gradient) with the
    /// bilinear scatter of gradOutput (R, C, Ph, Pw): a clearing launch, then one atomic scatter launch over all levels.
    /// The result's last bits depend on the order of the atomic additions.</summary>
    public void Backward(RoiAlignSpec spec, DeviceView gradOutput, DeviceView rois, DeviceBuffer<long>? levelOfRoi,
                         IReadOnlyList<DeviceView?> gradFeatures, CudaStream? stream = null)
    {
        const string op = "RoiAlignKernels.Backward";
        ArgumentNullException.ThrowIfNull(gradFeatures);
        var first = gradFeatures.FirstOrDefault(g => g is not null)
                    ?? throw new ArgumentException($"{op}: every level gradient is null; pass at least one (N, C, H, W) gradient view.", nameof(gradFeatures));
        // a null level only needs a plausible shape for the checks; no RoI on it scatters anything
        var shapes = gradFeatures.Select(g => g?.Shape ?? [first.Shape[0], first.Shape.Length > 1 ? first.Shape[1] : 0, 1, 1]).ToList();
        var args = Arguments(op, spec, shapes, rois, levelOfRoi);
        RequireDense(op, nameof(gradOutput), gradOutput, rois.Shape[0], args.Channels, spec.PooledHeight, spec.PooledWidth);
        for (var l = 0; l < gradFeatures.Count; l++)
        {
            if (gradFeatures[l] is not { } g) continue;
            RequireDense(op, $"gradFeatures[{l}]", g, shapes[l]);
            RequireDistinct(op, $"gradFeatures[{l}]", g.Buffer, ("gradOutput", gradOutput.Buffer), ("rois", rois.Buffer));
            for (var m = 0; m < l; m++)
                if (gradFeatures[m] is { } other && ReferenceEquals(other.Buffer, g.Buffer) && Overlap(other, g))
                    throw new ArgumentException($"{op}: gradFeatures[{m}] and gradFeatures[{l}] overlap in one buffer; give each level its own memory.");
            args.Levels[l].Data = g.Count == 0 ? 0 : g.Address;
        }
        args.Output = gradOutput.Count == 0 ? 0 : gradOutput.Address;
        var largest = shapes.Max(s => s.Aggregate(1L, (p, e) => p * e));
        if (largest > 0)
        {
            var clear = LaunchConfig.GridStride(Device, largest);
            Launch(ZeroKernel, clear with { Grid = clear.Grid with { Y = (uint)shapes.Count } }, stream, args);
        }
        if (args.Count > 0) Launch(BackwardKernel, PerRoiGroup(args, rois.Shape[0]), stream, args);
    }

    /// <summary>ROI_ALIGN_CHANNELS of the kernel: channels one forward thread pools for one bin. The grid is sized with
    /// it; the kernel's loops cover any grid, so it only affects speed.</summary>
    public const int ChannelsPerThread = 4;

    /// <summary>Threads of a forward block, measured on an H100 with the benchmark's 1024 RoIs: 128 took 0.40 ms, 256
    /// 0.43 and 64 0.41 (the kernel's 80 registers per thread fit 24 warps per multiprocessor with any of them).</summary>
    public const int ForwardThreads = 128;

    /// <summary>The forward grid: x over the RoIs, y over one RoI's ceil(C / ChannelsPerThread)·Ph·Pw work items in
    /// blocks of <see cref="ForwardThreads"/> (the kernel strides past either limit).</summary>
    private LaunchConfig PerRoi(in RoiAlignArgs args, long rois)
    {
        var perRoi = (long)(args.Channels + ChannelsPerThread - 1) / ChannelsPerThread * args.PooledHeight * args.PooledWidth;
        var threads = (int)Math.Min(ForwardThreads, (perRoi + 31) / 32 * 32);
        var blocksY = Math.Min((perRoi + threads - 1) / threads, 65535);
        return new LaunchConfig(new Dim3((uint)Math.Min(rois, Device.MaxGridDimX), (uint)blocksY), new Dim3((uint)threads));
    }

    /// <summary>ROI_ALIGN_BACKWARD_CHANNELS of the kernel: channels one backward block handles for one RoI.</summary>
    public const int BackwardChannelsPerBlock = 4;

    /// <summary>The backward grid: y over the RoIs, x over groups of <see cref="BackwardChannelsPerBlock"/> channels,
    /// a thread per bin (up to 256; the kernel loops over more).</summary>
    private LaunchConfig PerRoiGroup(in RoiAlignArgs args, long rois)
    {
        var groups = (args.Channels + BackwardChannelsPerBlock - 1) / BackwardChannelsPerBlock;
        var threads = Math.Min(256, (args.PooledHeight * args.PooledWidth + 31) / 32 * 32);
        return new LaunchConfig(new Dim3((uint)Math.Min(groups, Device.MaxGridDimX), (uint)Math.Min(rois, 65535)), new Dim3((uint)threads));
    }

    private static bool Overlap(DeviceView a, DeviceView b) =>
        a.Count > 0 && b.Count > 0 && a.Offset < b.Offset + b.Count && b.Offset < a.Offset + a.Count;

    /// <summary>Checks the parameters, level shapes, rois and levels, and fills everything but the level pointers and Output.</summary>
    private RoiAlignArgs Arguments(string op, RoiAlignSpec spec, IReadOnlyList<long[]> shapes, DeviceView rois, DeviceBuffer<long>? levelOfRoi)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.PooledHeight < 1 || spec.PooledWidth < 1)
            throw new ArgumentException($"{op}: pooled size {spec.PooledHeight}×{spec.PooledWidth} must be at least 1×1.", nameof(spec));
        if (spec.SamplingRatio < 0)
            throw new ArgumentException($"{op}: sampling ratio {spec.SamplingRatio} is negative; use 0 (adaptive) or a positive count.", nameof(spec));
        if (shapes.Count > MaxLevels)
            throw new ArgumentException($"{op}: {shapes.Count} feature levels; the kernel takes at most {MaxLevels} in one launch.");
        if (spec.Scales.Count != shapes.Count)
            throw new ArgumentException($"{op}: {spec.Scales.Count} scales for {shapes.Count} feature levels; give one scale per level.", nameof(spec));
        for (var l = 0; l < shapes.Count; l++)
        {
            var s = shapes[l];
            if (s.Length != 4)
                throw new ArgumentException($"{op}: level {l} has shape {ElementwiseLayout.Format(s)}; feature levels are (N, C, H, W).");
            if (s[0] != shapes[0][0] || s[1] != shapes[0][1])
                throw new ArgumentException(
                    $"{op}: level {l} has shape {ElementwiseLayout.Format(s)} but level 0 has {ElementwiseLayout.Format(shapes[0])}; every level needs the same N and C.");
            if (s[2] < 1 || s[3] < 1)
                throw new ArgumentException($"{op}: level {l} has shape {ElementwiseLayout.Format(s)}; a feature map needs H and W of at least 1.");
            if (s[2] > int.MaxValue || s[3] > int.MaxValue || s[2] * s[3] > int.MaxValue)
                throw new ArgumentException($"{op}: level {l} of shape {ElementwiseLayout.Format(s)} has more than 2^31 elements per plane.");
            if (!(spec.Scales[l] > 0 && double.IsFinite(spec.Scales[l])))
                throw new ArgumentException($"{op}: scale {spec.Scales[l]} of level {l} must be positive and finite.", nameof(spec));
        }
        if (rois.Shape.Length != 2 || rois.Shape[1] != 5)
            throw new ArgumentException($"{op}: rois has shape {ElementwiseLayout.Format(rois.Shape)}; it must be (R, 5) = (batch index, x1, y1, x2, y2).");
        var r = rois.Shape[0];
        RequireDense(op, nameof(rois), rois, r, 5);
        if (levelOfRoi is not null) RequireBuffer(op, nameof(levelOfRoi), levelOfRoi, r);
        else if (shapes.Count > 1)
            throw new ArgumentException($"{op}: {shapes.Count} feature levels but no level per RoI; pass levelOfRoi (R) int64 from the level assignment.");
        var (n, c) = (shapes[0][0], shapes[0][1]);
        var count = checked(r * c * spec.PooledHeight * spec.PooledWidth);
        if (c * spec.PooledHeight * spec.PooledWidth > int.MaxValue)
            throw new ArgumentException($"{op}: {c} channels × {spec.PooledHeight}×{spec.PooledWidth} bins is more than 2^31 elements per RoI.");
        var args = new RoiAlignArgs
        {
            Rois = r == 0 ? 0 : rois.Address,
            LevelOf = levelOfRoi is null || r == 0 ? 0 : levelOfRoi.Pointer,
            Count = count,
            NumLevels = shapes.Count,
            Batch = checked((int)n),
            Channels = checked((int)c),
            PooledHeight = spec.PooledHeight,
            PooledWidth = spec.PooledWidth,
            SamplingRatio = spec.SamplingRatio,
            Aligned = spec.Aligned ? 1 : 0,
        };
        for (var l = 0; l < shapes.Count; l++)
        {
            args.Levels[l].Height = (int)shapes[l][2];
            args.Levels[l].Width = (int)shapes[l][3];
            args.Levels[l].Scale = spec.Scales[l];
        }
        return args;
    }
}
