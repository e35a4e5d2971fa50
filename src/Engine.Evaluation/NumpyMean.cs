// The mean exactly as numpy computes np.mean of a contiguous float64 vector (lvis-eval.md section 6):
// add.reduce starts from 0.0 and adds the pairwise sum of each 8192-element buffer chunk in turn;
// the pairwise sum is numpy's pairwise_sum (8 running sums for blocks up to 128 elements, halving at a
// multiple of 8 above). Reproducing the order makes summary metrics equal the official ones bit for bit.
using System.Runtime.CompilerServices;

namespace Engine.Evaluation;

public static class NumpyMean
{
    private const int BufferSize = 8192;

    /// <summary>Mean of <paramref name="values"/>; NaN for an empty span (numpy warns and returns nan).</summary>
    public static double Mean(ReadOnlySpan<double> values)
    {
        if (values.IsEmpty)
            return double.NaN;
        double sum = 0.0;
        for (int start = 0; start < values.Length; start += BufferSize)
            sum += PairwiseSum(values.Slice(start, Math.Min(BufferSize, values.Length - start)));
        return sum / values.Length;
    }

    /// <summary>Mean of the entries greater than -1, or -1 when there is none: the official summarize rule.</summary>
    public static double MeanOfDefined(ReadOnlySpan<double> values)
    {
        var kept = values.ToArray();
        return MeanOfDefinedInPlace(kept);
    }

    /// <summary>As <see cref="MeanOfDefined"/>, compacting the kept entries to the front of <paramref name="values"/>.</summary>
    public static double MeanOfDefinedInPlace(Span<double> values)
    {
        int n = 0;
        for (int i = 0; i < values.Length; i++)
        {
            double v = values[i];
            if (v > -1)
                values[n++] = v;
        }
        return n == 0 ? -1.0 : Mean(values[..n]);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static double PairwiseSum(ReadOnlySpan<double> a)
    {
        int n = a.Length;
        if (n < 8)
        {
            double res = 0.0;
            for (int i = 0; i < n; i++)
                res += a[i];
            return res;
        }
        if (n <= 128)
        {
            double r0 = a[0], r1 = a[1], r2 = a[2], r3 = a[3], r4 = a[4], r5 = a[5], r6 = a[6], r7 = a[7];
            int i;
            for (i = 8; i < n - (n % 8); i += 8)
            {
                r0 += a[i]; r1 += a[i + 1]; r2 += a[i + 2]; r3 += a[i + 3];
                r4 += a[i + 4]; r5 += a[i + 5]; r6 += a[i + 6]; r7 += a[i + 7];
            }
            double res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));
            for (; i < n; i++)
                res += a[i];
            return res;
        }
        int n2 = n / 2;
        n2 -= n2 % 8;
        return PairwiseSum(a[..n2]) + PairwiseSum(a[n2..]);
    }
}
