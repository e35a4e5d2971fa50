// The residual sum and its ReLU at the end of every R50 bottleneck (800×1067, batch 2), forward + backward into both
// operands: Add then Relu (two passes, the sum kept for the backward) against AddRelu (one pass, its output kept).
// Both paths are first checked to give the same values and gradients bit for bit; then they are timed alternately
// and the median printed, with one machine line per row: "add-relu <row> <add_then_relu_ms> <fused_ms>".
// Run: dotnet run -c Release --project bench/Engine.Bench -- --add-relu [repeats] [row-substring]
using System.Diagnostics;

namespace Engine.Bench;

public static class ResidualBench
{
    /// <summary>Block output shapes of R50 at 800×1067 (batch 2) and the blocks of each stage (3, 4, 6, 3).</summary>
    private static readonly (string Name, int[] Shape, int Blocks)[] Rows =
    [
        ("res2 (2,256,200,267)", [2, 256, 200, 267], 3),
        ("res3 (2,512,100,134)", [2, 512, 100, 134], 4),
        ("res4 (2,1024,50,67)", [2, 1024, 50, 67], 6),
        ("res5 (2,2048,25,34)", [2, 2048, 25, 34], 3),
    ];

    public static int Run(string[] args)
    {
        var (repeats, filter) = BenchArguments.Parse(args, 11);
        Console.WriteLine($"residual add + ReLU forward + backward, {Environment.ProcessorCount} cores, median of {repeats} (alternating)");
        Console.WriteLine($"{"row",-22} {"blocks",6} {"add, relu ms",12} {"fused ms",12} {"speed-up",9}");
        var perStep = new double[2];
        foreach (var (name, shape, blocks) in Rows.Where(row => row.Name.Contains(filter, StringComparison.Ordinal)))
        {
            var g = new Generator(29);
            using var branch = Tensor.Randn(shape, g).RequireGrad();
            using var shortcut = Tensor.Randn(shape, g).RequireGrad();
            using var gy = Tensor.Randn(shape, g);
            Tensor AddThenRelu()
            {
                using var sum = branch.Add(shortcut);
                return sum.Relu();
            }
            Tensor Fused() => branch.AddRelu(shortcut);
            Func<Tensor>[] paths = [AddThenRelu, Fused];
            Validate(name, paths, branch, shortcut, gy);

            var median = AlternatingTimer.Medians(repeats, paths.Select(path => (Func<double>)(() => Step(path, branch, shortcut, gy))).ToArray());
            Console.WriteLine($"{name,-22} {blocks,6} {median[0],12:F2} {median[1],12:F2} {median[0] / median[1],8:F2}x");
            Console.WriteLine($"add-relu {name.Split(' ')[0]} {median[0]:F4} {median[1]:F4}");
            for (var k = 0; k < 2; k++) perStep[k] += blocks * median[k];
        }
        // the sum of blocks × median over the rows run: the residual sums' share of one training step
        Console.WriteLine($"{"per step (Σ blocks·ms)",-29} {perStep[0],12:F1} {perStep[1],12:F1} {perStep[0] / perStep[1],8:F2}x");
        return 0;
    }

    /// <summary>One forward + backward, in milliseconds.</summary>
    private static double Step(Func<Tensor> forward, Tensor a, Tensor b, Tensor gy)
    {
        a.ZeroGrad();
        b.ZeroGrad();
        var start = Stopwatch.GetTimestamp();
        using (DisposeScope.Begin())
        {
            var y = forward();
            y.Backward(gy);
        }
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    /// <summary>Both paths' outputs and gradients, bit for bit; throws before anything is timed when they differ.</summary>
    private static void Validate(string row, Func<Tensor>[] paths, Tensor a, Tensor b, Tensor gy)
    {
        var results = new List<int[][]>();
        foreach (var path in paths)
        {
            a.ZeroGrad();
            b.ZeroGrad();
            using var scope = DisposeScope.Begin();
            var y = path();
            y.Backward(gy);
            results.Add([Bits(y), Bits(a.Grad!), Bits(b.Grad!)]);
        }
        string[] parts = ["output", "gradient of the branch", "gradient of the shortcut"];
        for (var p = 0; p < parts.Length; p++)
            if (!results[0][p].AsSpan().SequenceEqual(results[1][p]))
                throw new InvalidOperationException($"{row}: the fused {parts[p]} differs from Add then Relu; not timing a wrong result.");
        a.ZeroGrad();
        b.ZeroGrad();
    }

    private static int[] Bits(Tensor t) => t.ToFloatArray().Select(BitConverter.SingleToInt32Bits).ToArray();
}
