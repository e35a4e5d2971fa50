// GroupNorm and BatchNorm2d forward + backward on the synthetic demo's shapes (slim ResNet-18 FPN, batch 8 of
// 160 px images): the fused ops (Tensor.GroupNorm, Tensor.BatchNorm) against the composition of generic tensor
// ops that GroupNorm used before (mean, sub, square, mean, add, sqrt, div, reshape, mul, add, autograd through
// each). Every row is validated first: both GroupNorm paths and BatchNorm against the double reference.
// Then, per row, the paths are timed alternately (so a load change on a shared machine hits both) and the
// median of the repeats is printed, with one machine line per row: "norm <row> <composed_ms> <fused_ms> <bn_ms>".
// Run: dotnet run -c Release --project bench/Engine.Bench -- --norm [repeats] [row-substring]
using System.Diagnostics;
using Engine.Reference;

namespace Engine.Bench;

public static class NormBench
{
    private const int Groups = 32;

    /// <summary>Every shape the demo normalizes (N = 8, 160 px input) and how many norm layers of one training
    /// iteration have it: the stem (1), ResNet-18's res2 (2 blocks × 2 convs), res3–res5 (4 + the projection
    /// shortcut), and the FPN's 128-channel lateral and output convs at p2–p5 (2 per level; p4 shares res4's shape).</summary>
    private static readonly (string Name, int[] Shape, int Layers)[] Rows =
    [
        ("stem (8,32,80,80)", [8, 32, 80, 80], 1),
        ("res2 (8,32,40,40)", [8, 32, 40, 40], 4),
        ("res3 (8,64,20,20)", [8, 64, 20, 20], 5),
        ("res4+p4 (8,128,10,10)", [8, 128, 10, 10], 5 + 2),
        ("res5 (8,256,5,5)", [8, 256, 5, 5], 5),
        ("fpn p2 (8,128,40,40)", [8, 128, 40, 40], 2),
        ("fpn p3 (8,128,20,20)", [8, 128, 20, 20], 2),
        ("fpn p5 (8,128,5,5)", [8, 128, 5, 5], 2),
    ];

    public static int Run(string[] args)
    {
        var (repeats, filter) = BenchArguments.Parse(args, 21);
        Console.WriteLine($"GroupNorm (G = {Groups}) and BatchNorm2d, forward + backward, {Environment.ProcessorCount} cores, median of {repeats} (alternating)");
        Console.WriteLine($"{"row",-22} {"layers",6} {"GN composed ms",15} {"GN fused ms",12} {"speed-up",9} {"BN fused ms",12}");
        var perIteration = new double[3];
        foreach (var (name, shape, layers) in Rows.Where(row => row.Name.Contains(filter, StringComparison.Ordinal)))
        {
            var g = new Generator(17);
            var c = shape[1];
            using var x = Tensor.Randn(shape, g, mean: 0.3, std: 1.5).RequireGrad();
            using var w = Tensor.Rand([c], g, 0.5, 1.5).RequireGrad();
            using var b = Tensor.Rand([c], g, -0.5, 0.5).RequireGrad();
            using var gy = Tensor.Randn(shape, g);
            using var runningMean = Tensor.Zeros([c]);
            using var runningVar = Tensor.Ones([c]);
            Tensor Composed() => ComposedGroupNorm(x, w, b);
            Tensor Fused() => Tensor.GroupNorm(x, Groups, w, b);
            Tensor Batch() => Tensor.BatchNorm(x, runningMean, runningVar, w, b, training: true);
            Validate(name, x, w, b, gy, Composed, Fused, Batch);

            Func<Tensor>[] paths = [Composed, Fused, Batch];
            var median = AlternatingTimer.Medians(repeats, paths.Select(path => (Func<double>)(() => Step(path, x, w, b, gy))).ToArray());
            Console.WriteLine($"{name,-22} {layers,6} {median[0],15:F2} {median[1],12:F2} {median[0] / median[1],8:F1}x {median[2],12:F2}");
            Console.WriteLine($"norm {name.Split(' ')[0]} {median[0]:F4} {median[1]:F4} {median[2]:F4}");
            for (var k = 0; k < 3; k++) perIteration[k] += layers * median[k];
        }
        // the sum of layers × median over the rows run: the norm layers' share of one training iteration
        Console.WriteLine($"{"per iteration (Σ layers·ms)",-29} {perIteration[0],15:F1} {perIteration[1],12:F1} {perIteration[0] / perIteration[1],8:F1}x {perIteration[2],12:F1}");
        return 0;
    }

    /// <summary>One forward + backward (all three gradients), in milliseconds.</summary>
    private static double Step(Func<Tensor> forward, Tensor x, Tensor w, Tensor b, Tensor gy)
    {
        foreach (var t in new[] { x, w, b }) t.ZeroGrad();
        var start = Stopwatch.GetTimestamp();
        using (DisposeScope.Begin())
        {
            var y = forward();
            y.Backward(gy);
        }
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    /// <summary>GroupNorm as it was composed of generic ops before the fused op.</summary>
    private static Tensor ComposedGroupNorm(Tensor input, Tensor weight, Tensor bias)
    {
        var shape = input.ShapeArray();
        var perGroup = shape[1] / Groups * shape[2] * shape[3];
        using var grouped = input.Reshape(shape[0], Groups, perGroup);
        using var mean = grouped.Mean(2, keepDim: true);
        using var centered = grouped.Sub(mean);
        using var sq = centered.Square();
        using var variance = sq.Mean(2, keepDim: true);
        using var ve = variance.Add(1e-5);
        using var sd = ve.Sqrt();
        using var normalized = centered.Div(sd);
        using var y = normalized.Reshape(shape);
        using var w = weight.Reshape(1, shape[1], 1, 1);
        using var b = bias.Reshape(1, shape[1], 1, 1);
        using var scaled = y.Mul(w);
        return scaled.Add(b);
    }

    /// <summary>Outputs and gradients of both GroupNorm paths, and BatchNorm's output, against the double reference;
    /// throws before anything is timed when one is off.</summary>
    private static void Validate(string row, Tensor x, Tensor w, Tensor b, Tensor gy, Func<Tensor> composed, Func<Tensor> fused, Func<Tensor> batch)
    {
        var (n, c, s) = (x.Size(0), x.Size(1), x.Size(2) * x.Size(3));
        var (xd, wd, bd, gd) = (x.ToDoubleArray(), w.ToDoubleArray(), b.ToDoubleArray(), gy.ToDoubleArray());
        var y = NormalizationReference.GroupNormForward(xd, n, c, s, Groups, wd, bd, 1e-5);
        var (dx, dw, db) = NormalizationReference.GroupNormBackward(xd, n, c, s, Groups, wd, 1e-5, gd);
        foreach (var (path, forward) in new[] { ("composed", composed), ("fused", fused) })
        {
            foreach (var t in new[] { x, w, b }) t.ZeroGrad();
            using var scope = DisposeScope.Begin();
            var out_ = forward();
            out_.Backward(gy);
            // float32 against double: see tests/Engine.Core.Tests/Ops/NormalizationTests.cs for the tolerances
            Check(row, path + " y", y, out_.ToDoubleArray(), 2e-5, 1e-4);
            Check(row, path + " dx", dx, x.Grad!.ToDoubleArray(), 1e-4, 1e-3);
            Check(row, path + " dweight", dw, w.Grad!.ToDoubleArray(), 1e-3, 1e-3);
            Check(row, path + " dbias", db, b.Grad!.ToDoubleArray(), 1e-3, 1e-3);
        }
        using (DisposeScope.Begin())
        {
            var yb = batch();
            Check(row, "batch_norm y", NormalizationReference.BatchNormTrainForward(xd, n, c, s, wd, bd, 1e-5), yb.ToDoubleArray(), 2e-5, 1e-4);
        }
        foreach (var t in new[] { x, w, b }) t.ZeroGrad();
    }

    private static void Check(string row, string what, double[] expected, double[] actual, double atol, double rtol)
    {
        for (var i = 0; i < expected.Length; i++)
            if (!(Math.Abs(actual[i] - expected[i]) <= atol + rtol * Math.Abs(expected[i])))
                throw new InvalidOperationException($"{row}: {what} element {i} is {actual[i]:G9}, expected {expected[i]:G9}; not timing a wrong result.");
    }
}
