// Settings of the synthetic long-tailed dataset (`engine synth`). The defaults make the embedded
// benchmark's set: 40 classes, 2000 training and 500 validation images of 160×160.
namespace Engine.Data.Synthetic;

public sealed record SyntheticOptions
{
    /// <summary>Folder that receives train.json, val.json, train/*.jpg and val/*.jpg.</summary>
    public required string OutputDirectory { get; init; }

    public int Classes { get; init; } = 40;
    public int TrainImages { get; init; } = 2000;
    public int ValImages { get; init; } = 500;

    /// <summary>Side of the square images, in pixels.</summary>
    public int ImageSize { get; init; } = 160;

    public ulong Seed { get; init; } = 1;
    public int MaxObjectsPerImage { get; init; } = 6;

    /// <summary>Smallest object extent in pixels (before aspect jitter), capped at half the image.</summary>
    public double MinObjectSize { get; init; } = 10;

    /// <summary>Largest object extent as a fraction of the image side.</summary>
    public double MaxObjectFraction { get; init; } = 0.7;

    public int JpegQuality { get; init; } = 95;

    /// <summary>Probability that a present class gets a second instance in an image (when the image has room).</summary>
    public double SecondInstanceProbability { get; init; } = 0.3;

    /// <summary>Probability that a validation image marks one present class not exhaustively annotated (one of its instances is
    /// drawn but left unannotated).</summary>
    public double NotExhaustiveProbability { get; init; } = 0.1;

    /// <summary>Rendering threads (default: all cores). Results do not depend on it.</summary>
    public int? Threads { get; init; }

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(OutputDirectory)) throw new ArgumentException("synth: an output folder is required (--out DIR).");
        if (Classes is < 1 or > SyntheticClasses.MaxClasses)
            throw new ArgumentException($"synth: --classes {Classes} is out of range; use 1..{SyntheticClasses.MaxClasses} (8 shapes × 10 colours × 4 textures).");
        if (TrainImages < 1) throw new ArgumentException($"synth: --train {TrainImages}; at least one training image is needed.");
        if (ValImages < 0) throw new ArgumentException($"synth: --val {ValImages} must not be negative.");
        if (ImageSize is < 32 or > 4096) throw new ArgumentException($"synth: --size {ImageSize} is out of range; use 32..4096 pixels.");
        if (MaxObjectsPerImage is < 1 or > 64) throw new ArgumentException($"synth: MaxObjectsPerImage {MaxObjectsPerImage} must be in 1..64.");
        if (MinObjectSize < 2) throw new ArgumentException($"synth: MinObjectSize {MinObjectSize} px is too small; use at least 2.");
        if (MaxObjectFraction is <= 0 or > 0.9) throw new ArgumentException($"synth: MaxObjectFraction {MaxObjectFraction} must be in (0, 0.9].");
        if (JpegQuality is < 1 or > 100) throw new ArgumentException($"synth: JpegQuality {JpegQuality} must be in 1..100.");
        if (SecondInstanceProbability is < 0 or > 1 || NotExhaustiveProbability is < 0 or > 1)
            throw new ArgumentException("synth: probabilities must be in [0, 1].");
        if (Threads is < 1) throw new ArgumentException($"synth: Threads {Threads} must be at least 1.");
    }
}
