// SOLVER: SGD with momentum, weight decay, linear warm-up and step decay, checkpointing and gradient
// clipping (detectron2 names; Base-RCNN-FPN's 1x schedule: batch 16, lr 0.02, 90k iterations, steps 60k/80k).
namespace Engine.Config;

public enum WarmupMethod
{
    /// <summary>Factor ramps linearly from WARMUP_FACTOR to 1 over WARMUP_ITERS.</summary>
    [ConfigValue("linear")] Linear,
    /// <summary>Factor is WARMUP_FACTOR throughout warm-up.</summary>
    [ConfigValue("constant")] Constant,
}

public enum ClipType
{
    /// <summary>Clamp each gradient element to ±CLIP_VALUE.</summary>
    [ConfigValue("value")] Value,
    /// <summary>Scale each parameter's gradient so its NORM_TYPE-norm is at most CLIP_VALUE.</summary>
    [ConfigValue("norm")] Norm,
    /// <summary>Scale all gradients together so their joint norm is at most CLIP_VALUE (mmdetection's grad_clip).</summary>
    [ConfigValue("full_model")] FullModel,
}

public sealed record ClipGradientsConfig
{
    public bool Enabled { get; init; }
    public ClipType ClipType { get; init; } = ClipType.Value;
    public double ClipValue { get; init; } = 1.0;
    public double NormType { get; init; } = 2.0;
}

public sealed record SolverConfig
{
    /// <summary>Images per optimizer step (all devices together).</summary>
    public int ImsPerBatch { get; init; } = 16;

    public double BaseLr { get; init; } = 0.02;
    public double Momentum { get; init; } = 0.9;
    public bool Nesterov { get; init; }
    public double WeightDecay { get; init; } = 0.0001;

    /// <summary>Weight decay of normalization-layer parameters.</summary>
    public double WeightDecayNorm { get; init; }

    /// <summary>Weight decay of biases; null uses WEIGHT_DECAY.</summary>
    public double? WeightDecayBias { get; init; }

    public double BiasLrFactor { get; init; } = 1.0;
    public int MaxIter { get; init; } = 90000;

    /// <summary>Iterations at which the learning rate is multiplied by GAMMA.</summary>
    public ValueList<int> Steps { get; init; } = [60000, 80000];

    public double Gamma { get; init; } = 0.1;
    public double WarmupFactor { get; init; } = 1.0 / 1000;
    public int WarmupIters { get; init; } = 1000;
    public WarmupMethod WarmupMethod { get; init; } = WarmupMethod.Linear;
    public int CheckpointPeriod { get; init; } = 5000;
    public ClipGradientsConfig ClipGradients { get; init; } = new();
}
