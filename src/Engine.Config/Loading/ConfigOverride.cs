// One `--set KEY=VALUE` command-line override. KEY is a dotted path (SOLVER.BASE_LR); VALUE is read as a
// YAML value, so `cuda`, `0.01`, `[60000, 80000]`, `(60000, 80000)`, `true`, `null` and flow mappings
// like `{JSON: a.json, IMAGE_ROOT: imgs}` all work. Overrides are applied after every file is merged.
namespace Engine.Config;

public sealed record ConfigOverride(IReadOnlyList<string> Path, ConfigNode Value, string Argument)
{
    public string KeyPath => string.Join('.', Path);

    /// <summary>Parses <c>KEY=VALUE</c> (everything after the first '=' is the value).</summary>
    public static ConfigOverride Parse(string argument)
    {
        var location = SourceLocation.Override(argument);
        var eq = argument.IndexOf('=');
        if (eq < 0)
            throw ConfigException.At(location, "", "an override must look like KEY=VALUE, e.g. --set SOLVER.BASE_LR=0.01.");
        var key = argument[..eq].Trim();
        var text = argument[(eq + 1)..];
        var path = key.Split('.');
        if (key.Length == 0 || path.Any(p => p.Length == 0))
            throw ConfigException.At(location, key, "the key of an override must be a dotted path such as SOLVER.BASE_LR.");

        ConfigNode value;
        try
        {
            value = YamlTreeReader.Read(text, argument);
        }
        catch (ConfigException e)
        {
            throw ConfigException.At(location, key, $"cannot read the value '{text}' as YAML ({e.Message}).");
        }
        // YamlTreeReader turns an empty document into an empty mapping; for an override, empty means null.
        if (text.Trim().Length == 0) value = new ConfigScalar("", isPlain: true, location);
        return new ConfigOverride(path, Relocate(value, location), argument);
    }

    // Marks inside the value text mean little on a command line; every node reports the override itself.
    private static ConfigNode Relocate(ConfigNode node, SourceLocation location)
    {
        switch (node)
        {
            case ConfigScalar s:
                return new ConfigScalar(s.Text, s.IsPlain, location);
            case ConfigSequence q:
                return new ConfigSequence(q.Items.Select(i => Relocate(i, location)), location);
            case ConfigMap m:
                var map = new ConfigMap(location);
                foreach (var e in m.Entries) map.Set(e.Key, Relocate(e.Value, location), location);
                return map;
            default:
                return node;
        }
    }
}
