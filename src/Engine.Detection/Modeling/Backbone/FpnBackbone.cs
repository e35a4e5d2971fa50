// The Faster R-CNN backbone of detectron2's build_resnet_fpn_backbone: a bottom-up network (child
// "bottom_up", e.g. a ResNet) and an FPN over its maps. As in detectron2's FPN module, the pyramid's convs are
// children of this module itself, so once the detector registers it as "backbone" the checkpoint names are
// "backbone.fpn_lateral2.weight", "backbone.fpn_output5.bias" and "backbone.bottom_up.res2.0.conv1.weight".
// Images must be padded to a multiple of SizeDivisibility (the coarsest in-feature stride, 32 for res5).
using Engine.Nn;

namespace Engine.Detection.Modeling.Backbone;

public sealed class FpnBackbone : BackboneModule
{
    public FpnBackbone(BackboneModule bottomUp, IReadOnlyList<string> inFeatures, int outChannels, Generator generator,
                       NormKind norm = NormKind.None, FpnFuse fuse = FpnFuse.Sum, bool lastLevelMaxPool = true,
                       int groupNormGroups = Norms.DefaultGroupNormGroups)
    {
        ArgumentNullException.ThrowIfNull(bottomUp);
        Fpn = new Fpn(bottomUp.OutputShapes, inFeatures, outChannels, generator, norm, fuse, lastLevelMaxPool, groupNormGroups);
        // detectron2 registers the lateral/output convs on the FPN backbone itself, before bottom_up
        foreach (var (name, conv) in Fpn.NamedChildren()) RegisterModule(name, conv);
        BottomUp = RegisterModule("bottom_up", bottomUp);
    }

    public BackboneModule BottomUp { get; }

    /// <summary>The pyramid (its convs are this module's fpn_lateral*/fpn_output* children).</summary>
    public Fpn Fpn { get; }

    public override IReadOnlyList<string> OutFeatures => Fpn.OutFeatures;
    public override IReadOnlyDictionary<string, ShapeSpec> OutputShapes => Fpn.OutputShapes;
    public override int SizeDivisibility => Fpn.SizeDivisibility;

    /// <param name="images">(N, C, H, W) with H and W multiples of SizeDivisibility.</param>
    /// <returns>p2 … p6, each (N, OutChannels, H/stride, W/stride) (p6: ⌈H/64⌉); the caller owns them.</returns>
    public override Dictionary<string, Tensor> Forward(Tensor images)
    {
        var d = SizeDivisibility;
        if (images.Rank == 4 && (images.Size(2) % d != 0 || images.Size(3) % d != 0))
            throw new ArgumentException($"FpnBackbone: image batch {ShapeUtil.Format(images.Shape)} has a size that is not a multiple of {d}; " +
                                        $"pad H and W up to multiples of {d} (SizeDivisibility) before the backbone, as detectron2's ImageList does.");
        var bottomUp = BottomUp.Forward(images);
        try
        {
            return Fpn.Forward(bottomUp);
        }
        finally
        {
            DisposeFeatures(bottomUp);
        }
    }
}
