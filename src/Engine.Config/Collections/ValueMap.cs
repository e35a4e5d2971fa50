// An immutable string-keyed map with value equality, for config sections keyed by user-chosen names
// (the dataset catalog). Keys keep the order they were written in (so the effective config reads like the
// files it came from); equality ignores order.
using System.Collections;

namespace Engine.Config;

public sealed class ValueMap<TValue> : IReadOnlyDictionary<string, TValue>, IEquatable<ValueMap<TValue>>
{
    private readonly KeyValuePair<string, TValue>[] _entries;
    private readonly Dictionary<string, TValue> _lookup;

    public ValueMap(IEnumerable<KeyValuePair<string, TValue>> entries)
    {
        _entries = entries.ToArray();
        _lookup = new Dictionary<string, TValue>(StringComparer.Ordinal);
        foreach (var (key, value) in _entries)
            if (!_lookup.TryAdd(key, value))
                throw new ArgumentException($"ValueMap: key '{key}' appears twice.");
    }

    public static ValueMap<TValue> Empty { get; } = new([]);

    public int Count => _entries.Length;
    public TValue this[string key] => _lookup[key];
    public IEnumerable<string> Keys => _entries.Select(e => e.Key);
    public IEnumerable<TValue> Values => _entries.Select(e => e.Value);
    public bool ContainsKey(string key) => _lookup.ContainsKey(key);
    public bool TryGetValue(string key, out TValue value) => _lookup.TryGetValue(key, out value!);

    public IEnumerator<KeyValuePair<string, TValue>> GetEnumerator() => ((IEnumerable<KeyValuePair<string, TValue>>)_entries).GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>A copy with <paramref name="key"/> set to <paramref name="value"/> (replacing in place, or appended).</summary>
    public ValueMap<TValue> With(string key, TValue value)
    {
        var entries = _entries.ToList();
        var index = entries.FindIndex(e => e.Key == key);
        if (index >= 0) entries[index] = new(key, value);
        else entries.Add(new(key, value));
        return new ValueMap<TValue>(entries);
    }

    public bool Equals(ValueMap<TValue>? other)
    {
        if (other is null) return false;
        if (ReferenceEquals(this, other)) return true;
        if (Count != other.Count) return false;
        var comparer = EqualityComparer<TValue>.Default;
        foreach (var (key, value) in _entries)
            if (!other._lookup.TryGetValue(key, out var theirs) || !comparer.Equals(value, theirs)) return false;
        return true;
    }

    public override bool Equals(object? obj) => obj is ValueMap<TValue> other && Equals(other);

    public override int GetHashCode()
    {
        // Order-independent: XOR of per-entry hashes.
        var hash = Count;
        foreach (var (key, value) in _entries) hash ^= HashCode.Combine(key, value);
        return hash;
    }

    public static bool operator ==(ValueMap<TValue>? left, ValueMap<TValue>? right) => left is null ? right is null : left.Equals(right);
    public static bool operator !=(ValueMap<TValue>? left, ValueMap<TValue>? right) => !(left == right);

    public override string ToString() => "{" + string.Join(", ", _entries.Select(e => $"{e.Key}: {e.Value}")) + "}";
}
