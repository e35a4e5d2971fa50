// 2-D max pooling and nearest upsampling on NCHW maps in double, written from the definitions: a max pool
// output is the largest element of its window (padding never wins), its gradient flows to that element
// only; a nearest-upsampled pixel (i, j) is input pixel (⌊i·H/Ho⌋, ⌊j·W/Wo⌋), and the gradient of an input
// pixel is the sum over the output pixels that copy it.
namespace Engine.Reference;

public static class PoolingReference
{
    /// <summary>Max pool of x (N, C, H, W): values (N, C, Ho, Wo) and, per output, the position h·W + w of the
    /// first maximum in row-major window order (a NaN in the window wins, the last one if several).</summary>
    public static (RefTensor Values, long[] Indices) MaxPool2d(RefTensor x, Pool2dWindow win)
    {
        var (n, c, h, w) = (x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]);
        var (oh, ow) = (win.OutputH(h), win.OutputW(w));
        var values = new double[n * c * oh * ow];
        var indices = new long[values.Length];
        var o = 0;
        for (var plane = 0; plane < n * c; plane++)
            for (var i = 0; i < oh; i++)
                for (var j = 0; j < ow; j++, o++)
                {
                    var best = double.NegativeInfinity;
                    long at = -1;
                    for (var di = 0; di < win.KernelH; di++)
                        for (var dj = 0; dj < win.KernelW; dj++)
                        {
                            var (r, q) = (i * win.StrideH - win.PadH + di, j * win.StrideW - win.PadW + dj);
                            if (r < 0 || r >= h || q < 0 || q >= w) continue; // padding
                            var v = x.Data[(long)plane * h * w + r * w + q];
                            if (at < 0 || v > best || double.IsNaN(v))
                            {
                                best = v;
                                at = (long)r * w + q;
                            }
                        }
                    values[o] = best;
                    indices[o] = at;
                }
        return (new RefTensor([n, c, oh, ow], values), indices);
    }

    /// <summary>Gradient w.r.t. x of Σ gy·MaxPool2d(x): each output's gradient added to the element it selected.</summary>
    public static RefTensor MaxPool2dBackward(RefTensor gy, long[] indices, int[] inputShape)
    {
        var planeIn = inputShape[2] * inputShape[3];
        var planeOut = gy.Shape[2] * gy.Shape[3];
        var gx = new double[ShapeUtil.Numel(inputShape)];
        for (var k = 0; k < gy.Data.Length; k++) gx[k / planeOut * planeIn + indices[k]] += gy.Data[k];
        return new RefTensor(inputShape, gx);
    }

    /// <summary>Nearest resize of x (N, C, H, W) to (N, C, outH, outW).</summary>
    public static RefTensor UpsampleNearest2d(RefTensor x, int outH, int outW)
    {
        var (n, c, h, w) = (x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]);
        var y = new double[n * c * outH * outW];
        var o = 0;
        for (var plane = 0; plane < n * c; plane++)
            for (var i = 0; i < outH; i++)
                for (var j = 0; j < outW; j++)
                    y[o++] = x.Data[(long)plane * h * w + Source(i, h, outH) * w + Source(j, w, outW)];
        return new RefTensor([n, c, outH, outW], y);
    }

    /// <summary>Gradient w.r.t. x of Σ gy·UpsampleNearest2d(x): each output pixel's gradient added to its source.</summary>
    public static RefTensor UpsampleNearest2dBackward(RefTensor gy, int[] inputShape)
    {
        var (h, w) = (inputShape[2], inputShape[3]);
        var (oh, ow) = (gy.Shape[2], gy.Shape[3]);
        var gx = new double[ShapeUtil.Numel(inputShape)];
        var o = 0;
        for (var plane = 0; plane < inputShape[0] * inputShape[1]; plane++)
            for (var i = 0; i < oh; i++)
                for (var j = 0; j < ow; j++)
                    gx[(long)plane * h * w + Source(i, h, oh) * w + Source(j, w, ow)] += gy.Data[o++];
        return new RefTensor(inputShape, gx);
    }

    /// <summary>⌊dst·in/out⌋.</summary>
    private static int Source(int dst, int input, int output) => (int)Math.Floor((double)dst * input / output);
}
