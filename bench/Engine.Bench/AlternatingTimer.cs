// The timing loop of the CPU comparison benches (--norm, --frozen, --frozen-relu, --add-relu): one warm-up call of
// each path, then the paths called in turn `repeats` times, so that a change in the machine's load falls on all of
// them alike; the median of each path's times. Also the command line every bench here takes: [repeats] [row-substring].
namespace Engine.Bench;

public static class BenchArguments
{
    /// <summary>(repeats, row filter) from [repeats] [row-substring]: repeats at least 1, <paramref name="defaultRepeats"/>
    /// when absent or not a number; the filter empty (every row) when absent.</summary>
    public static (int Repeats, string Filter) Parse(string[] args, int defaultRepeats) =>
        (args.Length > 0 && int.TryParse(args[0], out var r) ? Math.Max(1, r) : defaultRepeats, args.Length > 1 ? args[1] : "");
}

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
