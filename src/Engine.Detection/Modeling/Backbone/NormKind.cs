// The normalization that follows each convolution of the backbone, chosen once at construction
// (detectron2's MODEL.RESNETS.NORM / MODEL.FPN.NORM: "FrozenBN", "BN", "GN", ""), and the factory that builds
// it as the conv's "norm" child so checkpoint names read "res2.0.conv1.norm.running_var".
using Engine.Nn;

namespace Engine.Detection.Modeling.Backbone;

public enum NormKind
{
    /// <summary>No normalization (the conv output goes straight to the ReLU / residual add).</summary>
    None,

    /// <summary>FrozenBatchNorm2d: fixed per-channel affine from pretrained statistics (buffers, never trained).</summary>
    FrozenBatchNorm,

    /// <summary>GroupNorm with trainable weight and bias (Wu &amp; He, 2018).</summary>
    GroupNorm,

    /// <summary>BatchNorm2d: batch statistics while training, running statistics in evaluation, trainable weight and
    /// bias (detectron2's "BN", PyTorch's nn.BatchNorm2d: momentum 0.1, eps 1e-5).</summary>
    BatchNorm,
}

public static class Norms
{
    /// <summary>detectron2's get_norm("GN", C) uses 32 groups.</summary>
    public const int DefaultGroupNormGroups = 32;

    /// <summary>The norm layer of <paramref name="kind"/> for <paramref name="channels"/> channels, or null for None.
    /// FrozenBatchNorm2d starts as the identity exactly as detectron2's does: weight 1, bias 0, mean 0 and
    /// running_var = 1 − eps, so that scale = 1/sqrt(running_var + eps) is 1.</summary>
    public static Module<Tensor, Tensor>? Create(NormKind kind, int channels, int groupNormGroups = DefaultGroupNormGroups, string? owner = null)
    {
        switch (kind)
        {
            case NormKind.None:
                return null;
            case NormKind.FrozenBatchNorm:
                var bn = new FrozenBatchNorm2d(channels);
                using (GradMode.NoGrad()) bn.RunningVar.Value.Fill(1 - bn.Eps);
                return bn;
            case NormKind.GroupNorm:
                if (groupNormGroups <= 0 || channels % groupNormGroups != 0)
                    throw new ArgumentException($"{owner ?? "Norms.Create"}: GroupNorm with {groupNormGroups} groups cannot normalize {channels} channels; " +
                                                "use a channel count that is a multiple of the group count (detectron2 uses 32 groups) or pass a smaller groupNormGroups.");
                return new GroupNorm(groupNormGroups, channels);
            case NormKind.BatchNorm:
                return new BatchNorm2d(channels);
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "Norms.Create: unknown NormKind.");
        }
    }
}
