// Picks the RoIs (or anchors) that enter the loss, as detectron2's subsample_labels: at most
// batchSizePerImage·positiveFraction positives, filled up to batchSizePerImage with negatives, each set a
// uniform random subset (in random order) of the candidates, drawn from an explicit Generator so that runs
// and resumed runs repeat exactly. Labels: -1 ignored, backgroundLabel negative, anything else positive
// (RPN: labels {-1, 0, 1} with background 0; ROI heads: class ids with background = number of classes).
namespace Engine.Detection;

public sealed class BalancedPositiveNegativeSampler
{
    public BalancedPositiveNegativeSampler(int batchSizePerImage, double positiveFraction)
    {
        if (batchSizePerImage < 0) throw new ArgumentException($"BalancedPositiveNegativeSampler: batch size {batchSizePerImage} must be ≥ 0.");
        if (!(positiveFraction >= 0 && positiveFraction <= 1))
            throw new ArgumentException($"BalancedPositiveNegativeSampler: positive fraction {positiveFraction} must lie in [0, 1].");
        BatchSizePerImage = batchSizePerImage;
        PositiveFraction = positiveFraction;
    }

    public int BatchSizePerImage { get; }
    public double PositiveFraction { get; }

    /// <summary>(positive indices, negative indices), int64, into labels (N) (int64 or int32), on the labels' device. Reads
    /// the labels on the host (on a GPU, a wait: the sample sizes depend on them).</summary>
    public (Tensor Positive, Tensor Negative) Sample(Tensor labels, long backgroundLabel, Generator generator)
    {
        if (labels.DType is not (DType.Int64 or DType.Int32) || labels.Rank != 1)
            throw new ArgumentException($"BalancedPositiveNegativeSampler: labels must be int64 or int32 of shape (N), got {labels.DType.Name()}{ShapeUtil.Format(labels.Shape)}.");
        var (pos, neg) = Sample(labels.ToInt64Array(), backgroundLabel, generator);
        return (Tensor.From<long>(pos, [pos.Length], labels.Device), Tensor.From<long>(neg, [neg.Length], labels.Device));
    }

    /// <summary>The same draw on labels already on the host: (positive indices, negative indices) into <paramref name="values"/>.</summary>
    public (long[] Positive, long[] Negative) Sample(ReadOnlySpan<long> values, long backgroundLabel, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(generator);
        var positive = new List<long>();
        var negative = new List<long>();
        for (var i = 0; i < values.Length; i++)
        {
            if (values[i] == backgroundLabel) negative.Add(i);
            else if (values[i] != -1) positive.Add(i);
        }
        var numPos = Math.Min(positive.Count, (int)(BatchSizePerImage * PositiveFraction));
        var numNeg = Math.Min(negative.Count, BatchSizePerImage - numPos);
        var pos = RandomSubset(positive, numPos, generator);
        var neg = RandomSubset(negative, numNeg, generator);
        return (pos, neg);
    }

    /// <summary>k of the candidates, uniformly without replacement, in random order (partial Fisher–Yates).</summary>
    private static long[] RandomSubset(List<long> candidates, int k, Generator generator)
    {
        var a = candidates.ToArray();
        for (var i = 0; i < k; i++)
        {
            var j = i + (int)generator.NextInt64(a.Length - i);
            (a[i], a[j]) = (a[j], a[i]);
        }
        return a[..k];
    }
}
