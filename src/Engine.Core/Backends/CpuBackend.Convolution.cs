// CPU convolution through the oneDNN shim (Native/OneDnn.cs). The shim reads and writes the plain
// layouts of IBackend.Convolution directly; weights it wants in a blocked layout are reordered once and
// cached under (storage id, storage version), so a parameter is reordered again only after the optimizer
// (or any in-place write, which bumps the version) has changed it.
using Engine.Native;

namespace Engine;

public sealed unsafe partial class CpuBackend
{
    public void Conv2dForward(Conv2dGeometry g, Tensor x, Tensor w, Tensor? bias, Tensor y, bool cacheWeight)
    {
        CheckConvOperand("x", x, g.SrcLength, g);
        CheckConvOperand("w", w, g.WeightLength, g);
        if (bias is not null) CheckConvOperand("bias", bias, g.BiasLength, g);
        CheckConvOperand("y", y, g.DstLength, g);
        var (key, version) = WeightCacheKey(w, cacheWeight);
        OneDnn.Conv2dForward(g, x.Data<float>(), w.Data<float>(), bias is null ? null : bias.Data<float>(), y.Data<float>(), key, version);
    }

    public void Conv2dBackwardData(Conv2dGeometry g, Tensor dy, Tensor w, Tensor dx, bool cacheWeight)
    {
        CheckConvOperand("dy", dy, g.DstLength, g);
        CheckConvOperand("w", w, g.WeightLength, g);
        CheckConvOperand("dx", dx, g.SrcLength, g);
        var (key, version) = WeightCacheKey(w, cacheWeight);
        OneDnn.Conv2dBackwardData(g, dy.Data<float>(), w.Data<float>(), dx.Data<float>(), key, version);
    }

    public void Conv2dBackwardWeights(Conv2dGeometry g, Tensor x, Tensor dy, Tensor dw, Tensor? dbias)
    {
        CheckConvOperand("x", x, g.SrcLength, g);
        CheckConvOperand("dy", dy, g.DstLength, g);
        CheckConvOperand("dw", dw, g.WeightLength, g);
        if (dbias is not null) CheckConvOperand("dbias", dbias, g.BiasLength, g);
        OneDnn.Conv2dBackwardWeights(g, x.Data<float>(), dy.Data<float>(), dw.Data<float>(), dbias is null ? null : dbias.Data<float>());
    }

    /// <summary>The shim's cache key of a weight tensor: its storage id and version. Only a view that starts at
    /// the beginning of its storage is cached, because the key does not include an offset (two weights packed
    /// into one buffer would otherwise share an entry); key 0 turns caching off.</summary>
    private static (ulong Key, ulong Version) WeightCacheKey(Tensor w, bool cacheWeight)
    {
        if (!cacheWeight || w.Offset != 0) return (0, 0);
        if (w.Storage is CpuStorage cpu) cpu.HasCachedWeights = true; // the cache entry is dropped when the storage is freed
        return ((ulong)w.Storage.Id, (ulong)w.Storage.Version);
    }

    private static void CheckConvOperand(string name, Tensor t, long expected, Conv2dGeometry g)
    {
        if (t.DType != DType.Float32 || !t.IsContiguous || t.Numel != expected)
            throw new InvalidOperationException(
                $"CpuBackend.conv2d: {name} must be a contiguous float32 tensor of {expected} elements, got {t.DType.Name()} " +
                $"{ShapeUtil.Format(t.Shape)}{(t.IsContiguous ? "" : " (non-contiguous)")} ({g}).");
    }
}
