// The contract between a feature extractor and the detector heads, as detectron2's Backbone: Forward maps a
// batch of images (N, C, H, W) to named feature maps, and OutputShapes tells the heads, before any forward,
// how many channels each map has and its stride (image pixels per feature pixel). SizeDivisibility is what
// the image batch must be padded to (a multiple of the coarsest stride for FPN, 0 = no requirement).
using Engine.Nn;

namespace Engine.Detection.Modeling.Backbone;

/// <summary>Channels and stride of one named feature map (detectron2's ShapeSpec).</summary>
public readonly record struct ShapeSpec(int Channels, int Stride);

/// <summary>detectron2's Backbone (named so that it does not shadow this namespace).</summary>
public abstract class BackboneModule : Module<Tensor, Dictionary<string, Tensor>>
{
    /// <summary>Names of the maps Forward returns, finest first ("res2", …, "res5" or "p2", …, "p6").</summary>
    public abstract IReadOnlyList<string> OutFeatures { get; }

    /// <summary>Channels and stride of every name in <see cref="OutFeatures"/>.</summary>
    public abstract IReadOnlyDictionary<string, ShapeSpec> OutputShapes { get; }

    /// <summary>Input height and width must be multiples of this (0: any size).</summary>
    public virtual int SizeDivisibility => 0;

    /// <summary>Disposes every tensor of a Forward result.</summary>
    public static void DisposeFeatures(IReadOnlyDictionary<string, Tensor> features)
    {
        foreach (var t in features.Values) t.Dispose();
    }
}
