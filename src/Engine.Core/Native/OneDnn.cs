// Safe entry points to the oneDNN shim: convolutions and matrix products on float32 buffers in the
// engine's plain layouts (see Conv2dGeometry and MatmulGeometry). Span overloads check every buffer
// length against the geometry; pointer overloads are for callers (the tensor layer) that already
// hold pinned memory of the right size. All outputs, gradients included, are overwritten.
//
// Weight caching: Conv2dForward and Conv2dBackwardData keep the weights reordered into oneDNN's
// preferred layout, keyed by (weightKey, weightVersion, geometry). The caller passes a key that
// identifies the parameter (e.g. its storage id) and MUST pass a new version after writing the
// weights, or stale weights are used. weightKey 0 turns caching off for that call.
namespace Engine.Native;

/// <summary>Which of oneDNN's routes computes a convolution on NCHW data (engine_onednn_set_layout_policy).</summary>
public enum OneDnnLayoutPolicy
{
    /// <summary>The default: chosen by geometry, identically in every run (plain for 1×1 stride-1
    /// convolutions, blocked otherwise), so results are reproducible bit for bit.</summary>
    Auto = 0,
    /// <summary>Blocked layouts chosen by oneDNN; activations reordered in and out on every call.</summary>
    Blocked = 1,
    /// <summary>Computation directly on NCHW (GEMM-based); no activation reorders.</summary>
    Plain = 2,
    /// <summary>The first call of each geometry times both routes and keeps the faster; the choice (and so
    /// the rounding) can differ between runs.</summary>
    Tuned = 3,
}

public static unsafe class OneDnn
{
    private static readonly Lazy<int> AbiVersion = new(() =>
    {
        var version = EngineNative.engine_native_abi_version();
        if (version != EngineNative.ExpectedAbiVersion)
            throw new EngineNativeException("engine_native_abi_version",
                $"libengine_native.so has ABI version {version}, this Engine.Core expects {EngineNative.ExpectedAbiVersion}; " +
                "a stale library was found: rebuild with `dotnet build` or fix ENGINE_LIBRARY_PATH.");
        return version;
    });

    private static void EnsureLoaded() => _ = AbiVersion.Value;

    /// <summary>Threads oneDNN uses for one call (OpenMP: OMP_NUM_THREADS, else every core).</summary>
    public static int MaxThreads
    {
        get { EnsureLoaded(); return EngineNative.engine_native_max_threads(); }
    }

    public static OneDnnLayoutPolicy LayoutPolicy
    {
        get { EnsureLoaded(); return (OneDnnLayoutPolicy)EngineNative.engine_onednn_get_layout_policy(); }
        set { EnsureLoaded(); EngineNative.Check(EngineNative.engine_onednn_set_layout_policy((int)value), "engine_onednn_set_layout_policy"); }
    }

    public static EngineOneDnnStats Stats
    {
        get
        {
            EnsureLoaded();
            EngineOneDnnStats stats;
            EngineNative.Check(EngineNative.engine_onednn_get_stats(&stats), "engine_onednn_get_stats");
            return stats;
        }
    }

    /// <summary>Weight reorders performed so far for one weight key.</summary>
    public static ulong WeightReordersForKey(ulong weightKey)
    {
        EnsureLoaded();
        return EngineNative.engine_onednn_weight_reorders_for_key(weightKey);
    }

    /// <summary>Drops the cached reordered copies of one weight (its storage is being freed).</summary>
    public static void ForgetWeights(ulong weightKey)
    {
        EnsureLoaded();
        EngineNative.Check(EngineNative.engine_onednn_forget_weights(weightKey), "engine_onednn_forget_weights");
    }

    /// <summary>Drops all cached primitives and reordered weights; counters keep running.</summary>
    public static void ClearCaches()
    {
        EnsureLoaded();
        EngineNative.Check(EngineNative.engine_onednn_clear_caches(), "engine_onednn_clear_caches");
    }

    /// <summary>dst (N, COut, OutH, OutW) = conv(src (N, CIn, H, W), weights (COut, CIn/G, kh, kw)) + bias (COut);
    /// bias may be null.</summary>
    public static void Conv2dForward(Conv2dGeometry g, float* src, float* weights, float* bias, float* dst,
                                     ulong weightKey = 0, ulong weightVersion = 0)
    {
        EnsureLoaded();
        var desc = g.ToNative();
        EngineNative.Check(EngineNative.engine_conv2d_forward(&desc, src, weights, bias, dst, weightKey, weightVersion),
                           "engine_conv2d_forward");
    }

    /// <summary>Span form of <see cref="Conv2dForward(Conv2dGeometry, float*, float*, float*, float*, ulong, ulong)"/>;
    /// an empty <paramref name="bias"/> means no bias.</summary>
    public static void Conv2dForward(Conv2dGeometry g, ReadOnlySpan<float> src, ReadOnlySpan<float> weights,
                                     ReadOnlySpan<float> bias, Span<float> dst, ulong weightKey = 0, ulong weightVersion = 0)
    {
        const string op = "OneDnn.Conv2dForward";
        CheckLength(op, "src", src.Length, g.SrcLength, g);
        CheckLength(op, "weights", weights.Length, g.WeightLength, g);
        if (!bias.IsEmpty) CheckLength(op, "bias", bias.Length, g.BiasLength, g);
        CheckLength(op, "dst", dst.Length, g.DstLength, g);
        fixed (float* s = src, w = weights, b = bias, d = dst)
            Conv2dForward(g, s, w, bias.IsEmpty ? null : b, d, weightKey, weightVersion);
    }

    /// <summary>diffSrc (N, CIn, H, W) = gradient w.r.t. the convolution's input, from diffDst (N, COut, OutH, OutW).</summary>
    public static void Conv2dBackwardData(Conv2dGeometry g, float* diffDst, float* weights, float* diffSrc,
                                          ulong weightKey = 0, ulong weightVersion = 0)
    {
        EnsureLoaded();
        var desc = g.ToNative();
        EngineNative.Check(EngineNative.engine_conv2d_backward_data(&desc, diffDst, weights, diffSrc, weightKey, weightVersion),
                           "engine_conv2d_backward_data");
    }

    public static void Conv2dBackwardData(Conv2dGeometry g, ReadOnlySpan<float> diffDst, ReadOnlySpan<float> weights,
                                          Span<float> diffSrc, ulong weightKey = 0, ulong weightVersion = 0)
    {
        const string op = "OneDnn.Conv2dBackwardData";
        CheckLength(op, "diffDst", diffDst.Length, g.DstLength, g);
        CheckLength(op, "weights", weights.Length, g.WeightLength, g);
        CheckLength(op, "diffSrc", diffSrc.Length, g.SrcLength, g);
        fixed (float* dy = diffDst, w = weights, dx = diffSrc)
            Conv2dBackwardData(g, dy, w, dx, weightKey, weightVersion);
    }

    /// <summary>diffWeights (COut, CIn/G, kh, kw) and, unless diffBias is null, diffBias (COut), from the forward
    /// input src and diffDst. Both are overwritten, not accumulated into.</summary>
    public static void Conv2dBackwardWeights(Conv2dGeometry g, float* src, float* diffDst, float* diffWeights, float* diffBias)
    {
        EnsureLoaded();
        var desc = g.ToNative();
        EngineNative.Check(EngineNative.engine_conv2d_backward_weights(&desc, src, diffDst, diffWeights, diffBias),
                           "engine_conv2d_backward_weights");
    }

    /// <summary>Span form; an empty <paramref name="diffBias"/> skips the bias gradient.</summary>
    public static void Conv2dBackwardWeights(Conv2dGeometry g, ReadOnlySpan<float> src, ReadOnlySpan<float> diffDst,
                                             Span<float> diffWeights, Span<float> diffBias)
    {
        const string op = "OneDnn.Conv2dBackwardWeights";
        CheckLength(op, "src", src.Length, g.SrcLength, g);
        CheckLength(op, "diffDst", diffDst.Length, g.DstLength, g);
        CheckLength(op, "diffWeights", diffWeights.Length, g.WeightLength, g);
        if (!diffBias.IsEmpty) CheckLength(op, "diffBias", diffBias.Length, g.BiasLength, g);
        fixed (float* x = src, dy = diffDst, dw = diffWeights, db = diffBias)
            Conv2dBackwardWeights(g, x, dy, dw, diffBias.IsEmpty ? null : db);
    }

    /// <summary>C[b] = op(A[b]) @ op(B[b]) in the layout of <paramref name="g"/>; C is overwritten.</summary>
    public static void Matmul(MatmulGeometry g, float* a, float* b, float* c)
    {
        EnsureLoaded();
        var desc = g.ToNative();
        EngineNative.Check(EngineNative.engine_matmul(&desc, a, b, c), "engine_matmul");
    }

    public static void Matmul(MatmulGeometry g, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c)
    {
        const string op = "OneDnn.Matmul";
        CheckAtLeast(op, "A", a.Length, g.ExtentA, g);
        CheckAtLeast(op, "B", b.Length, g.ExtentB, g);
        CheckAtLeast(op, "C", c.Length, g.ExtentC, g);
        fixed (float* pa = a, pb = b, pc = c)
            Matmul(g, pa, pb, pc);
    }

    private static void CheckLength(string op, string name, int actual, long expected, object geometry)
    {
        if (actual != expected)
            throw new ArgumentException($"{op}: {name} has {actual} elements, the geometry needs exactly {expected} ({geometry}).");
    }

    private static void CheckAtLeast(string op, string name, int actual, long needed, object geometry)
    {
        if (actual < needed)
            throw new ArgumentException($"{op}: {name} has {actual} elements, the geometry reaches element {needed - 1} ({geometry}).");
    }
}
