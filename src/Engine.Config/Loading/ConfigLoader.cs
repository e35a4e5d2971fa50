// Resolves a config once: reads the YAML file, loads its `_base_` files first (a path or a list of paths,
// relative to the including file; detectron2's `_BASE_` spelling is accepted too) and deep-merges them
// (maps recurse, scalars and lists replace, later bases win over earlier ones, the file over its bases),
// applies `--set KEY=VALUE` overrides last, binds the tree onto EngineConfig and validates it. A cycle among
// bases, an unknown key, a badly typed value or a failed check is a ConfigException naming the file,
// line and column and the key path.
namespace Engine.Config;

/// <summary>A resolved config with the files it was merged from (bases first) and where each key was set.</summary>
public sealed record LoadedConfig(EngineConfig Config, IReadOnlyList<string> Files, IReadOnlyDictionary<string, SourceLocation> Locations);

public static class ConfigLoader
{
    public const string BaseKey = "_base_";
    private const string Detectron2BaseKey = "_BASE_";

    /// <summary>Loads, merges, overrides, binds and validates the config at <paramref name="path"/>.</summary>
    public static EngineConfig Load(string path, IEnumerable<string>? overrides = null) => LoadDetailed(path, overrides).Config;

    public static LoadedConfig LoadDetailed(string path, IEnumerable<string>? overrides = null)
    {
        var files = new List<string>();
        var tree = LoadTree(path, files);
        return Resolve(tree, files, overrides);
    }

    /// <summary>Resolves YAML text as if it were a file named <paramref name="sourceName"/> in
    /// <paramref name="baseDirectory"/> (default: the working directory), which its `_base_` paths are relative to.</summary>
    public static EngineConfig LoadText(string yaml, string sourceName = "<text>", IEnumerable<string>? overrides = null, string? baseDirectory = null)
    {
        var files = new List<string>();
        var node = YamlTreeReader.Read(yaml, sourceName);
        var tree = MergeWithBases(node, sourceName, baseDirectory ?? Directory.GetCurrentDirectory(), [], files);
        return Resolve(tree, files, overrides).Config;
    }

    private static LoadedConfig Resolve(ConfigMap tree, List<string> files, IEnumerable<string>? overrides)
    {
        var root = ConfigSchema.For(typeof(EngineConfig));
        foreach (var text in overrides ?? [])
            Apply(tree, ConfigOverride.Parse(text), root);
        var (config, locations) = ConfigBinder.Bind<EngineConfig>(tree);
        var issues = ConfigValidator.Check(config);
        if (issues.Count > 0) throw ConfigValidator.ToException(issues, locations);
        return new LoadedConfig(config, files, locations);
    }

    /// <summary>The merged tree of <paramref name="path"/> and its bases, before overrides and binding.</summary>
    internal static ConfigMap LoadTree(string path, List<string> files) => LoadTree(path, [], files, includedFrom: null);

    private static ConfigMap LoadTree(string path, List<string> chain, List<string> files, SourceLocation? includedFrom)
    {
        var full = Path.GetFullPath(path);
        var display = Display(full);
        var cycleStart = chain.IndexOf(full);
        if (cycleStart >= 0)
        {
            var cycle = chain.Skip(cycleStart).Append(full).Select(Display);
            throw ConfigException.At(includedFrom, BaseKey, "_base_ files form a cycle: " + string.Join(" -> ", cycle) + ".");
        }
        if (!File.Exists(full))
        {
            var problem = $"config file '{path}' not found (looked for {full}).";
            throw includedFrom is null ? new ConfigException(problem) : ConfigException.At(includedFrom, BaseKey, problem);
        }
        var node = YamlTreeReader.Read(File.ReadAllText(full), display);
        chain.Add(full);
        var merged = MergeWithBases(node, display, Path.GetDirectoryName(full)!, chain, files);
        chain.RemoveAt(chain.Count - 1);
        return merged;
    }

    private static ConfigMap MergeWithBases(ConfigNode node, string display, string directory, List<string> chain, List<string> files)
    {
        // A file holding only comments or `~` is an empty config.
        if (node is ConfigScalar { IsNull: true }) node = new ConfigMap(node.Location);
        if (node is not ConfigMap map)
            throw ConfigException.At(node.Location, "", $"the top level of a config must be a mapping of keys, found {node.KindName}.");
        var baseEntry = map.Find(BaseKey);
        var d2Entry = map.Find(Detectron2BaseKey);
        if (baseEntry is not null && d2Entry is not null)
            throw ConfigException.At(d2Entry.KeyLocation, Detectron2BaseKey, $"give the base configs once, under {BaseKey} (found both {BaseKey} and {Detectron2BaseKey}).");
        baseEntry ??= d2Entry;

        var result = new ConfigMap(map.Location);
        if (baseEntry is not null)
        {
            map.Remove(baseEntry.Key);
            foreach (var (basePath, location) in BasePaths(baseEntry))
            {
                var resolved = Path.IsPathRooted(basePath) ? basePath : Path.Combine(directory, basePath);
                TreeMerge.Into(result, LoadTree(resolved, chain, files, location));
            }
        }
        TreeMerge.Into(result, map);
        files.Add(display);
        return result;
    }

    private static IEnumerable<(string Path, SourceLocation Location)> BasePaths(ConfigMapEntry entry)
    {
        var items = entry.Value switch
        {
            ConfigScalar s => [s],
            ConfigSequence q => q.Items,
            _ => throw ConfigException.At(entry.Value.Location, entry.Key, $"expected a file path or a list of file paths, found {entry.Value.KindName}."),
        };
        foreach (var item in items)
        {
            if (item is not ConfigScalar { IsNull: false } scalar || scalar.Text.Length == 0)
                throw ConfigException.At(item.Location, entry.Key, "each base must be a file path such as ../Base-RCNN-FPN.yaml.");
            yield return (scalar.Text, scalar.Location);
        }
    }

    private static void Apply(ConfigMap tree, ConfigOverride o, SchemaNode root)
    {
        var location = SourceLocation.Override(o.Argument);
        var (target, resolved, deepest, deepestPath) = ConfigSchema.Resolve(root, o.Path);
        if (target is null)
            throw ConfigException.At(location, o.KeyPath,
                $"unknown key (segment '{o.Path[resolved]}'); " + Suggestions.ForUnknownKey(o.KeyPath, root, deepest, deepestPath));

        var map = tree;
        for (var i = 0; i < o.Path.Count - 1; i++)
        {
            if (!map.TryGetValue(o.Path[i], out var child) || child is not ConfigMap childMap)
            {
                childMap = new ConfigMap(location);
                map.Set(o.Path[i], childMap, location);
            }
            map = childMap;
        }
        var last = o.Path[^1];
        if (map.TryGetValue(last, out var existing) && existing is ConfigMap existingMap && o.Value is ConfigMap valueMap)
            TreeMerge.Into(existingMap, valueMap);
        else
            map.Set(last, o.Value, location);
    }

    // Paths in messages: relative to the working directory when below it, else absolute.
    private static string Display(string full)
    {
        var relative = Path.GetRelativePath(Directory.GetCurrentDirectory(), full);
        return relative.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(relative) ? full : relative;
    }
}
