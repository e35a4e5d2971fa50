// Plain 2-D convolution, written from the definition with double accumulation, for tests, selftest
// and benchmark validation only. Layouts as in Conv2dGeometry: x (N, CIn, H, W), w (COut, CIn/G, kh, kw),
// b (COut), y (N, COut, OutH, OutW). With g = co / (COut/G) the group of output channel co:
//   y[n,co,oy,ox] = b[co] + Σ_{c<CIn/G, ky, kx} x[n, g·CIn/G + c, oy·s - p + ky·d, ox·s - p + kx·d] · w[co,c,ky,kx]
// (input positions outside the image count as zero). The backward functions are the adjoints of
// that sum for a loss L with upstream gradient dy = ∂L/∂y:
//   dx[n,ci,iy,ix] = Σ over (co in ci's group, ky, kx) with iy = oy·s - p + ky·d, ix = ox·s - p + kx·d
//                    for some in-range (oy, ox), of dy[n,co,oy,ox] · w[co, ci - g·CIn/G, ky, kx]
//   dw[co,c,ky,kx] = Σ_{n,oy,ox} dy[n,co,oy,ox] · x[n, g·CIn/G + c, oy·s - p + ky·d, ox·s - p + kx·d]
//   db[co]         = Σ_{n,oy,ox} dy[n,co,oy,ox]
// The *At functions give one element from any numeric buffers (float data is validated on a sample).
using System.Numerics;
using Engine.Native;

namespace Engine.Reference;

public static class ConvolutionReference
{
    public static double ForwardAt<T>(Conv2dGeometry g, ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> bias,
                                      int n, int co, int oy, int ox) where T : INumberBase<T>
    {
        var group = co / g.COutPerGroup;
        var sum = bias.IsEmpty ? 0.0 : double.CreateTruncating(bias[co]);
        for (var c = 0; c < g.CInPerGroup; c++)
        {
            var ci = group * g.CInPerGroup + c;
            for (var ky = 0; ky < g.KernelH; ky++)
            {
                var iy = oy * g.StrideH - g.PadH + ky * g.DilationH;
                if (iy < 0 || iy >= g.H) continue;
                for (var kx = 0; kx < g.KernelW; kx++)
                {
                    var ix = ox * g.StrideW - g.PadW + kx * g.DilationW;
                    if (ix < 0 || ix >= g.W) continue;
                    sum += double.CreateTruncating(x[(int)Src(g, n, ci, iy, ix)]) * double.CreateTruncating(w[(int)Weight(g, co, c, ky, kx)]);
                }
            }
        }
        return sum;
    }

    public static double BackwardDataAt<T>(Conv2dGeometry g, ReadOnlySpan<T> dy, ReadOnlySpan<T> w,
                                           int n, int ci, int iy, int ix) where T : INumberBase<T>
    {
        var group = ci / g.CInPerGroup;
        var c = ci - group * g.CInPerGroup;
        var sum = 0.0;
        for (var co = group * g.COutPerGroup; co < (group + 1) * g.COutPerGroup; co++)
            for (var ky = 0; ky < g.KernelH; ky++)
            {
                // iy = oy·s - p + ky·d  ⇒  oy = (iy + p - ky·d) / s when that divides exactly.
                var ty = iy + g.PadH - ky * g.DilationH;
                if (ty < 0 || ty % g.StrideH != 0 || ty / g.StrideH >= g.OutH) continue;
                var oy = ty / g.StrideH;
                for (var kx = 0; kx < g.KernelW; kx++)
                {
                    var tx = ix + g.PadW - kx * g.DilationW;
                    if (tx < 0 || tx % g.StrideW != 0 || tx / g.StrideW >= g.OutW) continue;
                    var ox = tx / g.StrideW;
                    sum += double.CreateTruncating(dy[(int)Dst(g, n, co, oy, ox)]) * double.CreateTruncating(w[(int)Weight(g, co, c, ky, kx)]);
                }
            }
        return sum;
    }

    public static double BackwardWeightsAt<T>(Conv2dGeometry g, ReadOnlySpan<T> x, ReadOnlySpan<T> dy,
                                              int co, int c, int ky, int kx) where T : INumberBase<T>
    {
        var ci = co / g.COutPerGroup * g.CInPerGroup + c;
        var sum = 0.0;
        for (var n = 0; n < g.N; n++)
            for (var oy = 0; oy < g.OutH; oy++)
            {
                var iy = oy * g.StrideH - g.PadH + ky * g.DilationH;
                if (iy < 0 || iy >= g.H) continue;
                for (var ox = 0; ox < g.OutW; ox++)
                {
                    var ix = ox * g.StrideW - g.PadW + kx * g.DilationW;
                    if (ix < 0 || ix >= g.W) continue;
                    sum += double.CreateTruncating(dy[(int)Dst(g, n, co, oy, ox)]) * double.CreateTruncating(x[(int)Src(g, n, ci, iy, ix)]);
                }
            }
        return sum;
    }

    public static double BiasGradAt<T>(Conv2dGeometry g, ReadOnlySpan<T> dy, int co) where T : INumberBase<T>
    {
        var sum = 0.0;
        for (var n = 0; n < g.N; n++)
            for (var oy = 0; oy < g.OutH; oy++)
                for (var ox = 0; ox < g.OutW; ox++)
                    sum += double.CreateTruncating(dy[(int)Dst(g, n, co, oy, ox)]);
        return sum;
    }

    /// <summary>y (N, COut, OutH, OutW); <paramref name="bias"/> may be null.
    /// Example: x = 1..9 as (1,1,3,3), w = ones (1,1,2,2) gives y = [12, 16, 24, 28].</summary>
    public static double[] Forward(Conv2dGeometry g, double[] x, double[] w, double[]? bias = null)
    {
        CheckLengths(g, ("x", x.Length, g.SrcLength), ("w", w.Length, g.WeightLength));
        if (bias is not null) CheckLengths(g, ("bias", bias.Length, g.BiasLength));
        var y = new double[g.DstLength];
        for (var n = 0; n < g.N; n++)
            for (var co = 0; co < g.COut; co++)
                for (var oy = 0; oy < g.OutH; oy++)
                    for (var ox = 0; ox < g.OutW; ox++)
                        y[(int)Dst(g, n, co, oy, ox)] = ForwardAt<double>(g, x, w, bias, n, co, oy, ox);
        return y;
    }

    /// <summary>dx (N, CIn, H, W) from dy (N, COut, OutH, OutW).</summary>
    public static double[] BackwardData(Conv2dGeometry g, double[] dy, double[] w)
    {
        CheckLengths(g, ("dy", dy.Length, g.DstLength), ("w", w.Length, g.WeightLength));
        var dx = new double[g.SrcLength];
        for (var n = 0; n < g.N; n++)
            for (var ci = 0; ci < g.CIn; ci++)
                for (var iy = 0; iy < g.H; iy++)
                    for (var ix = 0; ix < g.W; ix++)
                        dx[(int)Src(g, n, ci, iy, ix)] = BackwardDataAt<double>(g, dy, w, n, ci, iy, ix);
        return dx;
    }

    /// <summary>dw (COut, CIn/G, kh, kw) from the forward input x and dy.</summary>
    public static double[] BackwardWeights(Conv2dGeometry g, double[] x, double[] dy)
    {
        CheckLengths(g, ("x", x.Length, g.SrcLength), ("dy", dy.Length, g.DstLength));
        var dw = new double[g.WeightLength];
        for (var co = 0; co < g.COut; co++)
            for (var c = 0; c < g.CInPerGroup; c++)
                for (var ky = 0; ky < g.KernelH; ky++)
                    for (var kx = 0; kx < g.KernelW; kx++)
                        dw[(int)Weight(g, co, c, ky, kx)] = BackwardWeightsAt<double>(g, x, dy, co, c, ky, kx);
        return dw;
    }

    /// <summary>db (COut) from dy.</summary>
    public static double[] BiasGrad(Conv2dGeometry g, double[] dy)
    {
        CheckLengths(g, ("dy", dy.Length, g.DstLength));
        var db = new double[g.COut];
        for (var co = 0; co < g.COut; co++) db[co] = BiasGradAt<double>(g, dy, co);
        return db;
    }

    public static long Src(Conv2dGeometry g, int n, int c, int y, int x) => (((long)n * g.CIn + c) * g.H + y) * g.W + x;
    public static long Dst(Conv2dGeometry g, int n, int c, int y, int x) => (((long)n * g.COut + c) * g.OutH + y) * g.OutW + x;
    public static long Weight(Conv2dGeometry g, int co, int c, int ky, int kx) =>
        (((long)co * g.CInPerGroup + c) * g.KernelH + ky) * g.KernelW + kx;

    private static void CheckLengths(Conv2dGeometry g, params (string Name, int Actual, long Expected)[] buffers)
    {
        foreach (var (name, actual, expected) in buffers)
            if (actual != expected)
                throw new ArgumentException($"ConvolutionReference: {name} has {actual} elements, expected {expected} ({g}).");
    }
}
