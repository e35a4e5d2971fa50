// The two-stage detector, as detectron2's GeneralizedRCNN: backbone (ResNet + FPN) → proposal generator (RPN) →
// ROI heads. Training returns the four losses {loss_rpn_cls, loss_rpn_loc, loss_cls, loss_box_reg}; inference
// returns detections per image, rescaled from the batch's (resized) image size to the original one.
// Pixel normalization follows detectron2: the data layer delivers raw pixels (INPUT.FORMAT channel order) in a
// padded ImageList, and the model computes (x − PIXEL_MEAN) / PIXEL_STD itself, then sets the padding to 0 —
// detectron2 normalizes before padding with 0, so the backbone sees the same input.
using Engine.Detection.Modeling.Backbone;
using Engine.Detection.Modeling.ProposalGenerator;
using Engine.Detection.Modeling.RoiHeads;
using Engine.Nn;

namespace Engine.Detection.Modeling.MetaArch;

/// <summary>Training losses by name, or (at inference) detections per image.</summary>
public sealed record DetectorOutput(Dictionary<string, Tensor> Losses, List<Instances> Detections);

public sealed class GeneralizedRcnn : Module
{
    private readonly float[] _pixelMean;
    private readonly float[] _pixelStd;

    public GeneralizedRcnn(BackboneModule backbone, Rpn proposalGenerator, StandardRoiHeads roiHeads, IReadOnlyList<double> pixelMean, IReadOnlyList<double> pixelStd)
    {
        if (pixelMean.Count != pixelStd.Count || pixelMean.Count == 0 || pixelStd.Any(s => !(s > 0)))
            throw new ArgumentException($"GeneralizedRcnn: PIXEL_MEAN [{string.Join(", ", pixelMean)}] and PIXEL_STD [{string.Join(", ", pixelStd)}] must have one entry per channel, std > 0.");
        Backbone = RegisterModule("backbone", backbone);
        ProposalGenerator = RegisterModule("proposal_generator", proposalGenerator);
        RoiHeads = RegisterModule("roi_heads", roiHeads);
        _pixelMean = pixelMean.Select(v => (float)v).ToArray();
        _pixelStd = pixelStd.Select(v => (float)v).ToArray();
    }

    public BackboneModule Backbone { get; }
    public Rpn ProposalGenerator { get; }
    public StandardRoiHeads RoiHeads { get; }
    public IReadOnlyList<float> PixelMean => _pixelMean;
    public IReadOnlyList<float> PixelStd => _pixelStd;

    /// <summary>Optional clock told where each stage of a forward ends (null, the default: nothing is timed).</summary>
    public IStageTimer? StageTimer { get; set; }

    /// <summary>Training mode: losses (targets required, one per image). Evaluation mode: detections.</summary>
    public DetectorOutput Forward(ImageList images, IReadOnlyList<Instances>? targets = null) =>
        IsTraining ? new DetectorOutput(Losses(images, targets), []) : new DetectorOutput([], Inference(images));

    /// <summary>{loss_rpn_cls, loss_rpn_loc, loss_cls, loss_box_reg}; the caller owns the tensors.</summary>
    public Dictionary<string, Tensor> Losses(ImageList images, IReadOnlyList<Instances>? targets)
    {
        using var scope = DisposeScope.Begin();
        StageTimer?.Start();
        var features = Backbone.Forward(Normalize(images));                                          // p2 … p6
        StageTimer?.Lap(DetectorStage.Backbone);
        var (proposals, rpnLosses) = ProposalGenerator.Forward(images, features, targets);
        StageTimer?.Lap(DetectorStage.Rpn);
        var (roiLosses, _) = RoiHeads.Forward(images, features, proposals, targets);
        StageTimer?.Lap(DetectorStage.RoiHeads);
        var losses = rpnLosses.Concat(roiLosses).ToDictionary();
        foreach (var loss in losses.Values) scope.Keep(loss);
        return losses;
    }

    /// <summary>The device of the parameters (Module.To moves them): images and targets must be there.</summary>
    public Device Device => NamedParameters().First().Parameter.Value.Device;

    /// <summary>Detections per image in original-image coordinates; the caller owns them.</summary>
    public List<Instances> Inference(ImageList images)
    {
        using var noGrad = GradMode.NoGrad();
        using var scope = DisposeScope.Begin();
        StageTimer?.Start();
        var features = Backbone.Forward(Normalize(images));
        StageTimer?.Lap(DetectorStage.Backbone);
        var (proposals, _) = ProposalGenerator.Forward(images, features, null);
        StageTimer?.Lap(DetectorStage.Rpn);
        var (_, detections) = RoiHeads.Forward(images, features, proposals, null);
        var result = detections.Select((d, i) => Rescale(d, images.ImageSizes[i], images.OriginalSizes[i])).ToList();
        StageTimer?.Lap(DetectorStage.RoiHeads);
        foreach (var d in result)
        {
            scope.Keep(d.PredBoxes!);
            scope.Keep(d.Scores!);
            scope.Keep(d.PredClasses!);
        }
        return result;
    }

    /// <summary>(x − mean) / std per channel over the padded batch, padding reset to 0. (N, C, H, W) → same.</summary>
    private Tensor Normalize(ImageList images)
    {
        var x = images.Tensor;
        if (x.Size(1) != _pixelMean.Length)
            throw new ArgumentException($"GeneralizedRcnn: images {ShapeUtil.Format(x.Shape)} have {x.Size(1)} channels, PIXEL_MEAN has {_pixelMean.Length}.");
        using var mean = Tensor.From<float>(_pixelMean, [1, _pixelMean.Length, 1, 1], x.Device);
        using var std = Tensor.From<float>(_pixelStd, [1, _pixelStd.Length, 1, 1], x.Device);
        using var centered = x.Sub(mean);
        var normalized = centered.Div(std);
        using (GradMode.NoGrad())
            for (var i = 0; i < images.Count; i++)
            {
                var (h, w) = images.ImageSizes[i];
                using var image = normalized.Select(0, i);
                if (h < x.Size(2))
                    using (var below = image.Narrow(1, h, x.Size(2) - h)) below.Fill(0);
                if (w < x.Size(3))
                    using (var right = image.Narrow(2, w, x.Size(3) - w)) right.Fill(0);
            }
        return normalized;
    }

    /// <summary>detectron2's detector_postprocess: boxes scaled from the input size to the original size, clipped to
    /// it, and empty boxes dropped.</summary>
    private static Instances Rescale(Instances detections, (int Height, int Width) inputSize, (int Height, int Width) outputSize)
    {
        using var scope = DisposeScope.Begin();
        var scaled = Boxes.Scale(detections.PredBoxes!, (double)outputSize.Width / inputSize.Width, (double)outputSize.Height / inputSize.Height);
        var clipped = Boxes.Clip(scaled, outputSize.Height, outputSize.Width);
        var keep = Tensor.IndexFromMask(Boxes.NonEmpty(clipped));
        return new Instances(outputSize)
        {
            PredBoxes = scope.Keep(clipped.IndexSelect(0, keep)),
            Scores = scope.Keep(detections.Scores!.IndexSelect(0, keep)),
            PredClasses = scope.Keep(detections.PredClasses!.IndexSelect(0, keep)),
        };
    }
}
