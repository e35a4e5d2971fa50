// The sigmoid classification losses built on one fused weighted-BCE kernel: plain BCE over C+1 outputs (BACL
// stage 1, section 4.1), EQL (section 1.4), EQLv2 (section 1.5) and the Federated loss (section 1.7). They
// differ only in the element weights w_ij = posWeight[j] on the label's column, else a per-column negative
// weight for foreground or background rows.
namespace Engine.LongTail;

/// <summary>Plain sigmoid BCE over C+1 outputs (background column trained as a class, target 1 on background RoIs):
/// L = (1/N)·Σ_i Σ_j BCE(z_ij, [j = y_i]). Scores σ(z), background column σ(z_C).</summary>
public sealed class SigmoidBceLoss : ClassificationLoss
{
    private readonly Tensor _ones;

    public SigmoidBceLoss(int numClasses) : base(numClasses, numClasses + 1)
    {
        using (DisposeScope.Suspend()) _ones = Tensor.Ones([numClasses + 1]);
    }

    protected override Tensor ComputeLoss(Tensor logits, Tensor labels, long[] hostLabels, LossContext context)
    {
        using var w = SigmoidWeights.OnDevice(_ones, logits.Device);
        return LongTailOps.WeightedSigmoidBce(logits, labels, NumClasses, w, w, w, Normalizer(hostLabels.Length));
    }

    protected override Tensor ComputeScores(Tensor logits) => logits.Sigmoid();

    protected override void DisposeOwned() => _ones.Dispose();
}

/// <summary>EQL (section 1.4): C sigmoid logits, no background logit. w_ij = 1 − E_i·T_j·(1 − y_ij) with E_i = [RoI i is
/// foreground] and T_j = [f_j &lt; λ], f_j = image frequency m_j / I. Scores σ(z_c); the background column is 0.</summary>
public sealed class EqlLoss : ClassificationLoss
{
    private readonly Tensor _ones;
    private readonly Tensor _notTail;

    /// <param name="imageCounts">m_c, images containing class c (C values).</param>
    /// <param name="imagesWithAnnotations">I, the denominator of f_c.</param>
    /// <param name="lambda">frequency threshold: 1.76e-3 (paper, v0.5), 0.0011 (EQLv2 repo, v1).</param>
    public EqlLoss(IReadOnlyList<long> imageCounts, long imagesWithAnnotations, double lambda = 0.00177) : base(imageCounts.Count, imageCounts.Count)
    {
        if (imagesWithAnnotations <= 0) throw new ArgumentException($"EqlLoss: I (images with annotations) must be positive, got {imagesWithAnnotations}.");
        if (!(lambda >= 0)) throw new ArgumentException($"EqlLoss: lambda must be ≥ 0, got {lambda}.");
        Lambda = lambda;
        IsTail = imageCounts.Select(m => (double)m / imagesWithAnnotations < lambda).ToArray();
        using (DisposeScope.Suspend())
        {
            _ones = Tensor.Ones([NumClasses]);
            _notTail = Tensor.FromDoubles(IsTail.Select(t => t ? 0.0 : 1.0).ToArray(), [NumClasses]);
        }
    }

    public double Lambda { get; }

    /// <summary>T_j for each class.</summary>
    public IReadOnlyList<bool> IsTail { get; }

    protected override Tensor ComputeLoss(Tensor logits, Tensor labels, long[] hostLabels, LossContext context)
    {
        using var ones = SigmoidWeights.OnDevice(_ones, logits.Device);
        using var notTail = SigmoidWeights.OnDevice(_notTail, logits.Device);
        return LongTailOps.WeightedSigmoidBce(logits, labels, NumClasses, ones, notTail, ones, Normalizer(hostLabels.Length));
    }

    protected override Tensor ComputeScores(Tensor logits)
    {
        using var s = logits.Sigmoid();
        using var background = Tensor.Zeros([logits.Size(0), 1], DType.Float32, logits.Device);
        return Tensor.Cat([s, background], 1);
    }

    protected override void DisposeOwned()
    {
        _ones.Dispose();
        _notTail.Dispose();
    }
}

/// <summary>EQLv2 (section 1.5): C+1 sigmoid logits, column C an objectness/background channel. Per foreground class j,
/// q_j = σ(γ·(r_j − μ)) weighs negatives and p_j = 1 + α·(1 − q_j) positives (both 1 for column C), from the state
/// r = G⁺/(G⁻ + 1e-10) before this batch; after the loss, G⁺_j and G⁻_j grow by Σ w·|σ(z) − y| over this batch's
/// positive and negative elements of column j. Scores σ(z_c)·(1 − σ(z_C)) (the code's test_with_obj) or, without the
/// objectness factor, σ(z_c); background σ(z_C) either way.</summary>
public sealed class Eqlv2Loss : ClassificationLoss
{
    // on the device of the last logits (StateOn): the statistics are updated from device results every call
    private Tensor _posGrad;
    private Tensor _negGrad;
    private Tensor _ratio;

    public Eqlv2Loss(int numClasses, double gamma = 12, double mu = 0.8, double alpha = 4, bool testWithObjectness = true) : base(numClasses, numClasses + 1)
    {
        (Gamma, Mu, Alpha, TestWithObjectness) = (gamma, mu, alpha, testWithObjectness);
        _posGrad = AddState("pos_grad", Tensor.Zeros([numClasses]));
        _negGrad = AddState("neg_grad", Tensor.Zeros([numClasses]));
        _ratio = AddState("pos_neg", Tensor.Full([numClasses], 100));
    }

    public double Gamma { get; }
    public double Mu { get; }
    public double Alpha { get; }

    /// <summary>Whether test scores carry the objectness factor 1 − σ(z_C).</summary>
    public bool TestWithObjectness { get; }

    /// <summary>(p, q), each C+1 with 1 for the background column, from the current state.</summary>
    public (Tensor Positive, Tensor Negative) Weights(Device device)
    {
        using (GradMode.NoGrad())
        {
            using var r = SigmoidWeights.OnDevice(_ratio, device);
            using var shifted = r.Sub(Mu);
            using var scaled = shifted.Mul(Gamma);
            using var qFg = scaled.Sigmoid();
            using var oneMinus = qFg.Neg().Add(1);
            using var pFg0 = oneMinus.Mul(Alpha);
            using var pFg = pFg0.Add(1);
            using var one = Tensor.Ones([1], DType.Float32, device);
            return (Tensor.Cat([pFg, one], 0), Tensor.Cat([qFg, one], 0));
        }
    }

    protected override Tensor ComputeLoss(Tensor logits, Tensor labels, long[] hostLabels, LossContext context)
    {
        _posGrad = StateOn(_posGrad, logits.Device);
        _negGrad = StateOn(_negGrad, logits.Device);
        _ratio = StateOn(_ratio, logits.Device);
        var (p, q) = Weights(logits.Device);
        using (p)
        using (q)
        {
            if (!context.UpdateState) return LongTailOps.WeightedSigmoidBce(logits, labels, NumClasses, p, q, q, Normalizer(hostLabels.Length));
            using var pos = Tensor.Empty([LogitCount], DType.Float32, logits.Device);
            using var neg = Tensor.Empty([LogitCount], DType.Float32, logits.Device);
            var loss = LongTailOps.WeightedSigmoidBce(logits, labels, NumClasses, p, q, q, Normalizer(hostLabels.Length), (pos, neg));
            using (GradMode.NoGrad())
            {
                // statistics of foreground columns only; the objectness column collects none (code: [:-1])
                using var posFg = pos.Narrow(0, 0, NumClasses);
                using var negFg = neg.Narrow(0, 0, NumClasses);
                _posGrad.AddInPlace(posFg);
                _negGrad.AddInPlace(negFg);
                using var denominator = _negGrad.Add(1e-10);
                using var ratio = _posGrad.Div(denominator);
                _ratio.CopyFrom(ratio);
            }
            return loss;
        }
    }

    protected override Tensor ComputeScores(Tensor logits) =>
        TestWithObjectness ? SigmoidWeights.ObjectnessScores(logits, NumClasses) : logits.Sigmoid();
}

/// <summary>Federated loss (section 1.7): C+1 logits whose background column is neither trained nor used. Each call
/// penalizes only the classes F = U ∪ S \ {background}: U the labels present among the RoIs, S a sample without
/// replacement of max(K − |U|, 0) further foreground classes (clamped to those available) with probability ∝ m_c^power.
/// Scores σ(z_c); the background column is 0.</summary>
public sealed class FederatedLoss : ClassificationLoss
{
    private readonly double[] _classWeight;
    private readonly Tensor _generatorState;
    private Generator _generator;

    /// <param name="imageCounts">m_c (C values), images containing class c.</param>
    /// <param name="generator">the random source of the class sampling (its position is part of the state).</param>
    /// <param name="numSampled">K, classes per iteration (50).</param>
    /// <param name="power">exponent of m_c (0.5).</param>
    public FederatedLoss(IReadOnlyList<long> imageCounts, Generator generator, int numSampled = 50, double power = 0.5)
        : base(imageCounts.Count, imageCounts.Count + 1)
    {
        ArgumentNullException.ThrowIfNull(generator);
        if (numSampled < 1) throw new ArgumentException($"FederatedLoss: the number of classes per iteration must be ≥ 1, got {numSampled}.");
        if (imageCounts.Any(m => m < 0)) throw new ArgumentException("FederatedLoss: image counts must be ≥ 0.");
        (NumSampled, Power, _generator) = (numSampled, power, generator);
        _classWeight = imageCounts.Select(m => m == 0 ? 0 : Math.Pow(m, power)).ToArray();
        _generatorState = AddState("generator", GeneratorState.Save(generator));
    }

    public int NumSampled { get; }
    public double Power { get; }

    /// <summary>The random source now in use (replaced by LoadStateDict).</summary>
    public Generator Generator => _generator;

    /// <summary>F of the last Loss call, ascending.</summary>
    public IReadOnlyList<int> LastClassSet { get; private set; } = [];

    /// <summary>Draws F for a batch with the given labels (advances the generator).</summary>
    public int[] SampleClassSet(IReadOnlyList<long> labels)
    {
        var present = new HashSet<long>(labels);
        var chosen = new SortedSet<int>(present.Where(l => l < NumClasses).Select(l => (int)l));
        var weights = (double[])_classWeight.Clone();
        foreach (var l in present)
            if (l < NumClasses) weights[l] = 0;
        var available = weights.Count(w => w > 0);
        // |U| counts the background label too (code), so |F| is usually K − 1
        var draws = Math.Min(Math.Max(NumSampled - present.Count, 0), available);
        for (var d = 0; d < draws; d++)
        {
            var total = 0.0;
            foreach (var w in weights) total += w;
            var r = _generator.NextDouble() * total;
            var pick = -1;
            for (var c = 0; c < weights.Length; c++)
            {
                if (weights[c] <= 0) continue;
                pick = c; // the last positive weight absorbs any rounding shortfall of the cumulative sum
                r -= weights[c];
                if (r < 0) break;
            }
            chosen.Add(pick);
            weights[pick] = 0;
        }
        return [.. chosen];
    }

    protected override Tensor ComputeLoss(Tensor logits, Tensor labels, long[] hostLabels, LossContext context)
    {
        var set = SampleClassSet(hostLabels);
        LastClassSet = set;
        var mask = new double[LogitCount];
        foreach (var c in set) mask[c] = 1;
        using var w = Tensor.FromDoubles(mask, [LogitCount], DType.Float32, logits.Device);
        return LongTailOps.WeightedSigmoidBce(logits, labels, NumClasses, w, w, w, Normalizer(hostLabels.Length));
    }

    protected override Tensor ComputeScores(Tensor logits)
    {
        using var fg = logits.Narrow(1, 0, NumClasses);
        using var s = fg.Sigmoid();
        using var background = Tensor.Zeros([logits.Size(0), 1], DType.Float32, logits.Device);
        return Tensor.Cat([s, background], 1);
    }

    protected override void BeforeSave()
    {
        using var now = GeneratorState.Save(_generator);
        using (GradMode.NoGrad()) _generatorState.CopyFrom(now);
    }

    protected override void AfterLoad() => _generator = GeneratorState.Restore(_generatorState);
}

/// <summary>Helpers shared by the sigmoid losses.</summary>
internal static class SigmoidWeights
{
    /// <summary>t itself (as a new reference) when already on device, else a copy there.</summary>
    public static Tensor OnDevice(Tensor t, Device device)
    {
        using (GradMode.NoGrad()) return t.Device == device ? t.Detach() : t.To(device);
    }

    /// <summary>Scores of heads with an objectness column C: σ(z_c)·(1 − σ(z_C)) for c &lt; C, σ(z_C) for the background.</summary>
    public static Tensor ObjectnessScores(Tensor logits, int numClasses)
    {
        using var s = logits.Sigmoid();
        using var fg = s.Narrow(1, 0, numClasses);
        using var bg = s.Narrow(1, numClasses, 1);
        using var notBg = bg.Neg().Add(1);
        using var scores = fg.Mul(notBg);
        return Tensor.Cat([scores, bg], 1);
    }
}

/// <summary>A generator's whole state (seed, position) as an int64 [2] tensor, for checkpoints.</summary>
public static class GeneratorState
{
    public static Tensor Save(Generator g) => Tensor.From([unchecked((long)g.Seed), unchecked((long)g.Position)], [2]);

    public static Generator Restore(Tensor state)
    {
        if (state.DType != DType.Int64 || state.Numel != 2)
            throw new ArgumentException($"GeneratorState.Restore: expected int64 [2] (seed, position), got {state.DType.Name()} {ShapeUtil.Format(state.Shape)}.");
        var v = state.ToArray<long>();
        return new Generator(unchecked((ulong)v[0])) { Position = unchecked((ulong)v[1]) };
    }
}
