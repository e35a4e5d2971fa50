// The residual blocks of ResNet (He et al. 2016, "Deep Residual Learning", Fig. 2 and Fig. 5), built as
// detectron2 builds them so that checkpoint names match: each conv is a bias-free Conv2d with its norm as the
// child "norm", a projection "shortcut" (1×1 conv + norm, registered first) exists only where the channel
// count changes, and the ReLU comes after the residual add. Every conv gets c2_msra_fill.
//   BasicBlock (ResNet-18/34):      3×3 (stride) → ReLU → 3×3,                     + shortcut → ReLU
//   BottleneckBlock (ResNet-50/101): 1×1 → ReLU → 3×3 → ReLU → 1×1 (×4 channels),  + shortcut → ReLU
// The bottleneck puts the block's stride on the 3×3 conv (torchvision / fb.torch, detectron2's
// STRIDE_IN_1X1 = False) or on the first 1×1 (the original MSRA models, STRIDE_IN_1X1 = True).
using Engine.Nn;

namespace Engine.Detection.Modeling.Backbone;

/// <summary>A block of a ResNet stage: (N, InChannels, H, W) → (N, OutChannels, ⌈H/Stride⌉, ⌈W/Stride⌉).</summary>
public abstract class ResNetBlock : Module<Tensor, Tensor>
{
    protected ResNetBlock(int inChannels, int outChannels, int stride)
    {
        if (inChannels <= 0 || outChannels <= 0 || stride <= 0)
            throw new ArgumentException($"{GetType().Name}: channels and stride must be positive, got {inChannels} → {outChannels}, stride {stride}.");
        (InChannels, OutChannels, Stride) = (inChannels, outChannels, stride);
    }

    public int InChannels { get; }
    public int OutChannels { get; }
    public int Stride { get; }

    /// <summary>The projection of the input onto the output shape, or null when the block keeps the channel count
    /// (then the input itself is added; detectron2 never strides without changing channels).</summary>
    public abstract Conv2d? Shortcut { get; }

    /// <summary>The residual branch F(x) without the final ReLU.</summary>
    protected abstract Tensor Residual(Tensor x);

    public override Tensor Forward(Tensor x)
    {
        if (x.Rank != 4 || x.Size(1) != InChannels)
            throw new ArgumentException($"{this}: expected an (N, {InChannels}, H, W) input, got {ShapeUtil.Format(x.Shape)}.");
        using var branch = Residual(x);
        var projected = Shortcut?.Forward(x);
        try
        {
            return branch.AddRelu(projected ?? x);
        }
        finally
        {
            projected?.Dispose();
        }
    }

    /// <summary>A bias-free conv with the chosen norm as its "norm" child, c2_msra_fill initialized.</summary>
    internal static Conv2d ConvNorm(int inChannels, int outChannels, int kernel, int stride, int padding, bool relu,
                                    NormKind norm, int groupNormGroups, Generator generator, string owner) =>
        C2Init.MsraFill(new Conv2d(inChannels, outChannels, kernel, generator, stride: stride, padding: padding, bias: false,
                                   norm: Norms.Create(norm, outChannels, groupNormGroups, owner), relu: relu), generator);

    public override string ToString() => $"{GetType().Name}({InChannels} → {OutChannels}, stride {Stride})";
}

/// <summary>Two 3×3 convs (ResNet-18/34); children shortcut?, conv1, conv2.</summary>
public sealed class BasicBlock : ResNetBlock
{
    public BasicBlock(int inChannels, int outChannels, int stride, NormKind norm, Generator generator,
                      int groupNormGroups = Norms.DefaultGroupNormGroups)
        : base(inChannels, outChannels, stride)
    {
        const string owner = nameof(BasicBlock);
        if (inChannels != outChannels)
            Shortcut = RegisterModule("shortcut", ConvNorm(inChannels, outChannels, 1, stride, 0, false, norm, groupNormGroups, generator, owner));
        Conv1 = RegisterModule("conv1", ConvNorm(inChannels, outChannels, 3, stride, 1, true, norm, groupNormGroups, generator, owner));
        Conv2 = RegisterModule("conv2", ConvNorm(outChannels, outChannels, 3, 1, 1, false, norm, groupNormGroups, generator, owner));
    }

    public override Conv2d? Shortcut { get; }
    public Conv2d Conv1 { get; }
    public Conv2d Conv2 { get; }

    protected override Tensor Residual(Tensor x)
    {
        using var h = Conv1.Forward(x);                                   // (N, Cout, H/s, W/s), ReLU applied
        return Conv2.Forward(h);
    }
}

/// <summary>1×1 → 3×3 → 1×1 with a narrower middle (ResNet-50/101); children shortcut?, conv1, conv2, conv3.</summary>
public sealed class BottleneckBlock : ResNetBlock
{
    public BottleneckBlock(int inChannels, int outChannels, int bottleneckChannels, int stride, NormKind norm, Generator generator,
                           bool strideInOneByOne = false, int groupNormGroups = Norms.DefaultGroupNormGroups)
        : base(inChannels, outChannels, stride)
    {
        const string owner = nameof(BottleneckBlock);
        if (bottleneckChannels <= 0)
            throw new ArgumentException($"{owner}: bottleneckChannels must be positive, got {bottleneckChannels}.");
        BottleneckChannels = bottleneckChannels;
        StrideInOneByOne = strideInOneByOne;
        var (stride1x1, stride3x3) = strideInOneByOne ? (stride, 1) : (1, stride);
        if (inChannels != outChannels)
            Shortcut = RegisterModule("shortcut", ConvNorm(inChannels, outChannels, 1, stride, 0, false, norm, groupNormGroups, generator, owner));
        Conv1 = RegisterModule("conv1", ConvNorm(inChannels, bottleneckChannels, 1, stride1x1, 0, true, norm, groupNormGroups, generator, owner));
        Conv2 = RegisterModule("conv2", ConvNorm(bottleneckChannels, bottleneckChannels, 3, stride3x3, 1, true, norm, groupNormGroups, generator, owner));
        Conv3 = RegisterModule("conv3", ConvNorm(bottleneckChannels, outChannels, 1, 1, 0, false, norm, groupNormGroups, generator, owner));
    }

    public int BottleneckChannels { get; }
    public bool StrideInOneByOne { get; }
    public override Conv2d? Shortcut { get; }
    public Conv2d Conv1 { get; }
    public Conv2d Conv2 { get; }
    public Conv2d Conv3 { get; }

    protected override Tensor Residual(Tensor x)
    {
        using var h1 = Conv1.Forward(x);                                  // (N, B, ·, ·), ReLU applied
        using var h2 = Conv2.Forward(h1);                                 // (N, B, H/s, W/s), ReLU applied
        return Conv3.Forward(h2);                                         // (N, Cout, H/s, W/s)
    }
}

/// <summary>The stem: 7×7 stride-2 conv (child "conv1" with its norm) → ReLU → 3×3 stride-2 max pool (padding 1);
/// (N, C, H, W) → (N, OutChannels, ⌈⌈H/2⌉/2⌉, ⌈⌈W/2⌉/2⌉), stride 4.</summary>
public sealed class BasicStem : Module<Tensor, Tensor>
{
    public const int StemStride = 4;

    public BasicStem(int inChannels, int outChannels, NormKind norm, Generator generator, int groupNormGroups = Norms.DefaultGroupNormGroups)
    {
        if (inChannels <= 0 || outChannels <= 0)
            throw new ArgumentException($"BasicStem: channels must be positive, got {inChannels} → {outChannels}.");
        (InChannels, OutChannels) = (inChannels, outChannels);
        Conv1 = RegisterModule("conv1", ResNetBlock.ConvNorm(inChannels, outChannels, 7, 2, 3, true, norm, groupNormGroups, generator, nameof(BasicStem)));
    }

    public int InChannels { get; }
    public int OutChannels { get; }
    public Conv2d Conv1 { get; }

    public override Tensor Forward(Tensor x)
    {
        using var h = Conv1.Forward(x);                                   // (N, OutChannels, ⌈H/2⌉, ⌈W/2⌉), ReLU applied
        return h.MaxPool2d(3, 2, 1);
    }
}
