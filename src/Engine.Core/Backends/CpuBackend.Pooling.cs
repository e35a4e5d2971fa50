// CPU max pooling and nearest upsampling on contiguous NCHW maps. Forward passes run one output row per unit
// of work (so a single large image still spreads over the cores); backward passes run one (n, c) plane per
// unit, because overlapping windows and repeated source pixels accumulate into the same input element and
// planes are the smallest pieces that never share one.
namespace Engine;

public sealed unsafe partial class CpuBackend
{
    public void MaxPool2d(Tensor x, Pool2dWindow window, Tensor y, Tensor indices)
    {
        if (x.DType != DType.Float32) throw Unsupported("max_pool2d", x.DType);
        var (h, w) = (x.Size(2), x.Size(3));
        var (oh, ow) = (y.Size(2), y.Size(3));
        var planes = (long)x.Size(0) * x.Size(1);
        var px = x.Data<float>();
        var py = y.Data<float>();
        var pi = indices.Data<long>();
        var (kh, kw, sh, sw, ph, pw) = (window.KernelH, window.KernelW, window.StrideH, window.StrideW, window.PadH, window.PadW);
        CpuLoops.For(planes * oh, (long)ow * kh * kw, u =>
        {
            var plane = u / oh;
            var r = (int)(u % oh);
            var src = px + plane * h * w;
            var dstY = py + u * ow;
            var dstI = pi + u * ow;
            var hs = r * sh - ph;
            var (h0, h1) = (Math.Max(hs, 0), Math.Min(hs + kh, h));
            for (var c = 0; c < ow; c++)
            {
                var ws = c * sw - pw;
                var (w0, w1) = (Math.Max(ws, 0), Math.Min(ws + kw, w));
                // the window always holds a real element (padding ≤ kernel / 2), which starts the scan
                var best = float.NegativeInfinity;
                long at = (long)h0 * w + w0;
                for (var i = h0; i < h1; i++)
                {
                    var row = src + (long)i * w;
                    for (var j = w0; j < w1; j++)
                    {
                        var v = row[j];
                        if (v > best || float.IsNaN(v))
                        {
                            best = v;
                            at = (long)i * w + j;
                        }
                    }
                }
                dstY[c] = best;
                dstI[c] = at;
            }
        });
    }

    public void MaxPool2dBackward(Tensor gy, Tensor indices, Tensor gx)
    {
        var planeIn = (long)gx.Size(2) * gx.Size(3);
        var planeOut = (long)gy.Size(2) * gy.Size(3);
        var planes = (long)gx.Size(0) * gx.Size(1);
        var pg = gy.Data<float>();
        var pi = indices.Data<long>();
        var px = gx.Data<float>();
        CpuLoops.For(planes, planeIn + planeOut, p =>
        {
            var dst = px + p * planeIn;
            new Span<float>(dst, checked((int)planeIn)).Clear();
            var g = pg + p * planeOut;
            var idx = pi + p * planeOut;
            for (long k = 0; k < planeOut; k++) dst[idx[k]] += g[k];
        });
    }

    public void UpsampleNearest2d(Tensor x, Tensor y)
    {
        if (x.DType != DType.Float32) throw Unsupported("upsample_nearest2d", x.DType);
        var (h, w) = (x.Size(2), x.Size(3));
        var (oh, ow) = (y.Size(2), y.Size(3));
        var planes = (long)x.Size(0) * x.Size(1);
        if (planes * oh * ow == 0) return;
        var srcW = NearestSources(w, ow);
        var px = x.Data<float>();
        var py = y.Data<float>();
        CpuLoops.For(planes * oh, ow, u =>
        {
            var plane = u / oh;
            var r = u % oh;
            var src = px + (plane * h + r * h / oh) * w;
            var dst = py + u * ow;
            for (var c = 0; c < ow; c++) dst[c] = src[srcW[c]];
        });
    }

    public void UpsampleNearest2dBackward(Tensor gy, Tensor gx)
    {
        var (h, w) = (gx.Size(2), gx.Size(3));
        var (oh, ow) = (gy.Size(2), gy.Size(3));
        var planes = (long)gx.Size(0) * gx.Size(1);
        var srcW = NearestSources(w, ow);
        var pg = gy.Data<float>();
        var px = gx.Data<float>();
        CpuLoops.For(planes, (long)h * w + (long)oh * ow, p =>
        {
            var dst = px + p * h * w;
            new Span<float>(dst, checked(h * w)).Clear();
            for (long r = 0; r < oh; r++)
            {
                var row = dst + r * h / oh * w;
                var g = pg + (p * oh + r) * ow;
                for (var c = 0; c < ow; c++) row[srcW[c]] += g[c];
            }
        });
    }

    /// <summary>Source index ⌊i·in/out⌋ of each of the out destination positions.</summary>
    private static int[] NearestSources(int input, int output)
    {
        var src = new int[output];
        for (var i = 0; i < output; i++) src[i] = (int)((long)i * input / output);
        return src;
    }
}
