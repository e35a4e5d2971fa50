// The shared check behind every LoadStateDict of the long-tail components: which expected entries are missing,
// which have another dtype or shape, and which keys are unexpected. Callers add their own semantic checks and
// throw with their own message, so nothing is loaded unless everything fits.
namespace Engine.LongTail;

internal static class StateCheck
{
    /// <summary>Problems of <paramref name="state"/> against the expected (name, dtype, shape) entries; empty when it fits.</summary>
    public static List<string> Problems(IReadOnlyDictionary<string, Tensor> state, IEnumerable<(string Name, DType DType, int[] Shape)> expected)
    {
        var list = expected.ToList();
        var errors = new List<string>();
        foreach (var (name, dtype, shape) in list)
            if (!state.TryGetValue(name, out var src)) errors.Add($"missing '{name}' ({dtype.Name()} {ShapeUtil.Format(shape)})");
            else if (src.DType != dtype || !src.Shape.SequenceEqual(shape))
                errors.Add($"'{name}' is {src.DType.Name()} {ShapeUtil.Format(src.Shape)}, expected {dtype.Name()} {ShapeUtil.Format(shape)}");
        foreach (var key in state.Keys)
            if (list.All(x => x.Name != key)) errors.Add($"unexpected '{key}'");
        return errors;
    }

    /// <summary>The expectation of each target tensor: its own name, dtype and shape.</summary>
    public static IEnumerable<(string Name, DType DType, int[] Shape)> Of(IEnumerable<(string Name, Tensor Target)> targets) =>
        targets.Select(t => (t.Name, t.Target.DType, t.Target.ShapeArray()));

    /// <summary>Copies every target's entry of <paramref name="state"/> into it (after Problems came back empty).</summary>
    public static void CopyInto(IReadOnlyDictionary<string, Tensor> state, IEnumerable<(string Name, Tensor Target)> targets)
    {
        using (GradMode.NoGrad())
            foreach (var (name, target) in targets) target.CopyFrom(state[name]);
    }
}
