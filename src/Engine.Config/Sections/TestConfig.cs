// TEST: periodic evaluation and the per-image detection cap (LVIS allows 300).
namespace Engine.Config;

public sealed record TestConfig
{
    /// <summary>Evaluate every this many iterations during training; 0 only at the end.</summary>
    public int EvalPeriod { get; init; }

    public int DetectionsPerImage { get; init; } = 100;
}
