// Seesaw loss (section 1.6, mmdetection's implementation): C class logits with a softmax among classes, and
// two objectness logits (o_fg, o_bg). For a positive of class i the penalty on class j is scaled by
// S_ij = M_ij·C_ij: mitigation M_ij = (N_j/N_i)^p when N_j < N_i (cumulative label counts, clamped to ≥ 1), and
// compensation C_ij = (s_j / max(s_i, eps))^q when that ratio exceeds 1 (s = softmax(u), detached). The ratio
// test is the code's; it equals the spec's s_j > s_i unless s_i < eps, and keeps C ≥ 1 as 1.6's check requires.
namespace Engine.LongTail;

public sealed class SeesawLoss : ClassificationLoss
{
    private readonly Tensor _counts;

    /// <param name="lossWeight">multiplies both terms (mmdetection's loss_weight, 1).</param>
    public SeesawLoss(int numClasses, double p = 0.8, double q = 2.0, double eps = 0.01, double lossWeight = 1) : base(numClasses, numClasses + 2)
    {
        if (!(p >= 0) || !(q >= 0)) throw new ArgumentException($"SeesawLoss: p and q must be ≥ 0, got p = {p}, q = {q}.");
        if (!(eps > 0)) throw new ArgumentException($"SeesawLoss: eps must be positive, got {eps}.");
        if (!(lossWeight >= 0) || double.IsInfinity(lossWeight)) throw new ArgumentException($"SeesawLoss: loss weight must be finite and ≥ 0, got {lossWeight}.");
        (P, Q, Eps, LossWeight) = (p, q, eps, lossWeight);
        // N_c over all sampled RoIs seen so far, C+1 entries (the background entry is kept but unused), per replica in the code
        _counts = AddState("cum_samples", Tensor.Zeros([numClasses + 1], DType.Int64));
    }

    public double P { get; }
    public double Q { get; }
    public double Eps { get; }
    public double LossWeight { get; }

    /// <summary>The cumulative label counts (C+1, background last).</summary>
    public long[] Counts => _counts.ToArray<long>();

    protected override Tensor ComputeLoss(Tensor logits, Tensor labels, long[] hostLabels, LossContext context)
    {
        if (context.UpdateState)
        {
            // counts grow with the current batch before the loss is formed (code)
            var counts = _counts.ToArray<long>();
            foreach (var l in hostLabels) counts[l]++;
            using var updated = Tensor.From(counts, counts.Length);
            using (GradMode.NoGrad()) _counts.CopyFrom(updated);
        }
        using var onDevice = SigmoidWeights.OnDevice(_counts, logits.Device);
        return LongTailOps.Seesaw(logits, labels, onDevice, P, Q, Eps, LossWeight * Normalizer(hostLabels.Length));
    }

    /// <summary>softmax(u)_c·softmax(o)_fg for c &lt; C; background softmax(o)_bg.</summary>
    protected override Tensor ComputeScores(Tensor logits)
    {
        using var u = logits.Narrow(1, 0, NumClasses);
        using var o = logits.Narrow(1, NumClasses, 2);
        using var s = u.Softmax(1);
        using var obj = o.Softmax(1);
        using var fg = obj.Narrow(1, 0, 1);
        using var bg = obj.Narrow(1, 1, 1);
        using var scores = s.Mul(fg);
        return Tensor.Cat([scores, bg], 1);
    }
}
