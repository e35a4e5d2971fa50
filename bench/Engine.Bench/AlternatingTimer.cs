// The timing loop of the CPU comparison benches (--norm, --frozen, --frozen-relu, --add-relu): one warm-up call of
// each path, then the paths called in turn `repeats` times, so that a change in the machine's load falls on all of
// them alike; the median of each path's times.
namespace Engine.Bench;

public static class AlternatingTimer
{
    /// <summary>The median time of each step (each returns its own time in ms), over <paramref name="repeats"/>
    /// alternating rounds after one warm-up round.</summary>
    public static double[] Medians(int repeats, params Func<double>[] steps)
    {
        var times = steps.Select(_ => new double[repeats]).ToArray();
        foreach (var step in steps) step();
        for (var i = 0; i < repeats; i++)
            for (var k = 0; k < steps.Length; k++)
                times[k][i] = steps[k]();
        return times.Select(t =>
        {
            Array.Sort(t);
            return t[repeats / 2];
        }).ToArray();
    }
}
