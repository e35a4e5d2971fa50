// The normalized classifiers of section 1.8 in double, forward and VJP, from the definitions: u = v/(‖v‖ + eps) has
// ∂u/∂v = I/(‖v‖ + eps) − v·vᵀ/(‖v‖·(‖v‖ + eps)²), applied to the gradient of every normalized vector.
namespace Engine.LongTail.Reference;

public static class NormalizedClassifierReference
{
    private static double Norm(double[] a, int offset, int d)
    {
        double s = 0;
        for (var j = 0; j < d; j++) s += a[offset + j] * a[offset + j];
        return Math.Sqrt(s);
    }

    private static double[] Unit(double[] a, int rows, int d, double eps)
    {
        var u = new double[a.Length];
        for (var r = 0; r < rows; r++)
        {
            var norm = Norm(a, r * d, d) + eps;
            for (var j = 0; j < d; j++) u[r * d + j] = a[r * d + j] / norm;
        }
        return u;
    }

    /// <summary>Gradient wrt a (rows, d) of a loss whose gradient wrt u = a/(‖a‖ + eps) is gu.</summary>
    private static double[] UnitBackward(double[] a, int rows, int d, double eps, double[] gu)
    {
        var ga = new double[a.Length];
        for (var r = 0; r < rows; r++)
        {
            var norm = Norm(a, r * d, d);
            double dot = 0;
            for (var j = 0; j < d; j++) dot += a[r * d + j] * gu[r * d + j];
            for (var j = 0; j < d; j++)
                ga[r * d + j] = gu[r * d + j] / (norm + eps) - (norm == 0 ? 0 : a[r * d + j] * dot / (norm * (norm + eps) * (norm + eps)));
        }
        return ga;
    }

    /// <summary>z (n, o) = τ·x̂·ŵᵀ + b with x̂ = x/(‖x‖ + eps), ŵ_c = W_c/(‖W_c‖ + eps).</summary>
    public static double[] NormalizedLinear(double[] x, int n, double[] w, int o, int d, double[]? b, double tau, double eps)
    {
        var xu = Unit(x, n, d, eps);
        var wu = Unit(w, o, d, eps);
        var z = new double[n * o];
        for (var i = 0; i < n; i++)
            for (var c = 0; c < o; c++)
            {
                double s = 0;
                for (var j = 0; j < d; j++) s += xu[i * d + j] * wu[c * d + j];
                z[i * o + c] = tau * s + (b?[c] ?? 0);
            }
        return z;
    }

    /// <summary>(gx, gW, gb) of NormalizedLinear for output gradient g (n, o).</summary>
    public static (double[] Gx, double[] Gw, double[] Gb) NormalizedLinearBackward(double[] x, int n, double[] w, int o, int d, double tau, double eps, double[] g)
    {
        var xu = Unit(x, n, d, eps);
        var wu = Unit(w, o, d, eps);
        var gxu = new double[x.Length];
        var gwu = new double[w.Length];
        var gb = new double[o];
        for (var i = 0; i < n; i++)
            for (var c = 0; c < o; c++)
            {
                var gic = g[i * o + c];
                gb[c] += gic;
                for (var j = 0; j < d; j++)
                {
                    gxu[i * d + j] += tau * gic * wu[c * d + j];
                    gwu[c * d + j] += tau * gic * xu[i * d + j];
                }
            }
        return (UnitBackward(x, n, d, eps, gxu), UnitBackward(w, o, d, eps, gwu), gb);
    }

    /// <summary>RIO's cosine classifier: z_ic = s·g_c·x̂_i·v̂_c with x̂ = x/(‖x‖ + eps), v̂_c = v_c/‖v_c‖.</summary>
    public static double[] Cosine(double[] x, int n, double[] v, double[] gain, int o, int d, double scale, double eps)
    {
        var xu = Unit(x, n, d, eps);
        var vu = Unit(v, o, d, 0);
        var z = new double[n * o];
        for (var i = 0; i < n; i++)
            for (var c = 0; c < o; c++)
            {
                double s = 0;
                for (var j = 0; j < d; j++) s += xu[i * d + j] * vu[c * d + j];
                z[i * o + c] = scale * gain[c] * s;
            }
        return z;
    }

    /// <summary>(gx, gv, gg) of Cosine for output gradient g (n, o).</summary>
    public static (double[] Gx, double[] Gv, double[] Gg) CosineBackward(double[] x, int n, double[] v, double[] gain, int o, int d, double scale, double eps, double[] g)
    {
        var xu = Unit(x, n, d, eps);
        var vu = Unit(v, o, d, 0);
        var gxu = new double[x.Length];
        var gvu = new double[v.Length];
        var gg = new double[o];
        for (var i = 0; i < n; i++)
            for (var c = 0; c < o; c++)
            {
                var gic = g[i * o + c];
                double dot = 0;
                for (var j = 0; j < d; j++)
                {
                    dot += xu[i * d + j] * vu[c * d + j];
                    gxu[i * d + j] += scale * gain[c] * gic * vu[c * d + j];
                    gvu[c * d + j] += scale * gain[c] * gic * xu[i * d + j];
                }
                gg[c] += scale * gic * dot;
            }
        return (UnitBackward(x, n, d, eps, gxu), UnitBackward(v, o, d, 0, gvu), gg);
    }
}
