// The one exception type of configuration loading, binding and validation. Its message always names
// where the offending value came from (file:line:col or the --set argument) and its key path.
namespace Engine.Config;

public sealed class ConfigException : Exception
{
    public ConfigException(string message) : base(message) { }
    public ConfigException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Builds the standard message: "<location>: <key path>: <problem>".</summary>
    public static ConfigException At(SourceLocation? location, string keyPath, string problem)
    {
        var where = location is null ? "" : location + ": ";
        var key = keyPath.Length == 0 ? "" : keyPath + ": ";
        return new ConfigException(where + key + problem);
    }
}
