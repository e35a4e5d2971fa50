// FrozenBatchNorm2d forward + backward (gradient of the input) on the shapes a pretrained R50-FPN freezes at
// 800×1067, batch 2: the module's one-pass forward (the batch-norm primitive with mean 0, rstd = scale, bias = shift)
// against the multiply-then-add it replaced (x·scale + shift, two passes, autograd through both). Every row is first
// checked against the double reference (NormReference); the two paths are then timed alternately and the median
// printed, with one machine line per row: "frozen <row> <two_pass_ms> <one_pass_ms>".
// With --frozen-relu, the layers a ReLU follows (the stem and the bottlenecks' 1×1 reduce and 3×3) time the layer
// and then a separate ReLU against Forward(x, relu: true), the ReLU in the same pass: "frozen-relu <row> <ms> <ms>".
// Run: dotnet run -c Release --project bench/Engine.Bench -- --frozen|--frozen-relu [repeats] [row-substring]
using System.Diagnostics;
using Engine.Nn;
using Engine.Reference;

namespace Engine.Bench;

public static class FrozenNormBench
{
    /// <summary>Output shapes of the norm layers of R50 at 800×1067 (batch 2; detectron2's stride in the 1×1 reduce conv)
    /// and how many layers of one forward have each: the stem, then per stage of 3, 4, 6 and 3 blocks two
    /// bottleneck-width layers per block (1×1 reduce, 3×3) and one output-width layer per block plus the shortcut.</summary>
    private static readonly (string Name, int[] Shape, int Layers)[] Rows =
    [
        ("stem (2,64,400,534)", [2, 64, 400, 534], 1),
        ("res2.mid (2,64,200,267)", [2, 64, 200, 267], 6),
        ("res2.out (2,256,200,267)", [2, 256, 200, 267], 4),
        ("res3.mid (2,128,100,134)", [2, 128, 100, 134], 8),
        ("res3.out (2,512,100,134)", [2, 512, 100, 134], 5),
        ("res4.mid (2,256,50,67)", [2, 256, 50, 67], 12),
        ("res4.out (2,1024,50,67)", [2, 1024, 50, 67], 7),
        ("res5.mid (2,512,25,34)", [2, 512, 25, 34], 6),
        ("res5.out (2,2048,25,34)", [2, 2048, 25, 34], 4),
    ];

    public static int Run(string[] args, bool relu = false)
    {
        var (repeats, filter) = BenchArguments.Parse(args, 11);
        var (before, after, tag) = relu ? ("norm, relu ms", "fused ms", "frozen-relu") : ("two-pass ms", "one-pass ms", "frozen");
        Console.WriteLine($"FrozenBatchNorm2d{(relu ? " + ReLU" : "")} forward + backward, {Environment.ProcessorCount} cores, median of {repeats} (alternating)");
        Console.WriteLine($"{"row",-26} {"layers",6} {before,12} {after,12} {"speed-up",9}");
        var perStep = new double[2];
        // a ReLU follows the stem's norm and the bottlenecks' first two; the output-width norms feed the residual sum
        foreach (var (name, shape, layers) in Rows.Where(row => row.Name.Contains(filter, StringComparison.Ordinal) &&
                                                                (!relu || !row.Name.Contains(".out", StringComparison.Ordinal))))
        {
            var g = new Generator(23);
            var c = shape[1];
            using var bn = new FrozenBatchNorm2d(c);
            using (GradMode.NoGrad())
            {
                Init.Uniform(bn.Weight, g, 0.5, 1.5);
                Init.Uniform(bn.Bias, g, -0.5, 0.5);
                Init.Uniform(bn.RunningMean, g, -0.5, 0.5);
                Init.Uniform(bn.RunningVar, g, 0.5, 2);
            }
            using var x = Tensor.Randn(shape, g).RequireGrad();
            using var gy = Tensor.Randn(shape, g);
            using var scale = Scale(bn);
            using var shift = Shift(bn, scale);
            Tensor TwoPass()
            {
                using var scaled = x.Mul(scale);
                return scaled.Add(shift);
            }
            Tensor OnePass() => bn.Forward(x);
            Tensor NormThenRelu()
            {
                using var normalized = bn.Forward(x);
                return normalized.Relu();
            }
            Tensor Fused() => bn.Forward(x, relu: true);
            Func<Tensor>[] paths = relu ? [NormThenRelu, Fused] : [TwoPass, OnePass];
            for (var k = 0; k < 2; k++) Validate(name, k == 0 ? before : after, bn, x, gy, paths[k], relu);

            var median = AlternatingTimer.Medians(repeats, paths.Select(path => (Func<double>)(() => Step(path, x, gy))).ToArray());
            Console.WriteLine($"{name,-26} {layers,6} {median[0],12:F2} {median[1],12:F2} {median[0] / median[1],8:F2}x");
            Console.WriteLine($"{tag} {name.Split(' ')[0]} {median[0]:F4} {median[1]:F4}");
            for (var k = 0; k < 2; k++) perStep[k] += layers * median[k];
        }
        // the sum of layers × median over the rows run: the frozen norm layers' share of one training step
        Console.WriteLine($"{"per step (Σ layers·ms)",-33} {perStep[0],12:F1} {perStep[1],12:F1} {perStep[0] / perStep[1],8:F2}x");
        return 0;
    }

    /// <summary>(1, C, 1, 1) weight / sqrt(running_var + eps), as the module computes it.</summary>
    private static Tensor Scale(FrozenBatchNorm2d bn)
    {
        using var v = bn.RunningVar.Value.Add(bn.Eps);
        using var sd = v.Sqrt();
        using var s = bn.Weight.Value.Div(sd);
        return s.Reshape(1, bn.NumFeatures, 1, 1);
    }

    /// <summary>(1, C, 1, 1) bias − running_mean·scale.</summary>
    private static Tensor Shift(FrozenBatchNorm2d bn, Tensor scale)
    {
        using var flat = scale.Reshape(bn.NumFeatures);
        using var ms = bn.RunningMean.Value.Mul(flat);
        using var b = bn.Bias.Value.Sub(ms);
        return b.Reshape(1, bn.NumFeatures, 1, 1);
    }

    /// <summary>One forward + backward, in milliseconds.</summary>
    private static double Step(Func<Tensor> forward, Tensor x, Tensor gy)
    {
        x.ZeroGrad();
        var start = Stopwatch.GetTimestamp();
        using (DisposeScope.Begin())
        {
            var y = forward();
            y.Backward(gy);
        }
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    /// <summary>The path's output and input gradient against the double reference on 4096 sampled elements; throws
    /// before anything is timed when one is off.</summary>
    private static void Validate(string row, string path, FrozenBatchNorm2d bn, Tensor x, Tensor gy, Func<Tensor> forward, bool relu)
    {
        var (n, c, s) = (x.Size(0), x.Size(1), x.Size(2) * x.Size(3));
        var (xd, gd) = (x.ToDoubleArray(), gy.ToDoubleArray());
        var (wd, bd, md, vd) = (bn.Weight.Value.ToDoubleArray(), bn.Bias.Value.ToDoubleArray(), bn.RunningMean.Value.ToDoubleArray(),
                                bn.RunningVar.Value.ToDoubleArray());
        var y = relu ? NormReference.FrozenBatchNormReluForward(xd, n, c, s, wd, bd, md, vd, bn.Eps)
                     : NormReference.FrozenBatchNormForward(xd, n, c, s, wd, bd, md, vd, bn.Eps);
        var dx = relu ? NormReference.FrozenBatchNormReluBackward(gd, xd, n, c, s, wd, bd, md, vd, bn.Eps)
                      : NormReference.FrozenBatchNormBackward(gd, n, c, s, wd, vd, bn.Eps);
        x.ZeroGrad();
        using var scope = DisposeScope.Begin();
        var result = forward();
        result.Backward(gy);
        var (yd, dxd) = (result.ToDoubleArray(), x.Grad!.ToDoubleArray());
        var step = Math.Max(1, y.Length / 4096);
        // float32 against double: a multiply and an add per element (see tests/Engine.Core.Tests/Nn/NormLayerTests.cs)
        for (var i = 0; i < y.Length; i += step)
        {
            if (!(Math.Abs(yd[i] - y[i]) <= 2e-5 + 1e-4 * Math.Abs(y[i])))
                throw new InvalidOperationException($"{row}: {path} y element {i} is {yd[i]:G9}, expected {y[i]:G9}; not timing a wrong result.");
            if (!(Math.Abs(dxd[i] - dx[i]) <= 2e-5 + 1e-4 * Math.Abs(dx[i])))
                throw new InvalidOperationException($"{row}: {path} dx element {i} is {dxd[i]:G9}, expected {dx[i]:G9}; not timing a wrong result.");
        }
        x.ZeroGrad();
    }
}
