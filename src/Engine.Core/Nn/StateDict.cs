// An ordered map from dotted names ("backbone.res2.0.conv1.weight") to tensors: what a module or an
// optimizer saves and loads. It owns its tensors: disposing it disposes them. Module.StateDict() fills it
// with aliases (shared storage, no autograd link), so disposing the dict never frees a module's memory.
using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace Engine.Nn;

public sealed class StateDict : IReadOnlyDictionary<string, Tensor>, IDisposable
{
    private readonly List<string> _order = [];
    private readonly Dictionary<string, Tensor> _map = new(StringComparer.Ordinal);

    /// <summary>Adds <paramref name="tensor"/> under <paramref name="name"/>, taking ownership (it leaves its DisposeScope).</summary>
    public void Add(string name, Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (string.IsNullOrEmpty(name)) throw new ArgumentException("StateDict.Add: the name is empty.");
        if (!_map.TryAdd(name, tensor.DetachFromScope()))
            throw new ArgumentException($"StateDict.Add: '{name}' is already present; names must be unique.");
        _order.Add(name);
    }

    public Tensor this[string key] => _map.TryGetValue(key, out var t) ? t
        : throw new KeyNotFoundException($"StateDict: no tensor named '{key}' ({Count} entries{(Count > 0 ? $", e.g. '{_order[0]}'" : "")}).");

    /// <summary>Names in insertion order.</summary>
    public IEnumerable<string> Keys => _order;

    public IEnumerable<Tensor> Values => _order.Select(k => _map[k]);

    public int Count => _order.Count;

    public bool ContainsKey(string key) => _map.ContainsKey(key);

    public bool TryGetValue(string key, [MaybeNullWhen(false)] out Tensor value) => _map.TryGetValue(key, out value);

    public IEnumerator<KeyValuePair<string, Tensor>> GetEnumerator() =>
        _order.Select(k => new KeyValuePair<string, Tensor>(k, _map[k])).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public void Dispose()
    {
        foreach (var t in _map.Values) t.Dispose();
        _map.Clear();
        _order.Clear();
    }
}
