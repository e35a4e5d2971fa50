// Binds a merged ConfigNode tree onto the typed records. Binding starts from the record's defaults and
// overlays only the keys present in the tree, so an absent key keeps its default. Keys are matched
// case-sensitively (KeyNames); an unknown key, a value of the wrong kind or an unparsable scalar is an
// error naming its file:line:col, its key path and what was expected. The binder also remembers where each
// bound value came from, so later validation errors can point at the line that set the value.
using System.Globalization;
using System.Reflection;

namespace Engine.Config;

internal sealed class ConfigBinder
{
    private static readonly MethodInfo MemberwiseCloneMethod =
        typeof(object).GetMethod("MemberwiseClone", BindingFlags.Instance | BindingFlags.NonPublic)!;

    private readonly SchemaNode _root;
    private readonly Dictionary<string, SourceLocation> _locations = new(StringComparer.Ordinal);

    private ConfigBinder(SchemaNode root) => _root = root;

    /// <summary>Where each bound key path's value was written (absent: the default was kept).</summary>
    public IReadOnlyDictionary<string, SourceLocation> Locations => _locations;

    public static (T Value, IReadOnlyDictionary<string, SourceLocation> Locations) Bind<T>(ConfigMap tree) where T : class, new()
    {
        var binder = new ConfigBinder(ConfigSchema.For(typeof(T)));
        var value = (T)binder.BindNode(tree, binder._root, new T(), "")!;
        return (value, binder._locations);
    }

    private object? BindNode(ConfigNode node, SchemaNode schema, object? current, string path)
    {
        _locations[path] = node.Location;
        return schema switch
        {
            SectionSchema section => BindSection(node, section, current, path),
            ListSchema list => BindList(node, list, path),
            MapSchema map => BindMap(node, map, current, path),
            ScalarSchema scalar => BindScalar(node, scalar, path),
            _ => throw new InvalidOperationException($"ConfigBinder: unknown schema node {schema.GetType().Name}."),
        };
    }

    private object BindSection(ConfigNode node, SectionSchema schema, object? current, string path)
    {
        // An empty section (`MODEL:` with nothing under it) changes nothing.
        if (node is ConfigScalar { IsNull: true }) return current ?? Activator.CreateInstance(schema.ClrType)!;
        if (node is not ConfigMap map)
            throw ConfigException.At(node.Location, path, $"expected {schema.Describe()}, found {node.KindName}.");

        var result = current is null ? Activator.CreateInstance(schema.ClrType)! : MemberwiseCloneMethod.Invoke(current, null)!;
        foreach (var entry in map.Entries)
        {
            var keyPath = ConfigSchema.Join(path, entry.Key);
            var property = schema.Find(entry.Key);
            if (property is null)
            {
                var (_, _, deepest, deepestPath) = ConfigSchema.Resolve(_root, keyPath.Split('.'));
                throw ConfigException.At(entry.KeyLocation, keyPath,
                    "unknown key; " + Suggestions.ForUnknownKey(keyPath, _root, deepest, deepestPath));
            }
            var value = BindNode(entry.Value, property.Node, property.Property.GetValue(result), keyPath);
            property.Property.SetValue(result, value);
        }
        return result;
    }

    private object BindList(ConfigNode node, ListSchema schema, string path)
    {
        var sequence = node switch
        {
            ConfigSequence s => s,
            ConfigScalar { IsPlain: true } t when LooksLikeTuple(t.Text) => TupleToSequence(t, path),
            _ => throw ConfigException.At(node.Location, path,
                $"expected {schema.Describe()} such as [1, 2], found {node.KindName}" + (node is ConfigScalar sc ? $" '{sc.Text}'." : ".")),
        };
        var listType = schema.ClrType;
        var elementType = listType.GetGenericArguments()[0];
        var items = Array.CreateInstance(elementType, sequence.Items.Count);
        for (var i = 0; i < sequence.Items.Count; i++)
            items.SetValue(BindNode(sequence.Items[i], schema.Element, null, $"{path}[{i}]"), i);
        return Activator.CreateInstance(listType, items)!;
    }

    // detectron2's YAML files write tuples such as `(640, 672, 704)` and `("lvis_v1_train",)`, which its
    // loader evaluates as Python literals; read them as the equivalent flow sequence.
    private static bool LooksLikeTuple(string text) => text.Length >= 2 && text[0] == '(' && text[^1] == ')';

    private static ConfigSequence TupleToSequence(ConfigScalar scalar, string path)
    {
        var inner = scalar.Text[1..^1].Trim();
        if (inner.EndsWith(',')) inner = inner[..^1];
        ConfigNode parsed;
        try
        {
            parsed = YamlTreeReader.Read("[" + inner + "]", scalar.Location.Source);
        }
        catch (ConfigException e)
        {
            throw ConfigException.At(scalar.Location, path, $"cannot read the tuple {scalar.Text} as a list ({e.Message}).");
        }
        if (parsed is not ConfigSequence seq)
            throw ConfigException.At(scalar.Location, path, $"cannot read the tuple {scalar.Text} as a list.");
        // The items' marks are relative to the synthetic text; report them at the tuple's own position.
        return new ConfigSequence(seq.Items.Select(i => Relocate(i, scalar.Location)), scalar.Location);
    }

    private static ConfigNode Relocate(ConfigNode node, SourceLocation location) => node switch
    {
        ConfigScalar s => new ConfigScalar(s.Text, s.IsPlain, location),
        ConfigSequence q => new ConfigSequence(q.Items.Select(i => Relocate(i, location)), location),
        _ => node,
    };

    private object BindMap(ConfigNode node, MapSchema schema, object? current, string path)
    {
        if (node is ConfigScalar { IsNull: true }) return current ?? Activator.CreateInstance(schema.ClrType, Array.CreateInstance(typeof(KeyValuePair<,>).MakeGenericType(typeof(string), schema.Value.ClrType), 0))!;
        if (node is not ConfigMap map)
            throw ConfigException.At(node.Location, path, $"expected {schema.Describe()}, found {node.KindName}.");

        // Entries merge into the existing map: a key already present is overlaid, a new key starts from
        // the value type's defaults.
        var valueType = schema.Value.ClrType;
        var pairType = typeof(KeyValuePair<,>).MakeGenericType(typeof(string), valueType);
        var entries = new List<(string Key, object? Value)>();
        if (current is System.Collections.IEnumerable existing)
            foreach (var pair in existing)
            {
                var key = (string)pairType.GetProperty("Key")!.GetValue(pair)!;
                entries.Add((key, pairType.GetProperty("Value")!.GetValue(pair)));
            }
        foreach (var entry in map.Entries)
        {
            var keyPath = ConfigSchema.Join(path, entry.Key);
            var index = entries.FindIndex(e => e.Key == entry.Key);
            var value = BindNode(entry.Value, schema.Value, index >= 0 ? entries[index].Value : null, keyPath);
            if (index >= 0) entries[index] = (entry.Key, value);
            else entries.Add((entry.Key, value));
        }
        var array = Array.CreateInstance(pairType, entries.Count);
        for (var i = 0; i < entries.Count; i++)
            array.SetValue(Activator.CreateInstance(pairType, entries[i].Key, entries[i].Value), i);
        return Activator.CreateInstance(schema.ClrType, array)!;
    }

    private static object? BindScalar(ConfigNode node, ScalarSchema schema, string path)
    {
        if (node is not ConfigScalar scalar)
            throw ConfigException.At(node.Location, path, $"expected {schema.Describe()}, found {node.KindName}.");
        if (scalar.IsNull)
        {
            if (schema.Nullable) return null;
            var hint = schema.Underlying == typeof(string) ? " (write \"\" for an empty string)" : "";
            throw ConfigException.At(node.Location, path, $"expected {schema.Describe()}, found null{hint}.");
        }
        if (TryParseScalar(scalar.Text, schema.Underlying, out var value)) return value;
        var extra = "";
        if (schema.Underlying.IsEnum)
        {
            // Few candidates, so a looser bound than for key paths: up to half the word may differ.
            var (best, distance) = KeyNames.EnumSpellings(schema.Underlying)
                .Select(s => (s.Spelling, Suggestions.Distance(scalar.Text, s.Spelling)))
                .MinBy(x => x.Item2);
            if (distance <= Math.Max(3, scalar.Text.Length / 2)) extra = $" Did you mean \"{best}\"?";
        }
        throw ConfigException.At(node.Location, path, $"expected {schema.Describe()}, found '{scalar.Text}'.{extra}");
    }

    /// <summary>Parses a scalar's text as <paramref name="type"/> (invariant culture; numbers must be finite).</summary>
    internal static bool TryParseScalar(string text, Type type, out object? value)
    {
        value = null;
        if (type == typeof(string)) { value = text; return true; }
        if (type == typeof(int))
        {
            if (!int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var i)) return false;
            value = i;
            return true;
        }
        if (type == typeof(long))
        {
            if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)) return false;
            value = l;
            return true;
        }
        if (type == typeof(double))
        {
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) || !double.IsFinite(d)) return false;
            value = d;
            return true;
        }
        if (type == typeof(bool))
        {
            // YAML 1.2 core schema spellings (detectron2 files write True/False).
            switch (text)
            {
                case "true" or "True" or "TRUE": value = true; return true;
                case "false" or "False" or "FALSE": value = false; return true;
                default: return false;
            }
        }
        if (type.IsEnum)
        {
            foreach (var (spelling, member) in KeyNames.EnumSpellings(type))
                if (spelling == text) { value = member; return true; }
            return false;
        }
        return false;
    }
}
