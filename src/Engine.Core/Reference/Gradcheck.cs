// Finite-difference gradient checking in double. A reference backward (a vector-Jacobian product) is
// compared with central differences of the reference forward along every input coordinate, for a random
// upstream gradient u: d(u·f(x))/dx_i ≈ (u·f(x + h e_i) - u·f(x - h e_i)) / 2h. Used by the tests of
// every differentiable op and by `engine selftest`.
namespace Engine.Reference;

public sealed record GradcheckResult(bool Passed, double MaxAbsError, double MaxRelError, string Detail)
{
    public override string ToString() => Detail;
}

public static class Gradcheck
{
    /// <param name="forward">the op on double inputs (each a flat array) returning a flat output.</param>
    /// <param name="vjp">(inputs, upstream gradient) → gradient for each input.</param>
    /// <param name="step">finite-difference step h; the truncation error of the central difference is O(h²).</param>
    /// <param name="atol">absolute tolerance; with h = 1e-6 in double, rounding error is ≈ 1e-10·|f|/h² scale ≈ 1e-8.</param>
    public static GradcheckResult Check(
        Func<double[][], double[]> forward,
        Func<double[][], double[], double[][]> vjp,
        double[][] inputs,
        Generator generator,
        double step = 1e-6,
        double atol = 1e-6,
        double rtol = 1e-5,
        bool[]? differentiable = null)
    {
        var y = forward(inputs);
        var u = new double[y.Length];
        for (var i = 0; i < u.Length; i++) u[i] = generator.NextDouble() * 2 - 1;
        var analytic = vjp(inputs, u);
        if (analytic.Length != inputs.Length)
            return new GradcheckResult(false, double.NaN, double.NaN, $"vjp returned {analytic.Length} gradients for {inputs.Length} inputs");

        double maxAbs = 0, maxRel = 0;
        string? worst = null;
        var passed = true;
        for (var k = 0; k < inputs.Length; k++)
        {
            if (differentiable is not null && !differentiable[k]) continue;
            var x = inputs[k];
            if (analytic[k].Length != x.Length)
                return new GradcheckResult(false, double.NaN, double.NaN, $"input {k}: gradient has {analytic[k].Length} elements, input {x.Length}");
            for (var i = 0; i < x.Length; i++)
            {
                var saved = x[i];
                x[i] = saved + step;
                var plus = Dot(u, forward(inputs));
                x[i] = saved - step;
                var minus = Dot(u, forward(inputs));
                x[i] = saved;
                var numeric = (plus - minus) / (2 * step);
                var err = Math.Abs(numeric - analytic[k][i]);
                var rel = err / Math.Max(Math.Abs(numeric), 1e-12);
                if (err > maxAbs) maxAbs = err;
                if (err > atol) maxRel = Math.Max(maxRel, rel);
                if (err > atol + rtol * Math.Abs(numeric) || double.IsNaN(analytic[k][i]))
                {
                    passed = false;
                    worst ??= $"input {k}[{i}] = {saved:G6}: analytic {analytic[k][i]:G10}, numeric {numeric:G10}";
                }
            }
        }
        var detail = passed
            ? $"gradcheck passed (max abs error {maxAbs:G3})"
            : $"gradcheck failed: {worst} (max abs error {maxAbs:G3})";
        return new GradcheckResult(passed, maxAbs, maxRel, detail);
    }

    private static double Dot(double[] a, double[] b)
    {
        double s = 0;
        for (var i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }
}
