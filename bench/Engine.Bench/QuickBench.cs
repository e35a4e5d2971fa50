// A quick table of the oneDNN rows without BenchmarkDotNet: validate, two warm-up calls, then the
// median of N timed calls (Stopwatch). Used by bench/conv_compare.sh; prints a table and one machine
// line per row, "row <id> <median_ms> <gflop>".
// Run: dotnet run -c Release --project bench/Engine.Bench -- --quick [repeats] [row-id-substring]
using System.Diagnostics;
using Engine.Native;

namespace Engine.Bench;

public static class QuickBench
{
    public static int Run(string[] args)
    {
        var (repeats, filter) = BenchArguments.Parse(args, 15);
        Console.WriteLine($"engine OneDnn API, {OneDnn.MaxThreads} threads, layout policy {OneDnn.LayoutPolicy}, median of {repeats}");
        Console.WriteLine($"{"row",-52} {"median ms",10} {"GFLOP/s",10}");
        foreach (var c in OneDnnCase.All().Where(c => c.Id.Contains(filter, StringComparison.Ordinal)))
        {
            c.Validate(samples: 48, new Random(17));
            c.Run();
            c.Run();
            var times = new double[repeats];
            for (var i = 0; i < repeats; i++)
            {
                var start = Stopwatch.GetTimestamp();
                c.Run();
                times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
            Array.Sort(times);
            var median = times[repeats / 2];
            Console.WriteLine($"{c.Label,-52} {median,10:F2} {c.Flops / median / 1e6,10:F1}");
            Console.WriteLine($"row {c.Id} {median:F4} {c.Flops / 1e9:F6}");
        }
        return 0;
    }
}
