// Whether ops record the graph for backward. NoGrad() turns recording off on this thread for its lifetime
// (inference, optimizer updates, statistics passes).
namespace Engine;

public static class GradMode
{
    [ThreadStatic] private static int _disabled;

    public static bool IsEnabled => _disabled == 0;

    /// <summary>True when an in-place write to t would corrupt a recorded graph or a leaf's gradient.</summary>
    internal static bool IsEnabledFor(Tensor t) => IsEnabled && t.RequiresGrad;

    public static IDisposable NoGrad()
    {
        _disabled++;
        return new Restore();
    }

    private sealed class Restore : IDisposable
    {
        private bool _done;

        public void Dispose()
        {
            if (_done) return;
            _done = true;
            _disabled--;
        }
    }
}
