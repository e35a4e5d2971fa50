// Softmax cross-entropy over C+1 logits (background last), the reference head (section 1.1), optionally with
// per-class weights for the re-weighting baselines (section 1.3): L = (1/N)·Σ_i w_{y_i}·CE_i. The division is
// by N, not by Σ w (unlike a weighted mean), as the spec fixes. Scores: softmax, background column included.
namespace Engine.LongTail;

public sealed class SoftmaxCrossEntropyLoss : ClassificationLoss
{
    private readonly Tensor _weight;
    private readonly bool _weighted;

    /// <param name="classWeights">C+1 weights (background last), e.g. from ClassWeights; null for plain CE.</param>
    public SoftmaxCrossEntropyLoss(int numClasses, IReadOnlyList<double>? classWeights = null) : base(numClasses, numClasses + 1)
    {
        if (classWeights is not null)
        {
            if (classWeights.Count != numClasses + 1)
                throw new ArgumentException($"SoftmaxCrossEntropyLoss: {classWeights.Count} class weights for C = {numClasses}; pass C + 1 = {numClasses + 1} (background last).");
            if (classWeights.Any(w => !(w >= 0) || double.IsInfinity(w)))
                throw new ArgumentException("SoftmaxCrossEntropyLoss: class weights must be finite and ≥ 0.");
        }
        _weighted = classWeights is not null;
        using (DisposeScope.Suspend())
            _weight = Tensor.FromDoubles(classWeights?.ToArray() ?? Enumerable.Repeat(1.0, numClasses + 1).ToArray(), [numClasses + 1]);
    }

    /// <summary>The class weights (C+1) or null.</summary>
    public IReadOnlyList<double>? ClassWeights => _weighted ? _weight.ToDoubleArray() : null;

    protected override Tensor ComputeLoss(Tensor logits, Tensor labels, long[] hostLabels, LossContext context)
    {
        // unweighted, the plain detector's own cross-entropy (mean over N), so this head reproduces it bit for bit
        if (!_weighted && hostLabels.Length > 0) return Losses.CrossEntropy(logits, labels);
        using var weight = SigmoidWeights.OnDevice(_weight, logits.Device);
        return LongTailOps.WeightedSoftmaxCrossEntropy(logits, labels, weight, Normalizer(hostLabels.Length));
    }

    protected override Tensor ComputeScores(Tensor logits) => logits.Softmax(1);

    protected override void DisposeOwned() => _weight.Dispose();
}

/// <summary>Per-class weights of the re-weighting baselines (section 1.3), C+1 values with background 1.</summary>
public static class ClassWeights
{
    /// <summary>BAGS "Re-weight": w_c = (1/n_c) / mean over foreground of (1/n_c), clipped to [low, high].</summary>
    public static double[] InverseFrequency(IReadOnlyList<long> instanceCounts, double low = 0.1, double high = 5) =>
        Normalized(instanceCounts, n => 1.0 / n, low, high, "InverseFrequency");

    /// <summary>Class-balanced (effective number, Cui et al. 2019): w_c = (1 − β)/(1 − β^{n_c}), normalized to mean 1
    /// over foreground classes, clipped to [low, high].</summary>
    public static double[] ClassBalanced(IReadOnlyList<long> instanceCounts, double beta = 0.999, double low = 0.1, double high = 5)
    {
        if (!(beta > 0 && beta < 1)) throw new ArgumentException($"ClassWeights.ClassBalanced: beta must be in (0, 1), got {beta}.");
        return Normalized(instanceCounts, n => (1 - beta) / (1 - Math.Pow(beta, n)), low, high, "ClassBalanced");
    }

    private static double[] Normalized(IReadOnlyList<long> counts, Func<long, double> raw, double low, double high, string op)
    {
        if (counts.Count == 0) throw new ArgumentException($"ClassWeights.{op}: no classes.");
        for (var c = 0; c < counts.Count; c++)
            if (counts[c] <= 0)
                throw new ArgumentException($"ClassWeights.{op}: class {c} has {counts[c]} training instances; every weight needs n_c ≥ 1.");
        var w = counts.Select(raw).ToArray();
        var mean = w.Average();
        var result = new double[counts.Count + 1];
        for (var c = 0; c < w.Length; c++) result[c] = Math.Clamp(w[c] / mean, low, high);
        result[^1] = 1;
        return result;
    }
}
