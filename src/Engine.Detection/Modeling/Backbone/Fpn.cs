// Feature Pyramid Network (Lin et al. 2017, "Feature Pyramid Networks for Object Detection", Sec. 3 and
// Fig. 3) over the maps of a bottom-up network, as detectron2's FPN computes it:
//   L_k = lateral_k(C_k)                     1×1 conv, C_k channels → OutChannels
//   M_top = L_top,  M_k = L_k + up2(M_{k+1}) nearest ×2 upsampling (or the average of the two, FpnFuse.Average)
//   P_k = output_k(M_k)                      3×3 conv, padding 1
//   P_{top+1} = max_pool(P_top, kernel 1, stride 2)   (detectron2's LastLevelMaxPool, the "p6" of Faster R-CNN)
// Level k is named after log2 of its stride: convs "fpn_lateral{k}" and "fpn_output{k}" (registered finest
// first, lateral before output, as detectron2), outputs "p{k}". Convs have a bias only without a norm, and
// c2_xavier_fill initialization. The ×2 upsampling must land exactly on the next finer map, so each input
// level must be exactly twice the size of the next coarser one: detectron2 guarantees it by padding the image
// batch to a multiple of the coarsest stride, and this module checks it rather than cropping.
using Engine.Nn;

namespace Engine.Detection.Modeling.Backbone;

/// <summary>How a lateral map and the upsampled coarser map combine (detectron2's FUSE_TYPE "sum" / "avg").</summary>
public enum FpnFuse
{
    Sum,
    Average,
}

public sealed class Fpn : Module<IReadOnlyDictionary<string, Tensor>, Dictionary<string, Tensor>>
{
    private readonly string[] _inFeatures;
    private readonly Conv2d[] _laterals;
    private readonly Conv2d[] _outputs;
    private readonly string[] _outFeatures;
    private readonly Dictionary<string, ShapeSpec> _outputShapes = [];

    /// <param name="inputShapes">channels and stride of the bottom-up maps (e.g. ResNet.OutputShapes).</param>
    /// <param name="inFeatures">the maps to use, finest first, strides doubling (e.g. res2 … res5).</param>
    /// <param name="norm">None (convs with bias, detectron2's default) or GroupNorm (bias-free convs).</param>
    /// <param name="lastLevelMaxPool">add P_{top+1} = max_pool(P_top, 1, stride 2).</param>
    public Fpn(IReadOnlyDictionary<string, ShapeSpec> inputShapes, IReadOnlyList<string> inFeatures, int outChannels, Generator generator,
               NormKind norm = NormKind.None, FpnFuse fuse = FpnFuse.Sum, bool lastLevelMaxPool = true,
               int groupNormGroups = Norms.DefaultGroupNormGroups)
    {
        ArgumentNullException.ThrowIfNull(inputShapes);
        ArgumentNullException.ThrowIfNull(inFeatures);
        ArgumentNullException.ThrowIfNull(generator);
        if (inFeatures.Count == 0)
            throw new ArgumentException("Fpn: inFeatures is empty; name the bottom-up maps to build the pyramid on, finest first (e.g. res2, res3, res4, res5).");
        if (outChannels <= 0) throw new ArgumentOutOfRangeException(nameof(outChannels), $"Fpn: outChannels must be positive, got {outChannels}.");
        var missing = inFeatures.Where(f => !inputShapes.ContainsKey(f)).ToList();
        if (missing.Count > 0)
            throw new ArgumentException($"Fpn: in-features {string.Join(", ", missing)} are not among the bottom-up outputs ({string.Join(", ", inputShapes.Keys)}); " +
                                        "add them to the bottom-up network's outFeatures.");
        var strides = inFeatures.Select(f => inputShapes[f].Stride).ToArray();
        if (strides.Any(s => s <= 0 || (s & (s - 1)) != 0))
            throw new ArgumentException($"Fpn: in-feature strides [{string.Join(", ", strides)}] must be powers of two.");
        for (var i = 1; i < strides.Length; i++)
            if (strides[i] != 2 * strides[i - 1])
                throw new ArgumentException($"Fpn: strides [{string.Join(", ", strides)}] of [{string.Join(", ", inFeatures)}] are not log2-contiguous; " +
                                            "each in-feature must have twice the stride of the previous one (list them finest first, without gaps).");

        OutChannels = outChannels;
        Fuse = fuse;
        _inFeatures = inFeatures.ToArray();
        _laterals = new Conv2d[_inFeatures.Length];
        _outputs = new Conv2d[_inFeatures.Length];
        var useBias = norm == NormKind.None;
        var outNames = new List<string>();
        for (var i = 0; i < _inFeatures.Length; i++)
        {
            var level = Log2(strides[i]);
            _laterals[i] = RegisterModule($"fpn_lateral{level}", C2Init.XavierFill(
                new Conv2d(inputShapes[_inFeatures[i]].Channels, outChannels, 1, generator, bias: useBias,
                           norm: Norms.Create(norm, outChannels, groupNormGroups, "Fpn")), generator));
            _outputs[i] = RegisterModule($"fpn_output{level}", C2Init.XavierFill(
                new Conv2d(outChannels, outChannels, 3, generator, padding: 1, bias: useBias,
                           norm: Norms.Create(norm, outChannels, groupNormGroups, "Fpn")), generator));
            outNames.Add($"p{level}");
            _outputShapes[$"p{level}"] = new ShapeSpec(outChannels, strides[i]);
        }
        if (lastLevelMaxPool)
        {
            var level = Log2(strides[^1]) + 1;
            outNames.Add($"p{level}");
            _outputShapes[$"p{level}"] = new ShapeSpec(outChannels, strides[^1] * 2);
        }
        LastLevelMaxPool = lastLevelMaxPool;
        _outFeatures = outNames.ToArray();
        SizeDivisibility = strides[^1];
    }

    public int OutChannels { get; }
    public FpnFuse Fuse { get; }
    public bool LastLevelMaxPool { get; }

    /// <summary>The bottom-up maps read, finest first.</summary>
    public IReadOnlyList<string> InFeatures => _inFeatures;

    /// <summary>p-level names, finest first (p2 … p6 over res2 … res5).</summary>
    public IReadOnlyList<string> OutFeatures => _outFeatures;

    public IReadOnlyDictionary<string, ShapeSpec> OutputShapes => _outputShapes;

    /// <summary>The coarsest in-feature stride: image sizes that are multiples of it make every level exactly twice the next.</summary>
    public int SizeDivisibility { get; }

    /// <summary>Lateral 1×1 convs, finest first.</summary>
    public IReadOnlyList<Conv2d> LateralConvs => _laterals;

    /// <summary>Output 3×3 convs, finest first.</summary>
    public IReadOnlyList<Conv2d> OutputConvs => _outputs;

    /// <param name="features">at least the in-features, (N, C_k, H_k, W_k) with H_k = 2·H_{k+1}, W_k = 2·W_{k+1}.</param>
    /// <returns>p-levels, finest first, each (N, OutChannels, H_k, W_k); the caller owns them.</returns>
    public override Dictionary<string, Tensor> Forward(IReadOnlyDictionary<string, Tensor> features)
    {
        ArgumentNullException.ThrowIfNull(features);
        var inputs = CheckInputs(features);
        var levels = inputs.Length;
        var results = new Tensor[levels];
        var merged = _laterals[levels - 1].Forward(inputs[levels - 1]);  // M_top (N, OutChannels, H_top, W_top)
        try
        {
            results[levels - 1] = _outputs[levels - 1].Forward(merged);
            for (var i = levels - 2; i >= 0; i--)
            {
                using var topDown = merged.UpsampleNearest2d(2);            // (N, OutChannels, H_i, W_i)
                using var lateral = _laterals[i].Forward(inputs[i]);
                var next = lateral.Add(topDown);
                if (Fuse == FpnFuse.Average)
                    using (var sum = next) next = sum.Div(2.0);
                merged.Dispose();
                merged = next;
                results[i] = _outputs[i].Forward(merged);
            }
        }
        finally
        {
            merged.Dispose();
        }
        var output = new Dictionary<string, Tensor>(_outFeatures.Length);
        for (var i = 0; i < levels; i++) output[_outFeatures[i]] = results[i];
        if (LastLevelMaxPool) output[_outFeatures[^1]] = results[^1].MaxPool2d(1, 2);
        return output;
    }

    private Tensor[] CheckInputs(IReadOnlyDictionary<string, Tensor> features)
    {
        var inputs = new Tensor[_inFeatures.Length];
        for (var i = 0; i < inputs.Length; i++)
        {
            var name = _inFeatures[i];
            if (!features.TryGetValue(name, out var x))
                throw new ArgumentException($"Fpn: the input has no '{name}' map (it has {string.Join(", ", features.Keys)}); pass the bottom-up network's outputs.");
            var channels = _laterals[i].InChannels;
            if (x.Rank != 4 || x.Size(1) != channels)
                throw new ArgumentException($"Fpn: '{name}' must be (N, {channels}, H, W), got {ShapeUtil.Format(x.Shape)}.");
            if (i > 0)
            {
                var finer = inputs[i - 1];
                if (x.Size(0) != finer.Size(0))
                    throw new ArgumentException($"Fpn: '{name}' has batch size {x.Size(0)} but '{_inFeatures[i - 1]}' has {finer.Size(0)}.");
                if (finer.Size(2) != 2 * x.Size(2) || finer.Size(3) != 2 * x.Size(3))
                    throw new ArgumentException(
                        $"Fpn: '{_inFeatures[i - 1]}' is {finer.Size(2)}x{finer.Size(3)} but twice '{name}' ({x.Size(2)}x{x.Size(3)}) is {2 * x.Size(2)}x{2 * x.Size(3)}; " +
                        $"the top-down ×2 upsampling needs every level to be exactly twice the next. Pad the images to a multiple of {SizeDivisibility} " +
                        "(SizeDivisibility), as the image batching does.");
            }
            inputs[i] = x;
        }
        return inputs;
    }

    private static int Log2(int powerOfTwo) => System.Numerics.BitOperations.Log2((uint)powerOfTwo);
}
