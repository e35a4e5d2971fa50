// Deterministic release of tensor memory. Every tensor created on a thread while a scope is open
// belongs to that scope; disposing the scope disposes them all except those handed back with Keep
// (moved to the enclosing scope, or to no scope when outermost). Scopes nest per thread.
//
//   using var scope = DisposeScope.Begin();
//   var h = x.Relu();              // disposed with the scope
//   return scope.Keep(h * 2);      // survives, now owned by the caller's scope
namespace Engine;

public sealed class DisposeScope : IDisposable
{
    [ThreadStatic] private static DisposeScope? _current;
    [ThreadStatic] private static int _suspended;

    private readonly HashSet<Tensor> _tensors = new(ReferenceEqualityComparer.Instance);
    private bool _disposed;

    private DisposeScope(DisposeScope? outer) => Outer = outer;

    public static DisposeScope? Current => _current;
    internal DisposeScope? Outer { get; }

    /// <summary>Number of live tensors owned by this scope.</summary>
    public int Count => _tensors.Count;

    public static DisposeScope Begin() => _current = new DisposeScope(_current);

    /// <summary>Tensors created until the returned handle is disposed belong to no scope.</summary>
    public static IDisposable Suspend()
    {
        _suspended++;
        return new SuspendHandle();
    }

    internal static void Register(Tensor t)
    {
        if (_suspended == 0) _current?.Adopt(t);
    }

    internal void Adopt(Tensor t)
    {
        if (_disposed) throw new ObjectDisposedException(nameof(DisposeScope));
        _tensors.Add(t);
        t.OwnerScope = this;
    }

    internal void Forget(Tensor t) => _tensors.Remove(t);

    /// <summary>Hands <paramref name="t"/> to the enclosing scope (or to no scope) so it outlives this one.</summary>
    public Tensor Keep(Tensor t)
    {
        if (t.OwnerScope == this) t.MoveToOuterScope();
        return t;
    }

    public (Tensor, Tensor) Keep(Tensor a, Tensor b) => (Keep(a), Keep(b));

    public IReadOnlyList<Tensor> Keep(IReadOnlyList<Tensor> tensors)
    {
        foreach (var t in tensors) Keep(t);
        return tensors;
    }

    public void Dispose()
    {
        if (_disposed) return;
        if (_current != this)
            throw new InvalidOperationException("DisposeScope disposed out of order: dispose inner scopes before outer ones, on the thread that began them.");
        _current = Outer;
        _disposed = true;
        foreach (var t in _tensors.ToArray())
        {
            t.OwnerScope = null;
            t.Dispose();
        }
        _tensors.Clear();
    }

    private sealed class SuspendHandle : IDisposable
    {
        private bool _done;

        public void Dispose()
        {
            if (_done) return;
            _done = true;
            _suspended--;
        }
    }
}
