// BACL's FHM in double (long-tail-methods.md section 4.3): the per-class statistics update (batch mean and unbiased
// variance, 0 for a single embedding; first time the batch values, then m ← a·batch + (1 − a)·m and likewise v), the
// class sampling distribution (1 − K[c][c]) / Σ, uniform when the sum is 0, and the bounds of a jittered box.
namespace Engine.LongTail.Reference;

public static class FhmReference
{
    /// <summary>Updates mean, variance (C, D) and the flags in place from embeddings x (M, D) with labels (M).</summary>
    public static void UpdateStatistics(double[] mean, double[] variance, bool[] has, double[] x, long[] labels, int d, double decay)
    {
        foreach (var c in labels.Distinct())
        {
            var rows = Enumerable.Range(0, labels.Length).Where(i => labels[i] == c).ToArray();
            for (var f = 0; f < d; f++)
            {
                var values = rows.Select(i => x[i * d + f]).ToArray();
                var m = values.Average();
                var v = values.Length > 1 ? values.Sum(t => (t - m) * (t - m)) / (values.Length - 1) : 0;
                var j = (int)c * d + f;
                mean[j] = has[c] ? decay * m + (1 - decay) * mean[j] : m;
                variance[j] = has[c] ? decay * v + (1 - decay) * variance[j] : v;
            }
            has[c] = true;
        }
    }

    /// <summary>(1 − K[c][c]) normalized over the C classes, uniform when every weight is 0.</summary>
    public static double[] ClassProbabilities(double[] confusion, int c)
    {
        var w = Enumerable.Range(0, c).Select(j => Math.Max(0, 1 - confusion[j * c + j])).ToArray();
        var s = w.Sum();
        return s > 0 ? w.Select(v => v / s).ToArray() : Enumerable.Repeat(1.0 / c, c).ToArray();
    }
}
