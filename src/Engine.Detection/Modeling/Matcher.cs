// Assigns each prediction (anchor or proposal) to a ground-truth box from their quality matrix (IoU), as
// detectron2's Matcher: the best ground truth per prediction (first on ties), labelled by the interval of
// thresholds its quality falls in (low ≤ q < high). With allowLowQualityMatches (Faster R-CNN, Sec. 3.1.2,
// case (i)), every ground truth's highest-quality predictions — ties included — are also labelled positive,
// keeping their own best match. As in detectron2, a ground truth that overlaps nothing has highest quality 0,
// which makes every prediction of quality 0 with it positive; ground truth always overlaps some anchor in
// practice, and filtering empty ground-truth boxes beforehand avoids the case.
namespace Engine.Detection;

public sealed class Matcher
{
    public Matcher(IReadOnlyList<double> thresholds, IReadOnlyList<int> labels, bool allowLowQualityMatches = false)
    {
        if (thresholds.Count == 0 || !(thresholds[0] > 0))
            throw new ArgumentException($"Matcher: thresholds [{string.Join(", ", thresholds)}] must be a non-empty list starting above 0 (e.g. [0.3, 0.7]).");
        for (var i = 1; i < thresholds.Count; i++)
            if (!(thresholds[i - 1] <= thresholds[i]))
                throw new ArgumentException($"Matcher: thresholds [{string.Join(", ", thresholds)}] must be ascending.");
        if (labels.Count != thresholds.Count + 1 || labels.Any(l => l is < -1 or > 1))
            throw new ArgumentException($"Matcher: labels [{string.Join(", ", labels)}] must hold {thresholds.Count + 1} values (one per interval between " +
                                        "the thresholds and ±∞), each -1 (ignore), 0 (negative) or 1 (positive).");
        Rule = new MatcherRule(thresholds.ToArray(), labels.ToArray(), allowLowQualityMatches);
    }

    /// <summary>The RPN's matcher: IoU &lt; 0.3 negative, [0.3, 0.7) ignored, ≥ 0.7 positive, plus low-quality matches.</summary>
    public static Matcher ForRpn() => new([0.3, 0.7], [0, -1, 1], allowLowQualityMatches: true);

    /// <summary>The ROI heads' matcher: IoU &lt; 0.5 background, ≥ 0.5 foreground.</summary>
    public static Matcher ForRoiHeads() => new([0.5], [0, 1], allowLowQualityMatches: false);

    public MatcherRule Rule { get; }

    /// <summary>quality (M ground truth, N predictions) float32 ≥ 0 → matches (N) int64 in [0, M) and labels (N) int64 in
    /// {-1, 0, 1}. With M = 0 every prediction gets match 0 and the lowest interval's label.</summary>
    public (Tensor Matches, Tensor Labels) Match(Tensor quality)
    {
        if (quality.DType != DType.Float32 || quality.Rank != 2)
            throw new ArgumentException($"Matcher: the quality matrix must be float32 (M ground truth, N predictions), got {quality.DType.Name()}{ShapeUtil.Format(quality.Shape)}.");
        using var q = quality.Contiguous();
        var n = quality.Size(1);
        var matches = Tensor.Empty([n], DType.Int64, quality.Device);
        var labels = Tensor.Empty([n], DType.Int64, quality.Device);
        try { DetectionBackends.For(quality.Device).MatchProposals(q, Rule, matches, labels); }
        catch
        {
            matches.Dispose();
            labels.Dispose();
            throw;
        }
        return (matches, labels);
    }
}
