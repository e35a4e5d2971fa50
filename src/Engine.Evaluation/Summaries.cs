// The 13 summary metrics of the official results dict (lvis-eval.md section 6): means of the precision
// or recall entries > -1 over the selected slice, gathered in numpy's C order (threshold, recall
// threshold, category) and averaged with numpy's summation order, so they equal the official values
// bit for bit rather than to 1e-15.
using Engine.Lvis;

namespace Engine.Evaluation;

internal static class Summaries
{
    public static LvisSummary Compute(LvisEvalResult r)
    {
        int t50 = Array.IndexOf(EvalParams.IouThresholds, 0.5);
        int t75 = Array.IndexOf(EvalParams.IouThresholds, 0.75);
        var k = r.GroundTruth;
        int[] Group(LvisFrequency f) => [.. Enumerable.Range(0, k.CategoryCount).Where(i => k.Frequencies[i] == f)];
        return new LvisSummary(
            AP: Ap(r, null, 0, null),
            AP50: Ap(r, t50, 0, null),
            AP75: Ap(r, t75, 0, null),
            APs: Ap(r, null, 1, null),
            APm: Ap(r, null, 2, null),
            APl: Ap(r, null, 3, null),
            APr: Ap(r, null, 0, Group(LvisFrequency.Rare)),
            APc: Ap(r, null, 0, Group(LvisFrequency.Common)),
            APf: Ap(r, null, 0, Group(LvisFrequency.Frequent)),
            AR300: Ar(r, 0),
            ARs300: Ar(r, 1),
            ARm300: Ar(r, 2),
            ARl300: Ar(r, 3));
    }

    /// <summary>Mean of precision[t, :, cats, a] entries > -1 for one threshold (or all), in C order.</summary>
    internal static double Ap(LvisEvalResult r, int? threshold, int area, int[]? categories)
    {
        int K = r.GroundTruth.CategoryCount;
        int t0 = threshold ?? 0, t1 = threshold + 1 ?? EvalParams.T;
        int nk = categories?.Length ?? K;
        var precision = r.Precision;
        var values = new double[(t1 - t0) * EvalParams.R * nk];
        int n = 0;
        for (int t = t0; t < t1; t++)
        {
            for (int rr = 0; rr < EvalParams.R; rr++)
            {
                int row = (t * EvalParams.R + rr) * K;
                if (categories is null)
                {
                    for (int k = 0; k < K; k++)
                        values[n++] = precision[(row + k) * EvalParams.A + area];
                }
                else
                {
                    foreach (int k in categories)
                        values[n++] = precision[(row + k) * EvalParams.A + area];
                }
            }
        }
        return NumpyMean.MeanOfDefinedInPlace(values);
    }

    /// <summary>Mean of recall[:, :, a] entries > -1, in C order (threshold, category).</summary>
    internal static double Ar(LvisEvalResult r, int area)
    {
        int K = r.GroundTruth.CategoryCount;
        var values = new double[EvalParams.T * K];
        for (int i = 0; i < values.Length; i++)
            values[i] = r.Recall[i * EvalParams.A + area];
        return NumpyMean.MeanOfDefinedInPlace(values);
    }
}
