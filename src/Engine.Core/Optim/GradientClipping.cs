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
        var grads = Gradients(parameters, maxNorm, normType, "ClipByGlobalNorm");
        if (grads.Count == 0) return 0;
        var partials = Partials(grads, normType);
        double acc = 0;
        foreach (var p in partials) acc = double.IsPositiveInfinity(normType) ? Math.Max(acc, p) : acc + p; // Math.Max propagates NaN
        var total = double.IsPositiveInfinity(normType) ? acc : Math.Pow(acc, 1 / normType);
        Scale(grads, total, maxNorm);
        return total;
    }

    /// <summary>Clips each parameter's gradient by its own norm (detectron2's CLIP_TYPE "norm"): what ClipByGlobalNorm
    /// does for each parameter alone, with the norms read in one transfer. Returns the norms before clipping, in the
    /// order of the parameters that have a gradient.</summary>
    public static double[] ClipEachByNorm(IEnumerable<Parameter> parameters, double maxNorm, double normType = 2)
    {
        var grads = Gradients(parameters, maxNorm, normType, "ClipEachByNorm");
        var partials = Partials(grads, normType);
        var totals = new double[grads.Count];
        for (var i = 0; i < grads.Count; i++)
        {
            totals[i] = double.IsPositiveInfinity(normType) ? Math.Max(0, partials[i]) : Math.Pow(partials[i], 1 / normType);
            Scale([grads[i]], totals[i], maxNorm);
        }
        return totals;
    }

    private static List<Tensor> Gradients(IEnumerable<Parameter> parameters, double maxNorm, double normType, string op)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (!(maxNorm >= 0)) throw new ArgumentOutOfRangeException(nameof(maxNorm), $"{op}: maxNorm must be ≥ 0, got {maxNorm}.");
        if (!(normType > 0)) throw new ArgumentOutOfRangeException(nameof(normType), $"{op}: normType must be > 0 (or infinity), got {normType}.");
        return parameters.Select(p => p.Grad).OfType<Tensor>().ToList();
    }

    /// <summary>Σ|g|^q of each gradient (max |g| for q = ∞; 0 for an empty one), read in one transfer.</summary>
    private static double[] Partials(List<Tensor> grads, double normType)
    {
        var partials = new double[grads.Count];
        var parts = new List<Tensor>();
        var at = new List<int>();
        using (GradMode.NoGrad())
        using (DisposeScope.Suspend())
            try
            {
                for (var i = 0; i < grads.Count; i++)
                {
                    if (grads[i].Numel == 0) continue;
                    using var a = grads[i].Abs();
                    if (double.IsPositiveInfinity(normType)) parts.Add(a.Max());
                    else
                    {
                        using var powered = normType == 2 ? a.Square() : normType == 1 ? a.Alias() : a.Pow(normType);
                        parts.Add(powered.Sum());
                    }
                    at.Add(i);
                }
                var values = Tensor.Items(parts);
                for (var k = 0; k < at.Count; k++) partials[at[k]] = values[k];
            }
            finally
            {
                foreach (var t in parts) t.Dispose();
            }
        return partials;
    }

    /// <summary>Scales the gradients by maxNorm / (total + 1e-6) when that is below 1; a non-finite total leaves them.</summary>
    private static void Scale(List<Tensor> grads, double total, double maxNorm)
    {
        if (!double.IsFinite(total)) return;
        var coef = maxNorm / (total + 1e-6);
        if (coef >= 1) return;
        using (GradMode.NoGrad())
            foreach (var g in grads) g.MulInPlace(coef);
    }
}
