// ROIAlign (He et al., Mask R-CNN, 2017) with torchvision's exact semantics, single-level and multi-level
// (FPN: every RoI pooled from its own level in one pass), differentiable with respect to the feature maps.
// The math and the CPU strategy are described in Backends/CpuDetectionBackend.RoiAlign.cs; this file
// validates, allocates and records the op on the autograd tape.
using Engine.Detection.Autograd;

namespace Engine.Detection;

public static partial class DetectionOps
{
    /// <summary>Pools each RoI of <paramref name="rois"/> (R, 5) = (batch index, x1, y1, x2, y2) in image coordinates from
    /// <paramref name="features"/> (N, C, H, W) into (R, C, Ph, Pw). spatialScale maps image to feature coordinates (1/stride);
    /// samplingRatio 0 takes ceil(roi size / pooled size) samples per bin and axis; aligned shifts by half a pixel.
    /// Differentiable with respect to the features.</summary>
    public static Tensor RoiAlign(Tensor features, Tensor rois, (int Height, int Width) outputSize, double spatialScale,
                                  int samplingRatio = 0, bool aligned = true) =>
        RoiAlignCore("RoiAlign", [features], [spatialScale], rois, null, outputSize, samplingRatio, aligned);

    /// <summary>ROIAlign over several feature levels (e.g. P2..P5) in one pass: RoI i is pooled from
    /// levels[levelOfEachRoi[i]] with scales[levelOfEachRoi[i]]. levelOfEachRoi: int64 (R) in [0, levels.Count).
    /// Output (R, C, Ph, Pw) in the RoIs' order. Differentiable with respect to every level.</summary>
    public static Tensor MultiLevelRoiAlign(IReadOnlyList<Tensor> levels, IReadOnlyList<double> scales, Tensor rois, Tensor levelOfEachRoi,
                                            (int Height, int Width) outputSize, int samplingRatio = 0, bool aligned = true)
    {
        const string op = "MultiLevelRoiAlign";
        if (levelOfEachRoi.DType != DType.Int64 || levelOfEachRoi.Rank != 1)
            throw new ArgumentException($"{op}: levelOfEachRoi must be int64 of shape (R), got {levelOfEachRoi.DType.Name()}{ShapeUtil.Format(levelOfEachRoi.Shape)}.");
        return RoiAlignCore(op, levels, scales, rois, levelOfEachRoi, outputSize, samplingRatio, aligned);
    }

    private static Tensor RoiAlignCore(string op, IReadOnlyList<Tensor> levels, IReadOnlyList<double> scales, Tensor rois, Tensor? levelOfEachRoi,
                                       (int Height, int Width) outputSize, int samplingRatio, bool aligned)
    {
        var geometry = ValidateRoiAlign(op, levels, scales, rois, levelOfEachRoi, outputSize, samplingRatio, aligned);
        var device = rois.Device;
        var backend = DetectionBackends.For(device);
        var r = rois.Size(0);
        var c = levels[0].Size(1);
        var output = Tensor.Empty([r, c, outputSize.Height, outputSize.Width], DType.Float32, device);
        var contiguous = new List<Tensor>();
        try
        {
            using (GradMode.NoGrad())
            {
                foreach (var level in levels) contiguous.Add(level.Contiguous());
                contiguous.Add(rois.Contiguous());
                if (levelOfEachRoi is not null) contiguous.Add(levelOfEachRoi.Contiguous());
            }
            backend.RoiAlignForward(geometry, contiguous.Take(levels.Count).ToList(), contiguous[levels.Count], levelOfEachRoi is null ? null : contiguous[^1], output);

            var inputs = levels.ToArray();
            if (TapeBridge.IsNeeded(inputs))
            {
                var needs = inputs.Select(t => t.RequiresGrad).ToArray();
                var shapes = inputs.Select(t => t.ShapeArray()).ToArray();
                var roisC = contiguous[levels.Count];
                var levelsC = levelOfEachRoi is null ? null : contiguous[^1];
                TapeBridge.Record(output, "roi_align", inputs, save =>
                {
                    var savedRois = save(roisC);
                    var savedLevels = levelsC is null ? null : save(levelsC);
                    return g =>
                    {
                        var grads = new Tensor?[shapes.Length];
                        try
                        {
                            for (var l = 0; l < shapes.Length; l++)
                                if (needs[l]) grads[l] = Tensor.Empty(shapes[l], DType.Float32, g.Device);
                            using var gc = g.Contiguous();
                            backend.RoiAlignBackward(geometry, gc, savedRois, savedLevels, grads);
                        }
                        catch
                        {
                            foreach (var t in grads) t?.Dispose();
                            throw;
                        }
                        return grads;
                    };
                });
            }
        }
        catch
        {
            output.Dispose();
            throw;
        }
        finally
        {
            foreach (var t in contiguous) t.Dispose();
        }
        return output;
    }

    private static RoiAlignGeometry ValidateRoiAlign(string op, IReadOnlyList<Tensor> levels, IReadOnlyList<double> scales, Tensor rois, Tensor? levelOfEachRoi,
                                                     (int Height, int Width) outputSize, int samplingRatio, bool aligned)
    {
        if (levels.Count == 0) throw new ArgumentException($"{op}: no feature levels given.");
        if (scales.Count != levels.Count)
            throw new ArgumentException($"{op}: {levels.Count} feature levels but {scales.Count} scales; give one spatial scale (1/stride) per level.");
        var first = levels[0];
        for (var l = 0; l < levels.Count; l++)
        {
            var f = levels[l];
            if (f.DType != DType.Float32 || f.Rank != 4)
                throw new ArgumentException($"{op}: feature level {l} must be float32 (N, C, H, W), got {f.DType.Name()}{ShapeUtil.Format(f.Shape)}.");
            if (f.Size(0) != first.Size(0) || f.Size(1) != first.Size(1))
                throw new ArgumentException($"{op}: feature level {l} has shape {ShapeUtil.Format(f.Shape)} but level 0 has {ShapeUtil.Format(first.Shape)}; " +
                                            "every level needs the same batch size N and channel count C.");
            if (f.Device != rois.Device)
                throw new ArgumentException($"{op}: feature level {l} is on {f.Device} but rois are on {rois.Device}; move them to one device.");
            if (!(scales[l] > 0 && double.IsFinite(scales[l])))
                throw new ArgumentException($"{op}: spatial scale {scales[l]} of level {l} must be positive and finite (1/stride, e.g. 0.125).");
            if ((f.Size(2) == 0 || f.Size(3) == 0) && rois.Numel > 0)
                throw new ArgumentException($"{op}: feature level {l} has an empty spatial size {ShapeUtil.Format(f.Shape)}; RoIs cannot be pooled from it.");
        }
        if (rois.DType != DType.Float32 || rois.Rank != 2 || rois.Size(1) != 5)
            throw new ArgumentException($"{op}: rois must be float32 (R, 5) = (batch index, x1, y1, x2, y2), got {rois.DType.Name()}{ShapeUtil.Format(rois.Shape)}. " +
                                        "Build them from per-image boxes with RoiPooler.ConvertBoxesToPoolerFormat.");
        if (levelOfEachRoi is not null)
        {
            if (levelOfEachRoi.Size(0) != rois.Size(0))
                throw new ArgumentException($"{op}: levelOfEachRoi has {levelOfEachRoi.Size(0)} entries for {rois.Size(0)} RoIs; give one level per RoI.");
            if (levelOfEachRoi.Device != rois.Device)
                throw new ArgumentException($"{op}: levelOfEachRoi is on {levelOfEachRoi.Device} but rois are on {rois.Device}.");
        }
        if (outputSize.Height <= 0 || outputSize.Width <= 0)
            throw new ArgumentException($"{op}: output size {outputSize.Height}×{outputSize.Width} must be positive (e.g. 7×7).");
        if (samplingRatio < 0)
            throw new ArgumentException($"{op}: samplingRatio {samplingRatio} must be ≥ 0 (0 = adaptive: ceil(roi size / output size) per bin).");
        return new RoiAlignGeometry(outputSize.Height, outputSize.Width, scales.ToArray(), samplingRatio, aligned);
    }
}
