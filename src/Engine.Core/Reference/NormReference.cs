// Normalization layers written from their definitions in double, forward and backward (vector-Jacobian
// products), on flat row-major arrays of an (N, C, S) input where S is the product of the spatial dims.
// The engine's modules are tested against these; the backward passes against finite differences.
namespace Engine.Reference;

public static class NormReference
{
    /// <summary>FrozenBatchNorm2d: y = x·w/sqrt(var+eps) + (b − mean·w/sqrt(var+eps)) per channel.</summary>
    public static double[] FrozenBatchNormForward(double[] x, int n, int c, int s, double[] weight, double[] bias,
                                                  double[] runningMean, double[] runningVar, double eps)
    {
        var y = new double[x.Length];
        for (var i = 0; i < n; i++)
            for (var ch = 0; ch < c; ch++)
            {
                var scale = weight[ch] / Math.Sqrt(runningVar[ch] + eps);
                for (var k = 0; k < s; k++)
                {
                    var at = ((long)i * c + ch) * s + k;
                    y[at] = (x[at] - runningMean[ch]) * scale + bias[ch];
                }
            }
        return y;
    }

    /// <summary>dL/dx of FrozenBatchNorm2d: dy·w/sqrt(var+eps); the statistics receive no gradient.</summary>
    public static double[] FrozenBatchNormBackward(double[] dy, int n, int c, int s, double[] weight, double[] runningVar, double eps)
    {
        var dx = new double[dy.Length];
        for (var i = 0; i < n; i++)
            for (var ch = 0; ch < c; ch++)
            {
                var scale = weight[ch] / Math.Sqrt(runningVar[ch] + eps);
                for (var k = 0; k < s; k++)
                {
                    var at = ((long)i * c + ch) * s + k;
                    dx[at] = dy[at] * scale;
                }
            }
        return dx;
    }

    /// <summary>GroupNorm: per (sample, group) of C/G channels × S positions, x̂ = (x − μ)/sqrt(σ² + eps) with the
    /// biased variance σ², then y = x̂·w[c] + b[c] (w = 1, b = 0 when null).</summary>
    public static double[] GroupNormForward(double[] x, int n, int c, int s, int groups, double[]? weight, double[]? bias, double eps)
    {
        var y = new double[x.Length];
        ForEachGroup(x, n, c, s, groups, eps, (indices, channels, mean, inv) =>
        {
            for (var j = 0; j < indices.Length; j++)
            {
                var ch = channels[j];
                var xhat = (x[indices[j]] - mean) * inv;
                y[indices[j]] = xhat * (weight?[ch] ?? 1) + (bias?[ch] ?? 0);
            }
        });
        return y;
    }

    /// <summary>VJP of GroupNorm. With m elements per group, x̂ and r = 1/sqrt(σ² + eps):
    /// dx = r·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)), dx̂ = dy·w[c]; dw[c] = Σ dy·x̂; db[c] = Σ dy.</summary>
    public static (double[] Dx, double[] Dweight, double[] Dbias) GroupNormBackward(double[] x, int n, int c, int s, int groups,
                                                                                  double[]? weight, double eps, double[] dy)
    {
        var dx = new double[x.Length];
        var dw = new double[c];
        var db = new double[c];
        ForEachGroup(x, n, c, s, groups, eps, (indices, channels, mean, inv) =>
        {
            var m = indices.Length;
            double meanDxhat = 0, meanDxhatXhat = 0;
            var xhat = new double[m];
            var dxhat = new double[m];
            for (var j = 0; j < m; j++)
            {
                var ch = channels[j];
                xhat[j] = (x[indices[j]] - mean) * inv;
                dxhat[j] = dy[indices[j]] * (weight?[ch] ?? 1);
                meanDxhat += dxhat[j];
                meanDxhatXhat += dxhat[j] * xhat[j];
                dw[ch] += dy[indices[j]] * xhat[j];
                db[ch] += dy[indices[j]];
            }
            meanDxhat /= m;
            meanDxhatXhat /= m;
            for (var j = 0; j < m; j++) dx[indices[j]] = inv * (dxhat[j] - meanDxhat - xhat[j] * meanDxhatXhat);
        });
        return (dx, dw, db);
    }

    private static void ForEachGroup(double[] x, int n, int c, int s, int groups, double eps, Action<long[], int[], double, double> body)
    {
        var perGroup = c / groups;
        for (var i = 0; i < n; i++)
            for (var g = 0; g < groups; g++)
            {
                var m = perGroup * s;
                var indices = new long[m];
                var channels = new int[m];
                for (var j = 0; j < m; j++)
                {
                    channels[j] = g * perGroup + j / s;
                    indices[j] = ((long)i * c + channels[j]) * s + j % s;
                }
                double mean = 0;
                foreach (var at in indices) mean += x[at];
                mean /= m;
                double variance = 0;
                foreach (var at in indices) variance += (x[at] - mean) * (x[at] - mean);
                variance /= m;
                body(indices, channels, mean, 1 / Math.Sqrt(variance + eps));
            }
    }
}
