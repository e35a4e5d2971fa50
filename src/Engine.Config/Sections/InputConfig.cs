// INPUT: resizing, flipping and channel order of images (detectron2 names and defaults, with
// Base-RCNN-FPN's multi-scale training sizes).
namespace Engine.Config;

public enum MinSizeSampling
{
    /// <summary>Pick one of MIN_SIZE_TRAIN per image.</summary>
    [ConfigValue("choice")] Choice,
    /// <summary>Uniform integer in [MIN_SIZE_TRAIN[0], MIN_SIZE_TRAIN[1]].</summary>
    [ConfigValue("range")] Range,
}

public enum RandomFlip
{
    [ConfigValue("none")] None,
    [ConfigValue("horizontal")] Horizontal,
    [ConfigValue("vertical")] Vertical,
}

public enum PixelFormat
{
    BGR,
    RGB,
}

public sealed record InputConfig
{
    /// <summary>Shorter-side sizes for training (multi-scale: one drawn per image).</summary>
    public ValueList<int> MinSizeTrain { get; init; } = [640, 672, 704, 736, 768, 800];

    public MinSizeSampling MinSizeTrainSampling { get; init; } = MinSizeSampling.Choice;

    /// <summary>Cap on the longer side in training.</summary>
    public int MaxSizeTrain { get; init; } = 1333;

    /// <summary>Shorter side at test; 0 disables resizing.</summary>
    public int MinSizeTest { get; init; } = 800;

    public int MaxSizeTest { get; init; } = 1333;
    public RandomFlip RandomFlip { get; init; } = RandomFlip.Horizontal;

    /// <summary>Channel order the model sees (MSRA weights expect BGR).</summary>
    public PixelFormat Format { get; init; } = PixelFormat.BGR;
}
