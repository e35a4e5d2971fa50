// The shape of the config, read once by reflection from the record types: which keys a section has, the
// type each key expects, and the list of every valid key path (for "did you mean" suggestions). Section
// records are classes with a public parameterless constructor whose public init-only properties are the keys;
// ValueList<T> is a YAML list, ValueMap<T> a mapping with free-form keys, everything else a scalar
// (int, long, double, bool, string, enum, or a nullable of those).
using System.Collections.Concurrent;
using System.Reflection;

namespace Engine.Config;

internal abstract record SchemaNode(Type ClrType)
{
    /// <summary>What a value of this node looks like, for error messages.</summary>
    public abstract string Describe();
}

internal sealed record ScalarSchema(Type ClrType, Type Underlying, bool Nullable) : SchemaNode(ClrType)
{
    public override string Describe()
    {
        string what;
        if (Underlying == typeof(int) || Underlying == typeof(long)) what = "an integer";
        else if (Underlying == typeof(double)) what = "a number";
        else if (Underlying == typeof(bool)) what = "true or false";
        else if (Underlying == typeof(string)) what = "a string";
        else if (Underlying.IsEnum) what = "one of " + string.Join(", ", KeyNames.EnumSpellings(Underlying).Select(s => $"\"{s.Spelling}\""));
        else what = Underlying.Name;
        return Nullable ? what + " or null" : what;
    }
}

internal sealed record ListSchema(Type ClrType, SchemaNode Element) : SchemaNode(ClrType)
{
    public override string Describe() => $"a list of {Element.Describe()}";
}

internal sealed record MapSchema(Type ClrType, SchemaNode Value) : SchemaNode(ClrType)
{
    public override string Describe() => "a mapping of names to " + Value.Describe();
}

internal sealed record SchemaProperty(string Key, PropertyInfo Property, SchemaNode Node);

internal sealed record SectionSchema(Type ClrType, IReadOnlyList<SchemaProperty> Properties) : SchemaNode(ClrType)
{
    public SchemaProperty? Find(string key) => Properties.FirstOrDefault(p => p.Key == key);
    public override string Describe() => "a mapping (section " + ClrType.Name + ")";
}

internal static class ConfigSchema
{
    /// <summary>Placeholder printed for a free-form key of a ValueMap in key-path listings.</summary>
    public const string AnyName = "<name>";

    private static readonly ConcurrentDictionary<Type, SchemaNode> Cache = new();

    public static SchemaNode For(Type type) => Cache.GetOrAdd(type, Build);

    public static SectionSchema Section(Type type) =>
        For(type) as SectionSchema ?? throw new ArgumentException($"ConfigSchema: {type.Name} is not a config section record.");

    private static SchemaNode Build(Type type)
    {
        var underlying = Nullable.GetUnderlyingType(type);
        if (underlying is not null) return new ScalarSchema(type, underlying, Nullable: true);
        if (type.IsEnum || type == typeof(int) || type == typeof(long) || type == typeof(double) || type == typeof(bool))
            return new ScalarSchema(type, type, Nullable: false);
        if (type == typeof(string)) return new ScalarSchema(type, type, Nullable: false);
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(ValueList<>))
            return new ListSchema(type, For(type.GetGenericArguments()[0]));
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(ValueMap<>))
            return new MapSchema(type, For(type.GetGenericArguments()[0]));
        if (type.IsClass && type.GetConstructor(Type.EmptyTypes) is not null)
        {
            var properties = new List<SchemaProperty>();
            foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            {
                if (p.GetIndexParameters().Length > 0 || p.SetMethod is null || !p.SetMethod.IsPublic) continue;
                if (p.Name == "EqualityContract") continue;
                properties.Add(new SchemaProperty(KeyNames.KeyOf(p), p, For(p.PropertyType)));
            }
            var duplicate = properties.GroupBy(p => p.Key).FirstOrDefault(g => g.Count() > 1);
            if (duplicate is not null)
                throw new InvalidOperationException($"ConfigSchema: {type.Name} maps two properties to the key {duplicate.Key}.");
            return new SectionSchema(type, properties);
        }
        throw new InvalidOperationException($"ConfigSchema: type {type.Name} cannot be bound from YAML.");
    }

    /// <summary>Every key path below <paramref name="node"/> (sections included), each prefixed by
    /// <paramref name="prefix"/>; free-form map keys print as <see cref="AnyName"/>.</summary>
    public static IEnumerable<string> KeyPaths(SchemaNode node, string prefix)
    {
        switch (node)
        {
            case SectionSchema section:
                foreach (var p in section.Properties)
                {
                    var path = Join(prefix, p.Key);
                    yield return path;
                    foreach (var sub in KeyPaths(p.Node, path)) yield return sub;
                }
                break;
            case MapSchema map:
                foreach (var sub in KeyPaths(map.Value, Join(prefix, AnyName))) yield return sub;
                break;
        }
    }

    public static string Join(string prefix, string key) => prefix.Length == 0 ? key : prefix + "." + key;

    /// <summary>Resolves a dotted key path against the schema. On failure returns the number of leading
    /// segments that resolved, the node reached and its path.</summary>
    public static (SchemaNode? Node, int Resolved, SchemaNode Deepest, string DeepestPath) Resolve(SchemaNode root, IReadOnlyList<string> segments)
    {
        var node = root;
        var path = "";
        for (var i = 0; i < segments.Count; i++)
        {
            SchemaNode? next = node switch
            {
                SectionSchema s => s.Find(segments[i])?.Node,
                MapSchema m => m.Value,
                _ => null,
            };
            if (next is null) return (null, i, node, path);
            node = next;
            path = Join(path, segments[i]);
        }
        return (node, segments.Count, node, path);
    }
}
