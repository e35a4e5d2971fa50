// LogN in double (section 2): batch mean and unbiased variance per column, the EMA and exact statistics, the
// calibration z' = (z − (μ − β))/sd with the background untouched, and repo mode's affine-free batch
// normalization with its gradient (the batch-norm VJP written from the chain rule through mean and variance).
namespace Engine.LongTail.Reference;

public static class LogitNormReference
{
    /// <summary>Per column of x (n, k): mean and unbiased variance (divisor n − 1).</summary>
    public static (double[] Mean, double[] Variance) BatchStatistics(double[] x, int n, int k)
    {
        var mean = new double[k];
        var variance = new double[k];
        for (var j = 0; j < k; j++)
        {
            double s = 0;
            for (var i = 0; i < n; i++) s += x[i * k + j];
            mean[j] = s / n;
            double ss = 0;
            for (var i = 0; i < n; i++) ss += (x[i * k + j] - mean[j]) * (x[i * k + j] - mean[j]);
            variance[j] = ss / (n - 1);
        }
        return (mean, variance);
    }

    /// <summary>μ ← (1 − m)μ + m·a, v ← (1 − m)v + m·b in place.</summary>
    public static void EmaUpdate(double[] x, int n, int k, double momentum, double[] mean, double[] variance)
    {
        var (a, b) = BatchStatistics(x, n, k);
        for (var j = 0; j < k; j++)
        {
            mean[j] = (1 - momentum) * mean[j] + momentum * a[j];
            variance[j] = (1 - momentum) * variance[j] + momentum * b[j];
        }
    }

    /// <summary>z'_c = (z_c − (μ_c − β))/sqrt(max(v_c, 1e-11)) for c &lt; C with β = min_{c &lt; C} μ_c; z'_C = z_C.</summary>
    public static double[] Calibrate(double[] z, int n, int c, double[] mean, double[] variance)
    {
        var k = c + 1;
        var beta = mean.Take(c).Min();
        var r = new double[z.Length];
        for (var i = 0; i < n; i++)
        {
            for (var j = 0; j < c; j++) r[i * k + j] = (z[i * k + j] - (mean[j] - beta)) / Math.Sqrt(Math.Max(variance[j], 1e-11));
            r[i * k + c] = z[i * k + c];
        }
        return r;
    }

    /// <summary>(x − batch mean)/sqrt(biased batch variance + eps) per column.</summary>
    public static double[] Standardize(double[] x, int n, int k, double eps)
    {
        var (mean, unbiased) = BatchStatistics(x, n, k);
        var y = new double[x.Length];
        for (var j = 0; j < k; j++)
        {
            var sd = Math.Sqrt(unbiased[j] * (n - 1) / n + eps);
            for (var i = 0; i < n; i++) y[i * k + j] = (x[i * k + j] - mean[j]) / sd;
        }
        return y;
    }

    /// <summary>VJP of Standardize: with d_i = x_i − m, σ² = Σd²/n, y_i = d_i/sqrt(σ² + eps):
    /// ∂y_i/∂x_l = ([i = l] − 1/n)/s − d_i·d_l/(n·s³), s = sqrt(σ² + eps), summed against g.</summary>
    public static double[] StandardizeBackward(double[] x, int n, int k, double eps, double[] g)
    {
        var gx = new double[x.Length];
        for (var j = 0; j < k; j++)
        {
            double m = 0;
            for (var i = 0; i < n; i++) m += x[i * k + j];
            m /= n;
            double v = 0;
            for (var i = 0; i < n; i++) v += (x[i * k + j] - m) * (x[i * k + j] - m);
            v /= n;
            var s = Math.Sqrt(v + eps);
            for (var l = 0; l < n; l++)
            {
                var dl = x[l * k + j] - m;
                double acc = 0;
                for (var i = 0; i < n; i++)
                {
                    var di = x[i * k + j] - m;
                    acc += g[i * k + j] * (((i == l ? 1 : 0) - 1.0 / n) / s - di * dl / (n * s * s * s));
                }
                gx[l * k + j] = acc;
            }
        }
        return gx;
    }
}
