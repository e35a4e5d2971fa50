// Builds the backbones of the detector from explicit arguments, as detectron2's build_resnet_backbone and
// build_resnet_fpn_backbone do from MODEL.RESNETS / MODEL.FPN (the config is read elsewhere, once). A width
// multiplier scales every channel count of the ResNet (stem, bottleneck width, res2 outputs) for slim
// variants such as the embedded demo's half-width ResNet-18; 1 gives detectron2's sizes exactly.
namespace Engine.Detection.Modeling.Backbone;

public static class BackboneFactory
{
    /// <summary>detectron2's ResNet: stem 64, bottleneck width 64, res2 outputs 256 (64 for depth 18/34), each
    /// multiplied by <paramref name="widthMultiplier"/>. freezeAt defaults to MODEL.BACKBONE.FREEZE_AT = 2.</summary>
    public static ResNet BuildResNet(int depth, Generator generator, IReadOnlyList<string>? outFeatures = null, int freezeAt = 2,
                                     NormKind norm = NormKind.FrozenBatchNorm, double widthMultiplier = 1, bool strideInOneByOne = false,
                                     int groupNormGroups = Norms.DefaultGroupNormGroups, int inChannels = 3)
    {
        var width = Scale(64, widthMultiplier);
        return new ResNet(depth, generator, outFeatures, freezeAt, norm, inChannels, stemOutChannels: width, widthPerGroup: width,
                          res2OutChannels: ResNet.UsesBasicBlocks(depth) ? width : 4 * width, strideInOneByOne, groupNormGroups);
    }

    /// <summary>ResNet + FPN over res2 … res5 with P6 by max pooling: outputs p2 … p6 of <paramref name="fpnOutChannels"/>
    /// channels (MODEL.FPN.OUT_CHANNELS = 256, MODEL.FPN.NORM = "").</summary>
    public static FpnBackbone BuildResNetFpn(int depth, Generator generator, int freezeAt = 2, NormKind norm = NormKind.FrozenBatchNorm,
                                             int fpnOutChannels = 256, NormKind fpnNorm = NormKind.None, FpnFuse fuse = FpnFuse.Sum,
                                             double widthMultiplier = 1, bool strideInOneByOne = false,
                                             int groupNormGroups = Norms.DefaultGroupNormGroups, int inChannels = 3)
    {
        string[] inFeatures = ["res2", "res3", "res4", "res5"];
        var bottomUp = BuildResNet(depth, generator, inFeatures, freezeAt, norm, widthMultiplier, strideInOneByOne, groupNormGroups, inChannels);
        try
        {
            return new FpnBackbone(bottomUp, inFeatures, fpnOutChannels, generator, fpnNorm, fuse, lastLevelMaxPool: true, groupNormGroups);
        }
        catch
        {
            bottomUp.Dispose();
            throw;
        }
    }

    private static int Scale(int channels, double multiplier)
    {
        if (!(multiplier > 0))
            throw new ArgumentOutOfRangeException(nameof(multiplier), $"BackboneFactory: widthMultiplier must be positive, got {multiplier}.");
        var scaled = channels * multiplier;
        if (scaled < 1 || Math.Abs(scaled - Math.Round(scaled)) > 1e-9)
            throw new ArgumentException($"BackboneFactory: widthMultiplier {multiplier} gives {scaled} stem channels; choose a multiplier that makes {channels}·m a positive whole number (e.g. 0.5, 0.25).");
        return (int)Math.Round(scaled);
    }
}
