// MODEL.LONG_TAIL: which long-tail component sits at each of the detector's five plug points
// (ARCHITECTURE.md) and the hyperparameters of every method, with the defaults of long-tail-methods.md
// (section numbers cited per record). The image sampler, the sixth choice, is DATALOADER.SAMPLER_TRAIN.
// These records hold knobs only; the components read them through their FromConfig.
namespace Engine.Config;

public sealed record LongTailConfig
{
    /// <summary>Classification loss of the box predictor; it also fixes the test-time score function.</summary>
    public ClassificationLoss ClassificationLoss { get; init; } = ClassificationLoss.Softmax;

    /// <summary>Rows appended to the RoI embeddings between the box head and the predictor.</summary>
    public EmbeddingAugmenter EmbeddingAugmenter { get; init; } = EmbeddingAugmenter.None;

    /// <summary>Post-hoc calibration of the classifier's logits at test time.</summary>
    public Calibrator Calibrator { get; init; } = Calibrator.None;

    /// <summary>Cross-class gradient mixing for the class-specific regressor and mask predictor.</summary>
    public GradientTransfuser GradientTransfuser { get; init; } = GradientTransfuser.None;

    public ClassifierConfig Classifier { get; init; } = new();
    public ReweightConfig Reweight { get; init; } = new();
    public EqlConfig Eql { get; init; } = new();
    public Eqlv2Config Eqlv2 { get; init; } = new();
    public SeesawConfig Seesaw { get; init; } = new();
    public FederatedConfig Federated { get; init; } = new();
    public BagsConfig Bags { get; init; } = new();
    public BaclConfig Bacl { get; init; } = new();
    public LognConfig Logn { get; init; } = new();
    public CratConfig Crat { get; init; } = new();
    public RioConfig Rio { get; init; } = new();
}

public enum ClassificationLoss
{
    /// <summary>Softmax cross-entropy over K+1 logits (1.1); with REWEIGHT.TYPE set, per-class weighted (1.3).</summary>
    [ConfigValue("softmax")] Softmax,
    /// <summary>Sigmoid BCE over K+1 logits (BACL stage 1, 4.1).</summary>
    [ConfigValue("sigmoid")] Sigmoid,
    [ConfigValue("eql")] Eql,
    [ConfigValue("eqlv2")] Eqlv2,
    [ConfigValue("seesaw")] Seesaw,
    [ConfigValue("federated")] Federated,
    /// <summary>BAGS balanced group softmax (6).</summary>
    [ConfigValue("group_softmax")] GroupSoftmax,
    /// <summary>BACL foreground classification balance loss (4.2).</summary>
    [ConfigValue("fcbl")] Fcbl,
}

public enum EmbeddingAugmenter
{
    [ConfigValue("none")] None,
    /// <summary>RIO object-level memory replay (5.2).</summary>
    [ConfigValue("rio")] Rio,
    /// <summary>BACL feature hallucination module (4.3).</summary>
    [ConfigValue("fhm")] Fhm,
}

public enum Calibrator
{
    [ConfigValue("none")] None,
    [ConfigValue("logn")] Logn,
}

public enum GradientTransfuser
{
    [ConfigValue("none")] None,
    [ConfigValue("crat")] Crat,
}

public enum ClassifierType
{
    /// <summary>Plain linear layer, N(0, 0.01²) weights, zero bias.</summary>
    [ConfigValue("linear")] Linear,
    /// <summary>Normalized linear z = τ·x̂·Ŵ_c + b_c (1.8; LogN and Seesaw configs, τ = 20).</summary>
    [ConfigValue("normed_linear")] NormedLinear,
    /// <summary>RIO's cosine classifier with learnable per-class scale, no bias (1.8; s = 48).</summary>
    [ConfigValue("cosine")] Cosine,
}

/// <summary>The classifier layer of the box predictor (long-tail-methods.md 1.8).</summary>
public sealed record ClassifierConfig
{
    public ClassifierType Type { get; init; } = ClassifierType.Linear;

    /// <summary>τ of the normalized linear classifier (20) or s of the cosine classifier (RIO: 48).</summary>
    public double Scale { get; init; } = 20.0;

    /// <summary>Initial foreground probability of sigmoid classifiers: bias = -ln((1-p)/p) (EQL/EQLv2: 0.001);
    /// null keeps a zero bias.</summary>
    public double? PriorProb { get; init; }
}

public enum ReweightType
{
    [ConfigValue("none")] None,
    /// <summary>w_c ∝ 1/n_c, normalized to mean 1 over foreground classes (1.3).</summary>
    [ConfigValue("inverse_frequency")] InverseFrequency,
    /// <summary>Class-balanced weights (1-β)/(1-β^n_c) (Cui et al. 2019; 1.3).</summary>
    [ConfigValue("effective_number")] EffectiveNumber,
}

/// <summary>Per-class loss weights of the re-weighting baselines (1.3).</summary>
public sealed record ReweightConfig
{
    public ReweightType Type { get; init; } = ReweightType.None;
    public double Beta { get; init; } = 0.999;
    public double ClipMin { get; init; } = 0.1;
    public double ClipMax { get; init; } = 5.0;
}

/// <summary>Equalization loss (1.4).</summary>
public sealed record EqlConfig
{
    /// <summary>Image-frequency threshold λ below which a class is "tail": 0.00177 (paper, LVIS v0.5), 0.0011 in the LVIS v1 config.</summary>
    public double Lambda { get; init; } = 0.00177;
}

/// <summary>EQLv2 gradient-driven re-weighting (1.5).</summary>
public sealed record Eqlv2Config
{
    public double Gamma { get; init; } = 12.0;
    public double Mu { get; init; } = 0.8;
    public double Alpha { get; init; } = 4.0;

    /// <summary>Test score σ(z_c)·(1-σ(z_K)) (objectness from the background column), as the code's default.</summary>
    public bool TestWithObjectness { get; init; } = true;
}

/// <summary>Seesaw loss (1.6).</summary>
public sealed record SeesawConfig
{
    /// <summary>Mitigation exponent.</summary>
    public double P { get; init; } = 0.8;

    /// <summary>Compensation exponent.</summary>
    public double Q { get; init; } = 2.0;

    public double Eps { get; init; } = 0.01;
    public double LossWeight { get; init; } = 1.0;
}

/// <summary>Federated loss (1.7).</summary>
public sealed record FederatedConfig
{
    /// <summary>Classes penalized per iteration, K (clamped to the classes available).</summary>
    public int NumClasses { get; init; } = 50;

    /// <summary>Sampling weight of a class is its image count to this power.</summary>
    public double FreqWeightPower { get; init; } = 0.5;
}

/// <summary>Balanced group softmax (6).</summary>
public sealed record BagsConfig
{
    /// <summary>Instance-count boundaries of the foreground groups: [10, 100, 1000] gives n &lt; 10, 10–99, 100–999, ≥ 1000.</summary>
    public ValueList<int> GroupBoundaries { get; init; } = [10, 100, 1000];

    /// <summary>β: at most β × (in-group RoIs) "others" RoIs are kept per group (the "bg8" configs: 8).</summary>
    public double OthersSampleRatio { get; init; } = 8.0;
}

/// <summary>BACL: FCBL loss (4.2) and the feature hallucination module (4.3).</summary>
public sealed record BaclConfig
{
    public FcblConfig Fcbl { get; init; } = new();
    public FhmConfig Fhm { get; init; } = new();
}

public sealed record FcblConfig
{
    /// <summary>Margin scale α of δ_j = α·ln(K[y][j] / K[j][y]).</summary>
    public double Alpha { get; init; } = 0.85;

    /// <summary>τ: negatives with probability at or above it always count (hard negatives).</summary>
    public double ProbThresh { get; init; } = 0.7;

    public double LossWeight { get; init; } = 1.0;

    /// <summary>The hard-negative 0/1 weight mask; off, every term has weight 1.</summary>
    public bool Reweight { get; init; } = true;
}

public sealed record FhmConfig
{
    /// <summary>EMA weight of a batch's per-class embedding mean and variance.</summary>
    public double Decay { get; init; } = 0.1;

    /// <summary>Classes drawn per iteration (with replacement, ∝ 1 - K[c][c]).</summary>
    public int NumClasses { get; init; } = 8;

    /// <summary>Hallucinated embeddings per drawn class (code default 4; both LVIS configs 12).</summary>
    public int FeaturesPerClass { get; init; } = 12;

    /// <summary>Jittered boxes per ground-truth box (one per sign pattern of the four coordinates).</summary>
    public int JittersPerGt { get; init; } = 16;

    /// <summary>Largest jitter as a fraction of the box width/height.</summary>
    public double JitterScale { get; init; } = 1.0 / 6.0;
}

public enum LognMode
{
    /// <summary>Paper: calibrate any trained model after a statistics pass.</summary>
    [ConfigValue("posthoc")] Posthoc,
    /// <summary>Repository: batch-standardized logits in the training loss too, then the statistics pass.</summary>
    [ConfigValue("repo")] Repo,
}

public enum LognStatistics
{
    /// <summary>Running mean/variance with momentum (the code).</summary>
    [ConfigValue("ema")] Ema,
    /// <summary>Plain mean and unbiased variance over the whole pass (what the EMA approximates).</summary>
    [ConfigValue("exact")] Exact,
}

/// <summary>Logit normalization (2).</summary>
public sealed record LognConfig
{
    public LognMode Mode { get; init; } = LognMode.Posthoc;
    public LognStatistics Statistics { get; init; } = LognStatistics.Ema;

    /// <summary>EMA momentum during base training in repo mode (the layer's default).</summary>
    public double Momentum { get; init; } = 1e-4;

    /// <summary>EMA momentum per image in the statistics pass; a batch of B images uses 1-(1-m)^B.</summary>
    public double StatisticsMomentum { get; init; } = 5e-5;

    /// <summary>Epochs of the statistics pass over the training set.</summary>
    public int StatisticsEpochs { get; init; } = 1;

    /// <summary>Floor of the variance before the square root at test.</summary>
    public double VarianceFloor { get; init; } = 1e-11;

    /// <summary>ε of the batch standardization in repo-mode training.</summary>
    public double Eps { get; init; } = 1e-5;
}

public enum CratQuery
{
    /// <summary>The first positive's gradient serves as query for all positives (the repository).</summary>
    [ConfigValue("first_sample")] FirstSample,
    /// <summary>Each positive's own squared gradient (the commented-out intended version).</summary>
    [ConfigValue("per_sample")] PerSample,
}

public enum CratMaskWeights
{
    [ConfigValue("box")] Box,
    [ConfigValue("mask")] Mask,
}

/// <summary>Cross-class gradient transfusing (3.5).</summary>
public sealed record CratConfig
{
    /// <summary>Fisher-bank EMA weight a (box and mask banks).</summary>
    public double FisherMomentum { get; init; } = 0.01;

    /// <summary>Softmax temperature T of the transfusion weights.</summary>
    public double Temperature { get; init; } = 0.05;

    /// <summary>λ_b of the box transfusion loss.</summary>
    public double BoxWeight { get; init; } = 0.001;

    /// <summary>λ_m of the mask transfusion loss.</summary>
    public double MaskWeight { get; init; } = 0.01;

    public CratQuery Query { get; init; } = CratQuery.FirstSample;
    public CratMaskWeights MaskWeights { get; init; } = CratMaskWeights.Box;
}

/// <summary>RIO object-level memory replay (5.4); the image level is DATALOADER.SAMPLER_TRAIN = RFS.</summary>
public sealed record RioConfig
{
    /// <summary>Replayed embeddings per bank class present in the batch (MIN_CACHE): base default 5, LVIS configs 20; 0 disables replay.</summary>
    public int ReplayPerClass { get; init; } = 5;

    /// <summary>FIFO capacity per bank class (MAX_CACHE).</summary>
    public int QueueCapacity { get; init; } = 60;

    /// <summary>Replay random entries instead of the most recent.</summary>
    public bool RandomSelect { get; init; }

    /// <summary>Bank classes are those with at most this many training images: 10 = rare only (base default),
    /// 30 = rare plus the rarest common classes (the LVIS configs' "rare_common30" list).</summary>
    public int BankMaxImages { get; init; } = 10;
}
