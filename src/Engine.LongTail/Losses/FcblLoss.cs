// FCBL, BACL's foreground classification balance loss (section 4.2): sigmoid BCE over C+1 outputs with pairwise
// margins δ_j = α·ln(max(K[y][j], 1e-3) / max(K[j][y], 1e-3)) from the cumulative confusion estimate
// K[i][j] = A[i][j] / max(n_i, 1), and (when re-weighting is on) a 0/1 mask that keeps, for a positive of class y,
// only the background column and the classes j with π_j ≥ π_y or π_j ≥ τ. After the loss, the batch's positives
// add their foreground softmax to A and 1 to n. Scores σ(z_c)·(1 − σ(z_C)), background σ(z_C) (section 4.1).
namespace Engine.LongTail;

public sealed class FcblLoss : ClassificationLoss
{
    // on the device of the last logits (StateOn): A (C, C) is read and updated every call
    private Tensor _confusion;
    private Tensor _counts;

    /// <param name="alpha">margin scale (0.85).</param>
    /// <param name="probThreshold">τ of the hard-negative mask (0.7).</param>
    /// <param name="lossWeight">λ (1).</param>
    /// <param name="reweight">whether the mask is applied (on from the start of BACL's stage 2).</param>
    public FcblLoss(int numClasses, double alpha = 0.85, double probThreshold = 0.7, double lossWeight = 1, bool reweight = true)
        : base(numClasses, numClasses + 1)
    {
        (Alpha, ProbThreshold, LossWeight, Reweight) = (alpha, probThreshold, lossWeight, reweight);
        // float32 like the code's tensors: sums of probabilities and positive counts
        _confusion = AddState("confusion", Tensor.Zeros([numClasses, numClasses]));
        _counts = AddState("counts", Tensor.Zeros([numClasses]));
    }

    public double Alpha { get; }
    public double ProbThreshold { get; }
    public double LossWeight { get; }
    public bool Reweight { get; set; }

    /// <summary>K = A / max(n, 1) row-wise, (C, C).</summary>
    public Tensor Confusion()
    {
        using (GradMode.NoGrad())
        {
            using var n = _counts.Clamp(min: 1);
            using var column = n.Unsqueeze(1);
            return _confusion.Div(column);
        }
    }

    protected override Tensor ComputeLoss(Tensor logits, Tensor labels, long[] hostLabels, LossContext context)
    {
        _confusion = StateOn(_confusion, logits.Device);
        _counts = StateOn(_counts, logits.Device);
        var loss = LongTailOps.Fcbl(logits, labels, _confusion, _counts, Alpha, ProbThreshold, Reweight, LossWeight * Normalizer(hostLabels.Length));
        if (context.UpdateState && hostLabels.Any(l => l < NumClasses)) Accumulate(logits, labels);
        return loss;
    }

    /// <summary>Adds the positives of a batch to A and n (section 4.2 step 4); skipped when there is none.</summary>
    private void Accumulate(Tensor logits, Tensor labels)
    {
        using (GradMode.NoGrad())
        {
            // the state is on the logits' device (ComputeLoss moved it there)
            using var x = LongTailOps.Raw(logits);
            using var y = LongTailOps.Raw(labels);
            LongTailBackends.For(_confusion.Device).AccumulateConfusion(x, y, _confusion, _counts);
            _confusion.Storage.BumpVersion();
            _counts.Storage.BumpVersion();
        }
    }

    protected override Tensor ComputeScores(Tensor logits) => SigmoidWeights.ObjectnessScores(logits, NumClasses);
}
