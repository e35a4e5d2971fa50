// PyTorch's SGD update written out in double for the tests (torch.optim.SGD docs, "Algorithm"):
// g ← g + wd·p; b ← g (first step) or μ·b + (1 − τ)·g; g ← g + μ·b (Nesterov) or b; p ← p − lr·g.
namespace Engine.Tests.Optim;

public sealed class SgdReference(double momentum, double dampening, bool nesterov)
{
    private readonly Dictionary<int, double[]> _buffers = [];

    /// <summary>Updates <paramref name="p"/> in place; a null gradient skips the parameter.</summary>
    public void Step(int id, double[] p, double[]? grad, double lr, double weightDecay)
    {
        if (grad is null) return;
        var d = new double[p.Length];
        for (var i = 0; i < p.Length; i++) d[i] = grad[i] + weightDecay * p[i];
        if (momentum != 0)
        {
            if (!_buffers.TryGetValue(id, out var b)) _buffers[id] = b = (double[])d.Clone();
            else
                for (var i = 0; i < p.Length; i++) b[i] = momentum * b[i] + (1 - dampening) * d[i];
            for (var i = 0; i < p.Length; i++) d[i] = nesterov ? d[i] + momentum * b[i] : b[i];
        }
        for (var i = 0; i < p.Length; i++) p[i] -= lr * d[i];
    }
}
