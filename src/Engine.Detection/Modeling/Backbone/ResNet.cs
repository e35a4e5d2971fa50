// ResNet as the detector's bottom-up network (He et al. 2016, Table 1), structured and named as detectron2's
// ResNet so converted detectron2 / torchvision checkpoints load by name: children "stem" (BasicStem) and
// "res2" … "res5" (stages of blocks named "0", "1", …), giving names such as "res2.0.conv1.norm.running_var".
// Stage k has stride 2^k (res2 4, res3 8, res4 16, res5 32); its first block changes the channel count and,
// except in res2, halves the resolution. Channels follow detectron2's build_resnet_backbone: res2 has
// res2OutChannels outputs (256 for bottleneck, 64 for basic blocks) and bottleneck width widthPerGroup, and
// both double at every later stage. Stages beyond the deepest requested output are not built (detectron2
// avoids parameters that would get no gradient). freezeAt = k freezes the stem (k ≥ 1) and res2 … res_k:
// their parameters stop requiring gradients, as detectron2's ResNet.freeze, which also turns the BatchNorm
// layers of frozen stages into FrozenBatchNorm2d (so they neither use batch statistics nor update running ones);
// here a frozen stage is built with FrozenBatchNorm2d directly.
using Engine.Nn;

namespace Engine.Detection.Modeling.Backbone;

public sealed class ResNet : BackboneModule
{
    /// <summary>Every name Forward can return, finest first.</summary>
    public static IReadOnlyList<string> FeatureNames => Names;

    private static readonly string[] Names = ["stem", "res2", "res3", "res4", "res5"];

    private readonly List<(string Name, Sequential Stage)> _stages = [];
    private readonly string[] _outFeatures;
    private readonly Dictionary<string, ShapeSpec> _outputShapes;

    /// <param name="depth">18, 34 (basic blocks), 50, 101 or 152 (bottleneck blocks).</param>
    /// <param name="outFeatures">subset of stem, res2 … res5 (default res2 … res5, what an FPN needs).</param>
    /// <param name="freezeAt">0: nothing frozen; 1: the stem; k ≥ 2: the stem and res2 … res_k.</param>
    /// <param name="stemOutChannels">detectron2's STEM_OUT_CHANNELS (64).</param>
    /// <param name="widthPerGroup">bottleneck width of res2 (64); unused by basic blocks.</param>
    /// <param name="res2OutChannels">output channels of res2; default 4·widthPerGroup for bottleneck blocks and
    /// widthPerGroup for basic blocks (detectron2 requires 64 there).</param>
    /// <param name="strideInOneByOne">put a bottleneck's stride on its first 1×1 conv (MSRA weights) instead of the 3×3.</param>
    public ResNet(int depth, Generator generator, IReadOnlyList<string>? outFeatures = null, int freezeAt = 0,
                  NormKind norm = NormKind.FrozenBatchNorm, int inChannels = 3, int stemOutChannels = 64, int widthPerGroup = 64,
                  int? res2OutChannels = null, bool strideInOneByOne = false, int groupNormGroups = Norms.DefaultGroupNormGroups)
    {
        ArgumentNullException.ThrowIfNull(generator);
        var blocksPerStage = BlocksPerStage(depth);
        var basic = UsesBasicBlocks(depth);
        outFeatures ??= ["res2", "res3", "res4", "res5"];
        if (outFeatures.Count == 0 || outFeatures.Any(f => !Names.Contains(f)) || outFeatures.Distinct().Count() != outFeatures.Count)
            throw new ArgumentException($"ResNet: outFeatures [{string.Join(", ", outFeatures)}] must be a non-empty set of distinct names among " +
                                        $"{string.Join(", ", Names)}.");
        if (freezeAt is < 0 or > 5)
            throw new ArgumentOutOfRangeException(nameof(freezeAt), $"ResNet: freezeAt must be 0 (nothing) … 5 (stem and res2 … res5), got {freezeAt}.");
        if (inChannels <= 0 || stemOutChannels <= 0 || widthPerGroup <= 0 || res2OutChannels <= 0)
            throw new ArgumentException($"ResNet: channel counts must be positive (inChannels {inChannels}, stemOutChannels {stemOutChannels}, " +
                                        $"widthPerGroup {widthPerGroup}, res2OutChannels {res2OutChannels}).");

        Depth = depth;
        Norm = norm;
        FreezeAt = freezeAt;
        InChannels = inChannels;
        _outFeatures = Names.Where(outFeatures.Contains).ToArray();
        var stageCount = _outFeatures.Max(f => Array.IndexOf(Names, f)); // res_k needs stages res2 … res_k

        Stem = RegisterModule("stem", new BasicStem(inChannels, stemOutChannels, NormOfStage(norm, frozen: freezeAt >= 1), generator, groupNormGroups));
        var shapes = new Dictionary<string, ShapeSpec> { ["stem"] = new(stemOutChannels, BasicStem.StemStride) };
        var (inC, outC, bottleneck, stride) = (stemOutChannels, res2OutChannels ?? (basic ? widthPerGroup : 4 * widthPerGroup), widthPerGroup, BasicStem.StemStride);
        for (var s = 0; s < stageCount; s++)
        {
            var name = Names[s + 1];
            var firstStride = s == 0 ? 1 : 2;
            var blocks = new List<(string, Module<Tensor, Tensor>)>();
            var stageNorm = NormOfStage(norm, frozen: freezeAt >= s + 2);
            for (var b = 0; b < blocksPerStage[s]; b++)
            {
                var (blockIn, blockStride) = b == 0 ? (inC, firstStride) : (outC, 1);
                ResNetBlock block = basic
                    ? new BasicBlock(blockIn, outC, blockStride, stageNorm, generator, groupNormGroups)
                    : new BottleneckBlock(blockIn, outC, bottleneck, blockStride, stageNorm, generator, strideInOneByOne, groupNormGroups);
                blocks.Add((b.ToString(System.Globalization.CultureInfo.InvariantCulture), block));
            }
            _stages.Add((name, RegisterModule(name, new Sequential(blocks))));
            stride *= firstStride;
            shapes[name] = new ShapeSpec(outC, stride);
            (inC, outC, bottleneck) = (outC, outC * 2, bottleneck * 2);
        }
        _outputShapes = _outFeatures.ToDictionary(f => f, f => shapes[f]);

        if (freezeAt >= 1) FreezeAll(Stem);
        for (var s = 0; s < _stages.Count; s++)
            if (freezeAt >= s + 2) FreezeAll(_stages[s].Stage);
    }

    public int Depth { get; }
    public NormKind Norm { get; }
    public int FreezeAt { get; }
    public int InChannels { get; }
    public BasicStem Stem { get; }

    /// <summary>The built stages in order ("res2", …), each a Sequential of ResNetBlocks.</summary>
    public IReadOnlyList<(string Name, Sequential Stage)> Stages => _stages;

    public override IReadOnlyList<string> OutFeatures => _outFeatures;
    public override IReadOnlyDictionary<string, ShapeSpec> OutputShapes => _outputShapes;

    /// <summary>Blocks in res2 … res5 for a supported depth (Table 1 of the ResNet paper).</summary>
    public static int[] BlocksPerStage(int depth) => depth switch
    {
        18 => [2, 2, 2, 2],
        34 => [3, 4, 6, 3],
        50 => [3, 4, 6, 3],
        101 => [3, 4, 23, 3],
        152 => [3, 8, 36, 3],
        _ => throw new ArgumentOutOfRangeException(nameof(depth), $"ResNet: depth {depth} is not supported; use 18, 34, 50, 101 or 152."),
    };

    public static bool UsesBasicBlocks(int depth) => depth is 18 or 34;

    /// <param name="images">(N, InChannels, H, W) float32.</param>
    /// <returns>The requested maps, finest first; res_k is (N, C_k, ~H/2^k, ~W/2^k). The caller owns them.</returns>
    public override Dictionary<string, Tensor> Forward(Tensor images)
    {
        if (images.DType != DType.Float32 || images.Rank != 4 || images.Size(1) != InChannels)
            throw new ArgumentException($"ResNet-{Depth}: expected a float32 (N, {InChannels}, H, W) image batch, got {images.DType.Name()} {ShapeUtil.Format(images.Shape)}.");
        var outputs = new Dictionary<string, Tensor>(_outFeatures.Length);
        var x = Stem.Forward(images);                                      // (N, C_stem, H/4, W/4)
        if (_outputShapes.ContainsKey("stem")) outputs["stem"] = x;
        foreach (var (name, stage) in _stages)
        {
            var y = stage.Forward(x);
            if (!outputs.ContainsKey(PreviousName(name))) x.Dispose();
            x = y;
            if (_outputShapes.ContainsKey(name)) outputs[name] = x;
        }
        // the deepest built stage is always an output (stages beyond it are not built), as is the stem without stages
        return outputs;
    }

    private static string PreviousName(string stage) => Names[Array.IndexOf(Names, stage) - 1];

    /// <summary>detectron2's freeze converts BatchNorm to FrozenBatchNorm in frozen stages; other norms stay as they are.</summary>
    private static NormKind NormOfStage(NormKind norm, bool frozen) =>
        frozen && norm == NormKind.BatchNorm ? NormKind.FrozenBatchNorm : norm;

    private static void FreezeAll(Module module)
    {
        foreach (var p in module.Parameters()) p.Frozen = true;
    }
}
