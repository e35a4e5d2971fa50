// Group and batch normalization written from their definitions in double, forward and backward (vector-Jacobian
// products), on flat row-major arrays of an (N, C, S) input where S is the product of the spatial dims. The
// fused ops (Tensor.GroupNorm, Tensor.BatchNorm) are tested against these; the backward passes are checked
// against finite differences of the forward passes.
//   group norm (Wu & He, 2018, Eqn. 1–3): statistics per (n, g) over the C/G channels of group g and all S;
//   batch norm (Ioffe & Szegedy, 2015, Alg. 1): statistics per channel over all N and S.
// Both: x̂ = (x − μ)/sqrt(σ² + eps) with the biased variance σ², y = x̂·w[c] + b[c] (w = 1, b = 0 when null).
namespace Engine.Reference;

public static class NormalizationReference
{
    // ---- group normalization ----

    /// <summary>Mean and 1/sqrt(σ² + eps) of each (n, g), as (N·G) arrays.</summary>
    public static (double[] Mean, double[] Rstd) GroupNormStatistics(double[] x, int n, int c, int s, int groups, double eps)
    {
        var (mean, rstd) = (new double[n * groups], new double[n * groups]);
        for (var i = 0; i < n; i++)
            for (var g = 0; g < groups; g++)
            {
                var members = GroupMembers(i, g, c, s, groups);
                (mean[i * groups + g], var variance) = MeanAndVariance(x, members);
                rstd[i * groups + g] = 1 / Math.Sqrt(variance + eps);
            }
        return (mean, rstd);
    }

    public static double[] GroupNormForward(double[] x, int n, int c, int s, int groups, double[]? weight, double[]? bias, double eps)
    {
        var y = new double[x.Length];
        var (mean, rstd) = GroupNormStatistics(x, n, c, s, groups, eps);
        for (var i = 0; i < n; i++)
            for (var ch = 0; ch < c; ch++)
            {
                var at = i * groups + ch / (c / groups);
                for (var k = 0; k < s; k++)
                {
                    var j = ((long)i * c + ch) * s + k;
                    y[j] = (x[j] - mean[at]) * rstd[at] * (weight?[ch] ?? 1) + (bias?[ch] ?? 0);
                }
            }
        return y;
    }

    /// <summary>VJP of GroupNorm. Per (n, g) with m members, r = rstd and dx̂ = dy·w[c]:
    /// dx = r·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) (the μ and σ² paths of the chain rule); dw[c] = Σ dy·x̂; db[c] = Σ dy.</summary>
    public static (double[] Dx, double[] Dweight, double[] Dbias) GroupNormBackward(double[] x, int n, int c, int s, int groups,
                                                                                  double[]? weight, double eps, double[] dy)
    {
        var (dx, dw, db) = (new double[x.Length], new double[c], new double[c]);
        var (mean, rstd) = GroupNormStatistics(x, n, c, s, groups, eps);
        for (var i = 0; i < n; i++)
            for (var g = 0; g < groups; g++)
            {
                var members = GroupMembers(i, g, c, s, groups);
                var (mu, r) = (mean[i * groups + g], rstd[i * groups + g]);
                NormalizeBackward(x, dy, members, mu, r, weight, dx, dw, db, s, c);
            }
        return (dx, dw, db);
    }

    // ---- batch normalization ----

    /// <summary>Per-channel mean and biased variance over the N·S values of each channel.</summary>
    public static (double[] Mean, double[] Variance) BatchNormStatistics(double[] x, int n, int c, int s)
    {
        var (mean, variance) = (new double[c], new double[c]);
        for (var ch = 0; ch < c; ch++) (mean[ch], variance[ch]) = MeanAndVariance(x, ChannelMembers(ch, n, c, s));
        return (mean, variance);
    }

    /// <summary>y = (x − mean[c])/sqrt(variance[c] + eps)·w[c] + b[c] with the given statistics (the running ones in
    /// evaluation mode).</summary>
    public static double[] BatchNormForward(double[] x, int n, int c, int s, double[] mean, double[] variance,
                                            double[]? weight, double[]? bias, double eps)
    {
        var y = new double[x.Length];
        for (var i = 0; i < n; i++)
            for (var ch = 0; ch < c; ch++)
                for (var k = 0; k < s; k++)
                {
                    var j = ((long)i * c + ch) * s + k;
                    y[j] = (x[j] - mean[ch]) / Math.Sqrt(variance[ch] + eps) * (weight?[ch] ?? 1) + (bias?[ch] ?? 0);
                }
        return y;
    }

    /// <summary>Training-mode forward: normalized by the batch's own statistics.</summary>
    public static double[] BatchNormTrainForward(double[] x, int n, int c, int s, double[]? weight, double[]? bias, double eps)
    {
        var (mean, variance) = BatchNormStatistics(x, n, c, s);
        return BatchNormForward(x, n, c, s, mean, variance, weight, bias, eps);
    }

    /// <summary>VJP of the training-mode forward: the statistics depend on x, so per channel with m = N·S values
    /// dx = r·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)), dx̂ = dy·w[c]; dw[c] = Σ dy·x̂; db[c] = Σ dy.</summary>
    public static (double[] Dx, double[] Dweight, double[] Dbias) BatchNormTrainBackward(double[] x, int n, int c, int s,
                                                                                       double[]? weight, double eps, double[] dy)
    {
        var (dx, dw, db) = (new double[x.Length], new double[c], new double[c]);
        for (var ch = 0; ch < c; ch++)
        {
            var members = ChannelMembers(ch, n, c, s);
            var (mu, variance) = MeanAndVariance(x, members);
            NormalizeBackward(x, dy, members, mu, 1 / Math.Sqrt(variance + eps), weight, dx, dw, db, s, c);
        }
        return (dx, dw, db);
    }

    /// <summary>VJP of the evaluation-mode forward (constant statistics): dx = dy·w[c]/sqrt(var[c] + eps),
    /// dw[c] = Σ dy·x̂, db[c] = Σ dy.</summary>
    public static (double[] Dx, double[] Dweight, double[] Dbias) BatchNormEvalBackward(double[] x, int n, int c, int s, double[] mean,
                                                                                      double[] variance, double[]? weight, double eps, double[] dy)
    {
        var (dx, dw, db) = (new double[x.Length], new double[c], new double[c]);
        for (var i = 0; i < n; i++)
            for (var ch = 0; ch < c; ch++)
            {
                var r = 1 / Math.Sqrt(variance[ch] + eps);
                for (var k = 0; k < s; k++)
                {
                    var j = ((long)i * c + ch) * s + k;
                    dx[j] = dy[j] * (weight?[ch] ?? 1) * r;
                    dw[ch] += dy[j] * (x[j] - mean[ch]) * r;
                    db[ch] += dy[j];
                }
            }
        return (dx, dw, db);
    }

    /// <summary>PyTorch's running-statistics update after one training batch of <paramref name="count"/> values per
    /// channel: running_mean ← (1 − m)·running_mean + m·mean, running_var ← (1 − m)·running_var + m·var·count/(count − 1)
    /// (the unbiased variance), in place.</summary>
    public static void BatchNormRunningUpdate(double[] runningMean, double[] runningVar, double[] mean, double[] biasedVariance,
                                              long count, double momentum)
    {
        for (var ch = 0; ch < runningMean.Length; ch++)
        {
            runningMean[ch] = (1 - momentum) * runningMean[ch] + momentum * mean[ch];
            runningVar[ch] = (1 - momentum) * runningVar[ch] + momentum * biasedVariance[ch] * count / (count - 1);
        }
    }

    // ---- shared ----

    /// <summary>Flat indices of the (C/G)·S members of group g of sample i.</summary>
    private static long[] GroupMembers(int i, int g, int c, int s, int groups)
    {
        var perGroup = c / groups;
        var members = new long[perGroup * s];
        for (var j = 0; j < members.Length; j++) members[j] = ((long)i * c + g * perGroup + j / s) * s + j % s;
        return members;
    }

    /// <summary>Flat indices of the N·S members of channel ch.</summary>
    private static long[] ChannelMembers(int ch, int n, int c, int s)
    {
        var members = new long[(long)n * s];
        for (var j = 0; j < members.Length; j++) members[j] = ((long)(j / s) * c + ch) * s + j % s;
        return members;
    }

    private static (double Mean, double Variance) MeanAndVariance(double[] x, long[] members)
    {
        double mean = 0;
        foreach (var j in members) mean += x[j];
        mean /= members.Length;
        double variance = 0;
        foreach (var j in members) variance += (x[j] - mean) * (x[j] - mean);
        return (mean, variance / members.Length);
    }

    /// <summary>The VJP through x̂ = (x − μ)·r over one set of members that share μ and r (both functions of those
    /// members): writes dx of the members and accumulates dw, db of their channels.</summary>
    private static void NormalizeBackward(double[] x, double[] dy, long[] members, double mu, double r, double[]? weight,
                                          double[] dx, double[] dw, double[] db, int s, int c)
    {
        var m = members.Length;
        double meanDxhat = 0, meanDxhatXhat = 0;
        foreach (var j in members)
        {
            var ch = (int)(j / s % c);
            var xhat = (x[j] - mu) * r;
            var dxhat = dy[j] * (weight?[ch] ?? 1);
            meanDxhat += dxhat / m;
            meanDxhatXhat += dxhat * xhat / m;
            dw[ch] += dy[j] * xhat;
            db[ch] += dy[j];
        }
        foreach (var j in members)
        {
            var ch = (int)(j / s % c);
            var xhat = (x[j] - mu) * r;
            dx[j] = r * (dy[j] * (weight?[ch] ?? 1) - meanDxhat - xhat * meanDxhatXhat);
        }
    }
}
