// DATALOADER: worker threads and the training image sampler (the "which images are seen" plug point of
// the long-tail methods: uniform, repeat-factor (RFS), class-aware).
namespace Engine.Config;

public enum TrainSampler
{
    /// <summary>Uniform: every image once per epoch, shuffled.</summary>
    TrainingSampler,
    /// <summary>Repeat factor sampling (LVIS paper; long-tail-methods.md 1.2).</summary>
    RepeatFactorTrainingSampler,
    /// <summary>Class-aware: pick a class uniformly, then an image containing it.</summary>
    ClassAwareSampler,
}

public enum RepeatRounding
{
    /// <summary>⌊r⌋ copies plus one more with probability r - ⌊r⌋, drawn every epoch (detectron2).</summary>
    [ConfigValue("stochastic")] Stochastic,
    /// <summary>⌈r⌉ copies, fixed (mmdetection's ClassBalancedDataset).</summary>
    [ConfigValue("ceiling")] Ceiling,
}

public sealed record DataloaderConfig
{
    /// <summary>Decode/augment threads of the prefetching loader; 0 loads on the training thread.</summary>
    public int NumWorkers { get; init; } = 4;

    /// <summary>Batch images of similar aspect ratio (wide with wide, tall with tall) to reduce padding.</summary>
    public bool AspectRatioGrouping { get; init; } = true;

    public TrainSampler SamplerTrain { get; init; } = TrainSampler.TrainingSampler;

    /// <summary>RFS threshold t on image frequency (LVIS: 0.001).</summary>
    public double RepeatThreshold { get; init; }

    /// <summary>r_c = max(1, sqrt(t/f_c)) when true (the paper), max(1, t/f_c) otherwise.</summary>
    public bool RepeatSqrt { get; init; } = true;

    public RepeatRounding RepeatRounding { get; init; } = RepeatRounding.Stochastic;

    /// <summary>Drop training images without annotations (detectron2 does before computing RFS factors).</summary>
    public bool FilterEmptyAnnotations { get; init; } = true;
}
