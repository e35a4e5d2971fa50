// Checks of every op against its double reference on fresh random inputs, run by `engine selftest` on each
// available device. Each check returns the norm-wise relative error max|engine − reference| / max|reference|
// of one output (forward result or an input gradient); it passes when that is within the check's tolerance.
// Op families register their checks in SelfTestChecks.*.cs files; assemblies above Engine.Core (the detection and
// long-tail ops) add theirs with Register.
using Engine.Reference;

namespace Engine.Diagnostics;

/// <summary>One comparison: op name, what was compared (forward, grad of an input), error and tolerance.</summary>
public sealed record SelfTestResult(string Op, string Part, Device Device, double RelativeError, double Tolerance, string? Error = null)
{
    public bool Passed => Error is null && RelativeError <= Tolerance;
}

/// <summary>A named check producing one or more results on a device from a seeded generator.</summary>
public sealed record SelfTestCheck(string Op, Func<Device, Generator, IEnumerable<SelfTestResult>> Run);

public static partial class SelfTest
{
    /// <summary>Every registered check, in family order.</summary>
    public static IReadOnlyList<SelfTestCheck> Checks => AllChecks().ToList();

    private static readonly Lock Gate = new();
    private static readonly List<(string Family, Func<IEnumerable<SelfTestCheck>> Checks)> Families = [];

    /// <summary>Adds the checks of an op family defined outside Engine.Core; they run after the core checks, families
    /// in the order registered. Registering a family name again replaces its checks.</summary>
    public static void Register(string family, Func<IEnumerable<SelfTestCheck>> checks)
    {
        lock (Gate)
        {
            Families.RemoveAll(f => f.Family == family);
            Families.Add((family, checks));
        }
    }

    private static IEnumerable<SelfTestCheck> AllChecks()
    {
        foreach (var c in ElementwiseChecks()) yield return c;
        foreach (var c in ReductionChecks()) yield return c;
        foreach (var c in MoreChecks()) yield return c;
        foreach (var c in NormalizationChecks()) yield return c;
        List<Func<IEnumerable<SelfTestCheck>>> added;
        lock (Gate) added = Families.Select(f => f.Checks).ToList();
        foreach (var family in added)
            foreach (var c in family()) yield return c;
    }

    /// <summary>Checks added by other op families (SelfTestChecks.*.cs).</summary>
    private static partial IEnumerable<SelfTestCheck> MoreChecks();

    /// <summary>Runs every check on the device; a check that throws becomes a failed row with the message.</summary>
    public static IEnumerable<SelfTestResult> Run(Device device, ulong seed, Func<SelfTestCheck, bool>? filter = null)
    {
        var g = new Generator(seed);
        foreach (var check in Checks)
        {
            if (filter is not null && !filter(check)) continue;
            List<SelfTestResult> results;
            try
            {
                using var scope = DisposeScope.Begin();
                results = check.Run(device, g).ToList();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                results = [new SelfTestResult(check.Op, "run", device, double.NaN, 0, $"{e.GetType().Name}: {e.Message}")];
            }
            foreach (var r in results) yield return r;
        }
    }

    /// <summary>max|actual − expected| / max|expected| (absolute when the reference is all zeros); NaN in the
    /// engine's output where the reference is finite counts as infinite error.</summary>
    public static double RelativeError(IReadOnlyList<double> expected, IReadOnlyList<double> actual)
    {
        if (expected.Count != actual.Count) return double.PositiveInfinity;
        double maxDiff = 0, maxRef = 0;
        for (var i = 0; i < expected.Count; i++)
        {
            var (e, a) = (expected[i], actual[i]);
            if (double.IsNaN(a) != double.IsNaN(e)) return double.PositiveInfinity;
            if (double.IsNaN(e)) continue;
            maxDiff = Math.Max(maxDiff, Math.Abs(a - e));
            maxRef = Math.Max(maxRef, Math.Abs(e));
        }
        return maxRef > 0 ? maxDiff / maxRef : maxDiff;
    }

    public static SelfTestResult Compare(string op, string part, Device device, RefTensor expected, Tensor actual, double tolerance)
    {
        if (!expected.Shape.SequenceEqual(actual.ShapeArray()))
            return new SelfTestResult(op, part, device, double.PositiveInfinity, tolerance,
                $"shape {ShapeUtil.Format(actual.Shape)}, expected {ShapeUtil.Format(expected.Shape)}");
        return new SelfTestResult(op, part, device, RelativeError(expected.Data, actual.ToDoubleArray()), tolerance);
    }

    /// <summary>A row of integer results (indices, labels, counts): error 0 when every value and the length equal the
    /// definition's, else infinite, naming the first <paramref name="element"/> that differs.</summary>
    public static SelfTestResult Exact(string op, string part, Device device, IReadOnlyList<double> expected, IReadOnlyList<double> actual,
                                       string element)
    {
        var first = 0;
        while (first < expected.Count && first < actual.Count && actual[first] == expected[first]) first++;
        var same = first == expected.Count && actual.Count == expected.Count;
        var lengths = actual.Count == expected.Count ? "" : $"{actual.Count} values, the definition has {expected.Count}";
        var message = same ? null
                    : first < Math.Min(expected.Count, actual.Count)
                        ? $"{element} {first}: {actual[first]}, the definition says {expected[first]}" + (lengths == "" ? "" : $" ({lengths})")
                        : lengths;
        return new SelfTestResult(op, part, device, same ? 0 : double.PositiveInfinity, 0, message);
    }

    /// <summary>A tensor on <paramref name="device"/> holding the reference values, optionally requiring grad.</summary>
    public static Tensor Upload(RefTensor r, Device device, bool requiresGrad = false)
    {
        using var host = r.ToTensor();
        var t = host.To(device);
        if (requiresGrad) t.RequiresGrad = true;
        return t;
    }

    /// <summary>The values rounded to float32, as a float tensor holds them: for a reference that must see exactly the
    /// engine's inputs (where a rounding difference could flip a discrete outcome, such as a grid size or a kept box).</summary>
    public static double[] AsFloat32(IEnumerable<double> values) => values.Select(v => (double)(float)v).ToArray();

    /// <summary>An odd-sized random shape so that vector remainders and partial tiles are exercised.</summary>
    public static int[] OddShape(Generator g, params int[] maxima) =>
        maxima.Select(m => 1 + 2 * (int)g.NextInt64(Math.Max(1, m / 2))).ToArray();
}
