// The untyped config tree: what YAML files and overrides produce before binding. Maps keep insertion
// order and the location of each key; scalars keep their text and whether they were written plain
// (unquoted), because only a plain `null`, `~` or empty value means null, and only a plain
// `(a, b)` is read as a detectron2-style tuple.
namespace Engine.Config;

public abstract class ConfigNode
{
    protected ConfigNode(SourceLocation location) => Location = location;

    public SourceLocation Location { get; }

    /// <summary>Short name of the node kind for error messages ("a mapping", "a list", "a scalar").</summary>
    public abstract string KindName { get; }

    public abstract ConfigNode DeepClone();
}

public sealed class ConfigScalar : ConfigNode
{
    public ConfigScalar(string text, bool isPlain, SourceLocation location) : base(location)
    {
        Text = text;
        IsPlain = isPlain;
    }

    public string Text { get; }
    public bool IsPlain { get; }

    /// <summary>A plain <c>null</c>, <c>Null</c>, <c>NULL</c>, <c>~</c> or empty value (YAML 1.2 core schema).</summary>
    public bool IsNull => IsPlain && Text is "" or "~" or "null" or "Null" or "NULL";

    public override string KindName => "a scalar";
    public override ConfigNode DeepClone() => this;
    public override string ToString() => IsPlain ? Text : $"\"{Text}\"";
}

public sealed class ConfigSequence : ConfigNode
{
    public ConfigSequence(IEnumerable<ConfigNode> items, SourceLocation location) : base(location) => Items = items.ToList();

    public List<ConfigNode> Items { get; }

    public override string KindName => "a list";
    public override ConfigNode DeepClone() => new ConfigSequence(Items.Select(i => i.DeepClone()), Location);
}

public sealed class ConfigMap : ConfigNode
{
    private readonly List<ConfigMapEntry> _entries = [];

    public ConfigMap(SourceLocation location) : base(location) { }

    public IReadOnlyList<ConfigMapEntry> Entries => _entries;
    public int Count => _entries.Count;

    public override string KindName => "a mapping";

    public ConfigMapEntry? Find(string key) => _entries.Find(e => e.Key == key);

    public bool TryGetValue(string key, out ConfigNode value)
    {
        var entry = Find(key);
        value = entry?.Value!;
        return entry is not null;
    }

    /// <summary>Adds or replaces <paramref name="key"/>; a replaced key keeps its position.</summary>
    public void Set(string key, ConfigNode value, SourceLocation keyLocation)
    {
        var index = _entries.FindIndex(e => e.Key == key);
        var entry = new ConfigMapEntry(key, keyLocation, value);
        if (index >= 0) _entries[index] = entry;
        else _entries.Add(entry);
    }

    public bool Remove(string key) => _entries.RemoveAll(e => e.Key == key) > 0;

    public override ConfigNode DeepClone()
    {
        var copy = new ConfigMap(Location);
        foreach (var e in _entries) copy._entries.Add(e with { Value = e.Value.DeepClone() });
        return copy;
    }
}

public sealed record ConfigMapEntry(string Key, SourceLocation KeyLocation, ConfigNode Value);
