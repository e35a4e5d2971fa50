// The detection backend of a cuda:N device: every member of IDetectionBackend on the stream of that device's
// CudaBackend. ROIAlign runs through RoiAlignKernels (one forward launch over all levels; backward: clear, then
// one atomic scatter), NMS through NmsKernels (class-aware when class ids are given), and pairwise IoU, the box
// coder, the FPN levels and the proposal matcher through box_ops.cu (CudaBoxOpsKernels).
//
// Host synchronizations, each where it happens:
//   Nms                 one read of the kept count (the return value); the error record is checked after it
//   Nms beyond NmsKernels.MaxBoxes boxes: copies to the host, the CPU backend's NMS, and the kept indices back
// Everything else is queued without a wait. EncodeBoxes' non-positive source boxes and MatchProposals' negative or
// NaN qualities are found on the device and raised, with the CPU backend's message, at the next host wait on the
// stream (DeviceErrorLog), not at the call as on the CPU.
// Deviation from the interface: RoiAlignBackward scatters with atomicAdd, so its gradients are not bit-identical
// from run to run (the order of the float additions varies); they agree with the CPU backend within rounding.
using Engine.Cuda.Backend;
using Engine.Cuda.Kernels;
using Engine.Detection;
using static Engine.Cuda.Ops.CudaTensors;

namespace Engine.Cuda.Ops;

public sealed class CudaDetectionBackend : IDetectionBackend, IDisposable
{
    private readonly CudaBackend _backend;
    private readonly Lazy<CudaBoxOpsKernels> _boxes;
    private readonly Lazy<RoiAlignKernels> _roiAlign;
    private readonly Lazy<NmsKernels> _nms;
    private readonly Lock _nmsGate = new();

    /// <summary>The detection backend of <paramref name="backend"/>'s device, launching on its stream.</summary>
    public CudaDetectionBackend(CudaBackend backend)
    {
        _backend = backend ?? throw new ArgumentNullException(nameof(backend));
        var (device, compiler) = (backend.CudaDevice, backend.Compiler);
        _boxes = new(() => new CudaBoxOpsKernels(device, compiler));
        _roiAlign = new(() => new RoiAlignKernels(device, compiler));
        _nms = new(() => new NmsKernels(device, compiler));
    }

    public Device Device => _backend.Device;

    private CudaDevice Gpu => _backend.CudaDevice;

    private CudaStream Stream => _backend.Stream;

    private void Float(string op, string name, Tensor t) => Require(op, name, t, Device, DType.Float32);

    private void Long(string op, string name, Tensor t) => Require(op, name, t, Device, DType.Int64);

    public void PairwiseIou(Tensor a, Tensor b, Tensor iou)
    {
        const string op = "PairwiseIou";
        Float(op, nameof(a), a);
        Float(op, nameof(b), b);
        Float(op, nameof(iou), iou);
        _boxes.Value.PairwiseIou(Ptr(a), Ptr(b), Ptr(iou), a.Size(0), b.Size(0), Stream);
    }

    /// <summary>As the interface; a source box of non-positive size is raised at the next host wait on the stream
    /// (the deltas of that call are then not to be used), with the CPU backend's message.</summary>
    public void EncodeBoxes(Tensor src, Tensor target, BoxCoderWeights weights, Tensor deltas)
    {
        const string op = "GetDeltas";
        Float(op, nameof(src), src);
        Float(op, nameof(target), target);
        Float(op, nameof(deltas), deltas);
        _boxes.Value.EncodeBoxes(Ptr(src), Ptr(target), weights, Ptr(deltas), src.Size(0), _backend.Errors.DevicePointer, Stream);
    }

    public void DecodeBoxes(Tensor deltas, Tensor boxes, BoxCoderWeights weights, double scaleClamp, Tensor output)
    {
        const string op = "ApplyDeltas";
        Float(op, nameof(deltas), deltas);
        Float(op, nameof(boxes), boxes);
        Float(op, nameof(output), output);
        _boxes.Value.DecodeBoxes(Ptr(deltas), Ptr(boxes), weights, scaleClamp, Ptr(output), boxes.Size(0), deltas.Size(1) / 4, Stream);
    }

    public void AssignFpnLevels(Tensor rois, FpnLevelRule rule, Tensor levels)
    {
        const string op = "AssignRoisToLevels";
        Float(op, nameof(rois), rois);
        Long(op, nameof(levels), levels);
        _boxes.Value.AssignFpnLevels(Ptr(rois), rule, Ptr(levels), rois.Size(0), Stream);
    }

    private static RoiAlignSpec Spec(RoiAlignGeometry g, int levels) =>
        new(g.PooledHeight, g.PooledWidth, g.Scales.Take(levels).ToArray(), g.SamplingRatio, g.Aligned);

    public void RoiAlignForward(RoiAlignGeometry geometry, IReadOnlyList<Tensor> features, Tensor rois, Tensor? levels, Tensor output)
    {
        const string op = "RoiAlign";
        for (var l = 0; l < features.Count; l++) Float(op, $"features[{l}]", features[l]);
        Float(op, nameof(rois), rois);
        Float(op, nameof(output), output);
        if (levels is not null) Long(op, nameof(levels), levels);
        // without a level per RoI every RoI pools from level 0, so the other levels need not travel to the kernel
        var used = levels is null ? 1 : features.Count;
        _roiAlign.Value.Forward(Spec(geometry, used), features.Take(used).Select(f => View(Gpu, f)).ToList(), View(Gpu, rois),
                                levels is null ? null : Buffer<long>(Gpu, levels), Buffer<float>(Gpu, output), Stream);
    }

    /// <summary>As the interface, except that the gradients are not bit-reproducible: the kernel scatters with
    /// atomicAdd, so the order of the float additions into one feature element varies from run to run.</summary>
    public void RoiAlignBackward(RoiAlignGeometry geometry, Tensor gradOutput, Tensor rois, Tensor? levels, IReadOnlyList<Tensor?> gradFeatures)
    {
        const string op = "RoiAlignBackward";
        Float(op, nameof(gradOutput), gradOutput);
        Float(op, nameof(rois), rois);
        if (levels is not null) Long(op, nameof(levels), levels);
        for (var l = 0; l < gradFeatures.Count; l++)
            if (gradFeatures[l] is { } g) Float(op, $"gradFeatures[{l}]", g);
        var used = levels is null ? Math.Min(1, gradFeatures.Count) : gradFeatures.Count;
        // levels no RoI pools from (all but level 0 without a level per RoI) are overwritten with zeros
        for (var l = used; l < gradFeatures.Count; l++)
            if (gradFeatures[l] is { } g) _backend.Fill(g, 0);
        if (!gradFeatures.Take(used).Any(g => g is not null)) return;
        _roiAlign.Value.Backward(Spec(geometry, used), View(Gpu, gradOutput), View(Gpu, rois), levels is null ? null : Buffer<long>(Gpu, levels),
                                 gradFeatures.Take(used).Select(g => g is null ? (DeviceView?)null : View(Gpu, g)).ToList(), Stream);
    }

    /// <summary>As the interface. HOST SYNC: reads the kept count. Above <see cref="NmsKernels.MaxBoxes"/> boxes the
    /// inputs are copied to the host, the CPU backend runs the NMS and the kept indices are copied back.</summary>
    public int Nms(Tensor boxes, Tensor scores, Tensor? classIds, double iouThreshold, Tensor keep)
    {
        const string op = "Nms";
        Float(op, nameof(boxes), boxes);
        Float(op, nameof(scores), scores);
        Long(op, nameof(keep), keep);
        if (classIds is not null) Long(op, nameof(classIds), classIds);
        var r = boxes.Size(0);
        if (r == 0) return 0;
        if (r > NmsKernels.MaxBoxes || double.IsNaN(iouThreshold)) return NmsOnHost(boxes, scores, classIds, iouThreshold, keep);
        int count;
        lock (_nmsGate)
            count = _nms.Value.Run(View(Gpu, boxes), View(Gpu, scores), classIds is null ? null : Buffer<long>(Gpu, classIds), iouThreshold,
                                   Buffer<long>(Gpu, keep), Stream);
        _backend.Errors.ThrowIfSet();
        return count;
    }

    /// <summary>The CPU backend's NMS on host copies (inputs the kernels do not take: more than MaxBoxes boxes, or a
    /// NaN threshold, which suppresses nothing).</summary>
    private int NmsOnHost(Tensor boxes, Tensor scores, Tensor? classIds, double iouThreshold, Tensor keep)
    {
        using var hostBoxes = boxes.To(Engine.Device.Cpu);
        using var hostScores = scores.To(Engine.Device.Cpu);
        using var hostClasses = classIds?.To(Engine.Device.Cpu);
        using var hostKeep = Tensor.Zeros(keep.ShapeArray(), DType.Int64, Engine.Device.Cpu);
        var count = DetectionBackends.Cpu.Nms(hostBoxes, hostScores, hostClasses, iouThreshold, hostKeep);
        _backend.CopyFromHost(hostKeep.DataPointer, keep);
        return count;
    }

    /// <summary>As the interface; a negative or NaN quality is raised at the next host wait on the stream.</summary>
    public void MatchProposals(Tensor quality, MatcherRule rule, Tensor matches, Tensor labels)
    {
        const string op = "Matcher";
        Float(op, nameof(quality), quality);
        Long(op, nameof(matches), matches);
        Long(op, nameof(labels), labels);
        if (rule.Thresholds.Count > CudaBoxOpsKernels.MaxThresholds || rule.Labels.Count != rule.Thresholds.Count + 1)
            throw new ArgumentException(
                $"{op}: {rule.Thresholds.Count} thresholds and {rule.Labels.Count} labels; the CUDA matcher takes at most " +
                $"{CudaBoxOpsKernels.MaxThresholds} thresholds and exactly one label more than thresholds.", nameof(rule));
        var (m, n) = (quality.Size(0), quality.Size(1));
        // scratch for each ground truth's highest quality; freed in stream order after the launches that read it
        using var highest = rule.AllowLowQualityMatches && m > 0 ? Tensor.Empty([m], DType.Float32, Device) : null;
        _boxes.Value.MatchProposals(Ptr(quality), m, n, rule, Ptr(matches), Ptr(labels), PtrOrZero(highest), _backend.Errors.DevicePointer, Stream);
    }

    public void Dispose()
    {
        if (_boxes.IsValueCreated) _boxes.Value.Dispose();
        if (_roiAlign.IsValueCreated) _roiAlign.Value.Dispose();
        if (_nms.IsValueCreated) _nms.Value.Dispose();
    }
}
