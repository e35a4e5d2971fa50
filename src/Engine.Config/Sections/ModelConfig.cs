// MODEL: the Faster/Mask R-CNN FPN detector — ResNet backbone, FPN, anchors, RPN, RoI heads — and the
// long-tail components plugged into it (LongTailConfig). Key names and defaults follow detectron2
// (config/defaults.py + configs/Base-RCNN-FPN.yaml); keys for features the engine does not build
// (keypoints, cascade, deformable convs, panoptic heads) are absent and rejected if written.
namespace Engine.Config;

public sealed record ModelConfig
{
    /// <summary>"cpu", "cuda" or "cuda:N".</summary>
    public string Device { get; init; } = "cuda";

    /// <summary>Checkpoint (safetensors) or pretrained backbone to start from; empty starts from scratch.</summary>
    public string Weights { get; init; } = "";

    /// <summary>Per-channel mean subtracted from input pixels, in INPUT.FORMAT channel order (BGR defaults of MSRA weights).</summary>
    public ValueList<double> PixelMean { get; init; } = [103.530, 116.280, 123.675];

    /// <summary>Per-channel divisor; 1 for MSRA (Caffe) weights, ImageNet std for torchvision-style weights and from-scratch runs.</summary>
    public ValueList<double> PixelStd { get; init; } = [1.0, 1.0, 1.0];

    public bool MaskOn { get; init; }

    /// <summary>Module groups that train; empty trains all (subject to BACKBONE.FREEZE_AT). Decoupled stages
    /// (BAGS, BACL stage 2) list the few groups they retrain.</summary>
    public ValueList<ModuleGroup> TrainableModules { get; init; } = [];

    /// <summary>Module groups freshly initialized instead of loaded from MODEL.WEIGHTS (BAGS replaces the classifier).</summary>
    public ValueList<ModuleGroup> ReinitModules { get; init; } = [];

    public BackboneConfig Backbone { get; init; } = new();
    public ResnetsConfig Resnets { get; init; } = new();
    public FpnConfig Fpn { get; init; } = new();
    public AnchorGeneratorConfig AnchorGenerator { get; init; } = new();
    public RpnConfig Rpn { get; init; } = new();
    public RoiHeadsConfig RoiHeads { get; init; } = new();
    public RoiBoxHeadConfig RoiBoxHead { get; init; } = new();
    public RoiMaskHeadConfig RoiMaskHead { get; init; } = new();
    public LongTailConfig LongTail { get; init; } = new();
}

/// <summary>Named parts of the detector, for freezing and re-initialization.</summary>
public enum ModuleGroup
{
    [ConfigValue("backbone")] Backbone,
    [ConfigValue("fpn")] Fpn,
    [ConfigValue("rpn")] Rpn,
    /// <summary>The box head's shared FCs (producing the RoI embeddings).</summary>
    [ConfigValue("box_head")] BoxHead,
    [ConfigValue("classifier")] Classifier,
    [ConfigValue("regressor")] Regressor,
    [ConfigValue("mask_head")] MaskHead,
}

public sealed record BackboneConfig
{
    /// <summary>Stages frozen from the input: 0 none, 1 the stem, k ≥ 2 the stem and res2..res(k). detectron2: 2.</summary>
    public int FreezeAt { get; init; } = 2;
}

/// <summary>Normalization layers of the backbone and FPN ("GN" = GroupNorm with 32 groups, as detectron2's get_norm).</summary>
public enum NormType
{
    [ConfigValue("")] None,
    [ConfigValue("FrozenBN")] FrozenBatchNorm,
    [ConfigValue("BN")] BatchNorm,
    [ConfigValue("GN")] GroupNorm,
}

public sealed record ResnetsConfig
{
    /// <summary>18, 34 (basic blocks) or 50, 101 (bottleneck blocks).</summary>
    public int Depth { get; init; } = 50;

    public ValueList<string> OutFeatures { get; init; } = ["res2", "res3", "res4", "res5"];

    /// <summary>Groups of the 3×3 convolutions in bottleneck blocks (1 = ResNet, 32 = ResNeXt).</summary>
    public int NumGroups { get; init; } = 1;

    public NormType Norm { get; init; } = NormType.FrozenBatchNorm;
    public int WidthPerGroup { get; init; } = 64;

    /// <summary>Stride 2 in the first 1×1 convolution of a bottleneck (MSRA weights) rather than in the 3×3 (torchvision).</summary>
    [ConfigKey("STRIDE_IN_1X1")]
    public bool StrideIn1x1 { get; init; } = true;

    /// <summary>Output channels of res2; 256 for R50/R101, 64 for R18/R34 (less for slimmed models); doubled per stage.</summary>
    public int Res2OutChannels { get; init; } = 256;

    public int StemOutChannels { get; init; } = 64;
}

public sealed record FpnConfig
{
    public ValueList<string> InFeatures { get; init; } = ["res2", "res3", "res4", "res5"];
    public int OutChannels { get; init; } = 256;
    public NormType Norm { get; init; } = NormType.None;
}

public sealed record AnchorGeneratorConfig
{
    /// <summary>Anchor sizes in pixels, one list per RPN input level (or a single list for all levels).</summary>
    public ValueList<ValueList<double>> Sizes { get; init; } = [[32], [64], [128], [256], [512]];

    /// <summary>Height/width ratios, one list per level or a single list shared by all.</summary>
    public ValueList<ValueList<double>> AspectRatios { get; init; } = [[0.5, 1.0, 2.0]];

    /// <summary>Anchor centre offset in units of the stride; 0 puts centres on the top-left of each cell (detectron2).</summary>
    public double Offset { get; init; }
}

/// <summary>Box-regression loss of the RPN and the box head. With SMOOTH_L1_BETA = 0 smooth-L1 is L1.</summary>
public enum BboxRegLossType
{
    [ConfigValue("smooth_l1")] SmoothL1,
}

public sealed record RpnConfig
{
    public ValueList<string> InFeatures { get; init; } = ["p2", "p3", "p4", "p5", "p6"];

    /// <summary>Anchors with IoU below the first are negative, at or above the second positive, between ignored.</summary>
    public ValueList<double> IouThresholds { get; init; } = [0.3, 0.7];

    public int BatchSizePerImage { get; init; } = 256;
    public double PositiveFraction { get; init; } = 0.5;
    public BboxRegLossType BboxRegLossType { get; init; } = BboxRegLossType.SmoothL1;
    public double BboxRegLossWeight { get; init; } = 1.0;
    public ValueList<double> BboxRegWeights { get; init; } = [1.0, 1.0, 1.0, 1.0];
    public double SmoothL1Beta { get; init; }
    public double LossWeight { get; init; } = 1.0;

    /// <summary>Proposals kept per FPN level before NMS (training / test).</summary>
    public int PreNmsTopkTrain { get; init; } = 2000;
    public int PreNmsTopkTest { get; init; } = 1000;

    /// <summary>Proposals kept per image after NMS (training / test).</summary>
    public int PostNmsTopkTrain { get; init; } = 1000;
    public int PostNmsTopkTest { get; init; } = 1000;

    public double NmsThresh { get; init; } = 0.7;
}

public sealed record RoiHeadsConfig
{
    /// <summary>Foreground classes K (LVIS v1: 1203); background is index K.</summary>
    public int NumClasses { get; init; } = 80;

    public ValueList<string> InFeatures { get; init; } = ["p2", "p3", "p4", "p5"];

    /// <summary>RoIs with IoU at or above this are foreground (long-tail-methods.md 0.2: 0.5).</summary>
    public ValueList<double> IouThresholds { get; init; } = [0.5];

    public int BatchSizePerImage { get; init; } = 512;
    public double PositiveFraction { get; init; } = 0.25;

    /// <summary>Per-class score threshold at test (LVIS: 1e-4).</summary>
    public double ScoreThreshTest { get; init; } = 0.05;

    public double NmsThreshTest { get; init; } = 0.5;

    /// <summary>Add ground-truth boxes to the proposals before sampling, so positives include the GT boxes.</summary>
    public bool ProposalAppendGt { get; init; } = true;
}

public sealed record RoiBoxHeadConfig
{
    public int NumFc { get; init; } = 2;
    public int FcDim { get; init; } = 1024;
    public int PoolerResolution { get; init; } = 7;

    /// <summary>RoIAlign samples per bin side; 0 = adaptive (ceil of bin size).</summary>
    public int PoolerSamplingRatio { get; init; }

    /// <summary>Multipliers of (dx, dy, dw, dh) in the box coder: 10, 10, 5, 5 (= mmdetection's stds 0.1, 0.1, 0.2, 0.2).</summary>
    public ValueList<double> BboxRegWeights { get; init; } = [10.0, 10.0, 5.0, 5.0];

    public BboxRegLossType BboxRegLossType { get; init; } = BboxRegLossType.SmoothL1;
    public double BboxRegLossWeight { get; init; } = 1.0;
    public double SmoothL1Beta { get; init; }
    public bool ClsAgnosticBboxReg { get; init; }
}

public sealed record RoiMaskHeadConfig
{
    public int NumConv { get; init; } = 4;
    public int ConvDim { get; init; } = 256;
    public int PoolerResolution { get; init; } = 14;
    public int PoolerSamplingRatio { get; init; }
    public NormType Norm { get; init; } = NormType.None;
    public bool ClsAgnosticMask { get; init; }
}
