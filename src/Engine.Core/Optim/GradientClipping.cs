// Gradient clipping by the norm of all gradients together (PyTorch's clip_grad_norm_, detectron2's
// CLIP_TYPE "full_model"): total = (Σ_p ‖g_p‖_q^q)^(1/q) over every parameter that has a gradient
// (q = normType; q = ∞ gives max |g|). When total > maxNorm every gradient is scaled by
// maxNorm / (total + 1e-6), the same epsilon PyTorch uses. A non-finite total (an overflowed or NaN gradient)
// is returned without touching the gradients: the caller decides whether to skip the step.
using Engine.Nn;

namespace Engine.Optim;

public static class GradientClipping
{
    /// <summary>Returns the total norm before clipping.</summary>
    public static double ClipByGlobalNorm(IEnumerable<Parameter> parameters, double maxNorm, double normType = 2)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (!(maxNorm >= 0)) throw new ArgumentOutOfRangeException(nameof(maxNorm), $"ClipByGlobalNorm: maxNorm must be ≥ 0, got {maxNorm}.");
        if (!(normType > 0)) throw new ArgumentOutOfRangeException(nameof(normType), $"ClipByGlobalNorm: normType must be > 0 (or infinity), got {normType}.");
        var grads = parameters.Select(p => p.Grad).OfType<Tensor>().ToList();
        if (grads.Count == 0) return 0;

        double total;
        using (GradMode.NoGrad())
        using (DisposeScope.Suspend())
        {
            double acc = 0;
            foreach (var g in grads)
            {
                if (g.Numel == 0) continue;
                using var a = g.Abs();
                if (double.IsPositiveInfinity(normType))
                {
                    using var m = a.Max();
                    acc = Math.Max(acc, m.Item()); // Math.Max propagates NaN
                }
                else
                {
                    using var powered = normType == 2 ? a.Square() : normType == 1 ? a.Alias() : a.Pow(normType);
                    using var s = powered.Sum();
                    acc += s.Item();
                }
            }
            total = double.IsPositiveInfinity(normType) ? acc : Math.Pow(acc, 1 / normType);
            if (!double.IsFinite(total)) return total;
            var coef = maxNorm / (total + 1e-6);
            if (coef < 1)
                foreach (var g in grads) g.MulInPlace(coef);
        }
        return total;
    }
}
