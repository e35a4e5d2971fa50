// FrozenBatchNorm2d written from its definition in double, forward and backward (vector-Jacobian product), on
// flat row-major arrays of an (N, C, S) input where S is the product of the spatial dims. Group and batch
// normalization with statistics computed from the input are in NormalizationReference.
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

    /// <summary>FrozenBatchNorm2d followed by a ReLU: max(FrozenBatchNormForward(x), 0), NaN kept.</summary>
    public static double[] FrozenBatchNormReluForward(double[] x, int n, int c, int s, double[] weight, double[] bias,
                                                      double[] runningMean, double[] runningVar, double eps) =>
        FrozenBatchNormForward(x, n, c, s, weight, bias, runningMean, runningVar, eps).Select(v => v > 0 || double.IsNaN(v) ? v : 0).ToArray();

    /// <summary>dL/dx of FrozenBatchNormReluForward: dy·w/sqrt(var+eps) where the normalized x is positive, else 0.</summary>
    public static double[] FrozenBatchNormReluBackward(double[] dy, double[] x, int n, int c, int s, double[] weight, double[] bias,
                                                       double[] runningMean, double[] runningVar, double eps)
    {
        var normalized = FrozenBatchNormForward(x, n, c, s, weight, bias, runningMean, runningVar, eps);
        var dx = FrozenBatchNormBackward(dy, n, c, s, weight, runningVar, eps);
        for (var i = 0; i < dx.Length; i++)
            if (!(normalized[i] > 0)) dx[i] = 0;
        return dx;
    }
}
