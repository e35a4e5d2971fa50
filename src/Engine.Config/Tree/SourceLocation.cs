// Where a config value came from: a YAML file position (1-based line and column, from YamlDotNet's
// marks) or a command-line override. Every error message that concerns a value names this place.
namespace Engine.Config;

public sealed record SourceLocation(string Source, int Line, int Column, bool IsOverride = false)
{
    /// <summary>Place of a value given as <c>--set KEY=VALUE</c> on the command line.</summary>
    public static SourceLocation Override(string argument) => new(argument, 1, 1, IsOverride: true);

    public override string ToString() => IsOverride ? $"--set {Source}" : $"{Source}:{Line}:{Column}";
}
