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
}
