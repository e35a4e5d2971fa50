// Multi-level RoI pooling for FPN, as detectron2's ROIPooler: per-image boxes become (R, 5) RoIs with their
// batch index, each RoI is assigned to a pyramid level by its size (FPN paper, Eqn. 1:
// k = floor(k0 + log2(sqrt(area) / 224)), with k0 = 4 and 224 the canonical ImageNet box size, clamped to the
// available levels) on the RoIs' device (IDetectionBackend.AssignFpnLevels: no host wait), and all RoIs are pooled
// with ROIAlign in one multi-level pass, in their original order.
namespace Engine.Detection;

public sealed class RoiPooler
{
    /// <param name="outputSize">pooled size (Ph, Pw), e.g. 7×7 for the box head, 14×14 for the mask head.</param>
    /// <param name="scales">spatial scale of each level, finest first (1/4, 1/8, 1/16, 1/32 for P2..P5); each a power of 2.</param>
    public RoiPooler((int Height, int Width) outputSize, IReadOnlyList<double> scales, int samplingRatio = 0, bool aligned = true,
                     int canonicalBoxSize = 224, int canonicalLevel = 4)
    {
        if (scales.Count == 0) throw new ArgumentException("RoiPooler: no scales given; give 1/stride for each feature level.");
        var levels = scales.Select(s => -Math.Log2(s)).ToArray();
        foreach (var (s, k) in scales.Zip(levels))
            if (!(s > 0) || Math.Abs(k - Math.Round(k)) > 1e-9)
                throw new ArgumentException($"RoiPooler: scale {s} is not a power of 2 (1/stride with a power-of-2 stride); FPN level assignment needs one.");
        MinLevel = (int)Math.Round(levels[0]);
        MaxLevel = (int)Math.Round(levels[^1]);
        if (MaxLevel - MinLevel != scales.Count - 1)
            throw new ArgumentException($"RoiPooler: scales [{string.Join(", ", scales)}] must be consecutive pyramid levels, finest first (e.g. 1/4, 1/8, 1/16, 1/32).");
        if (canonicalBoxSize <= 0) throw new ArgumentException($"RoiPooler: canonical box size {canonicalBoxSize} must be positive.");
        OutputSize = outputSize;
        Scales = scales.ToArray();
        SamplingRatio = samplingRatio;
        Aligned = aligned;
        CanonicalBoxSize = canonicalBoxSize;
        CanonicalLevel = canonicalLevel;
    }

    public (int Height, int Width) OutputSize { get; }
    public IReadOnlyList<double> Scales { get; }
    public int SamplingRatio { get; }
    public bool Aligned { get; }
    public int CanonicalBoxSize { get; }
    public int CanonicalLevel { get; }
    public int MinLevel { get; }
    public int MaxLevel { get; }

    /// <summary>Pools the boxes of each image (boxLists[i]: (R_i, 4) XYXY in image pixels) from features (one (N, C, H_l, W_l)
    /// per level, finest first) into (ΣR_i, C, Ph, Pw), image by image in box order. Differentiable with respect to the features.</summary>
    public Tensor Forward(IReadOnlyList<Tensor> features, IReadOnlyList<Tensor> boxLists)
    {
        if (features.Count != Scales.Count)
            throw new ArgumentException($"RoiPooler: {features.Count} feature levels given to a pooler built for {Scales.Count}.");
        if (features.Count > 0 && features[0].Rank == 4 && boxLists.Count != features[0].Size(0))
            throw new ArgumentException($"RoiPooler: {boxLists.Count} box lists for a batch of {features[0].Size(0)} images; give one (possibly empty) list per image.");
        using var rois = ConvertBoxesToPoolerFormat(boxLists);
        if (features.Count == 1)
            return DetectionOps.RoiAlign(features[0], rois, OutputSize, Scales[0], SamplingRatio, Aligned);
        using var levels = AssignRoisToLevels(rois, new FpnLevelRule(MinLevel, MaxLevel, CanonicalBoxSize, CanonicalLevel));
        return DetectionOps.MultiLevelRoiAlign(features, Scales, rois, levels, OutputSize, SamplingRatio, Aligned);
    }

    /// <summary>(ΣR_i, 5) RoIs (image index, x1, y1, x2, y2) from per-image boxes.</summary>
    public static Tensor ConvertBoxesToPoolerFormat(IReadOnlyList<Tensor> boxLists)
    {
        if (boxLists.Count == 0) throw new ArgumentException("ConvertBoxesToPoolerFormat: no box lists given (one per image is needed).");
        var device = boxLists[0].Device;
        var parts = new List<Tensor>();
        try
        {
            using var noGrad = GradMode.NoGrad();
            for (var i = 0; i < boxLists.Count; i++)
            {
                Boxes.Check(boxLists[i], "ConvertBoxesToPoolerFormat", $"boxLists[{i}]");
                using var index = Tensor.Full([boxLists[i].Size(0), 1], i, DType.Float32, device);
                parts.Add(Tensor.Cat([index, boxLists[i]], 1));
            }
            return Tensor.Cat(parts, 0);
        }
        finally
        {
            foreach (var p in parts) p.Dispose();
        }
    }

    /// <summary>FPN level of each RoI of rois (R, 5) = (batch index, x1, y1, x2, y2), relative to rule.MinLevel: int64 (R)
    /// in [0, MaxLevel − MinLevel] on the RoIs' device, computed there without a host wait (see
    /// <see cref="FpnLevelRule"/>; an RoI of NaN size goes to the finest level).</summary>
    public static Tensor AssignRoisToLevels(Tensor rois, FpnLevelRule rule)
    {
        const string op = "AssignRoisToLevels";
        if (rule.MaxLevel < rule.MinLevel) throw new ArgumentException($"{op}: maxLevel {rule.MaxLevel} is below minLevel {rule.MinLevel}.");
        if (rule.CanonicalBoxSize <= 0) throw new ArgumentException($"{op}: canonical box size {rule.CanonicalBoxSize} must be positive.");
        if (rois.DType != DType.Float32 || rois.Rank != 2 || rois.Size(1) != 5)
            throw new ArgumentException($"{op}: rois must be float32 (R, 5) = (batch index, x1, y1, x2, y2), got {rois.DType.Name()}{ShapeUtil.Format(rois.Shape)}. " +
                                        "Build them from per-image boxes with RoiPooler.ConvertBoxesToPoolerFormat.");
        using var r = rois.Contiguous();
        var levels = Tensor.Empty([rois.Size(0)], DType.Int64, rois.Device);
        try { DetectionBackends.For(rois.Device).AssignFpnLevels(r, rule, levels); }
        catch
        {
            levels.Dispose();
            throw;
        }
        return levels;
    }

    /// <summary>FPN level of each box of the per-image lists, concatenated in order (see <see cref="AssignRoisToLevels"/>).</summary>
    public static Tensor AssignBoxesToLevels(IReadOnlyList<Tensor> boxLists, int minLevel, int maxLevel, int canonicalBoxSize = 224, int canonicalLevel = 4)
    {
        using var rois = ConvertBoxesToPoolerFormat(boxLists);
        return AssignRoisToLevels(rois, new FpnLevelRule(minLevel, maxLevel, canonicalBoxSize, canonicalLevel));
    }
}
