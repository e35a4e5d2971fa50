// The convolution and matmul rows timed by the oneDNN benchmarks (ResNet-50 / Faster R-CNN shapes),
// shared by the BenchmarkDotNet classes and the --quick table. Row ids match bench/onednn/onednn_bench.cpp
// so bench/conv_compare.sh can join the two. Each case owns its buffers (random in [0, 1): all terms
// positive, so a sum's magnitude is its value and the float tolerance below is simple), runs one pass
// through the C# OneDnn API, and validates its output on a random sample of elements against the
// double reference before anything is timed.
using Engine.Native;
using Engine.Reference;

namespace Engine.Bench;

public enum ConvPass { Fwd, BwdData, BwdWeights }

public abstract class OneDnnCase
{
    public abstract string Id { get; }
    public abstract string Label { get; }
    public abstract double Flops { get; }
    public abstract void Run();
    /// <summary>Throws when a sampled output element differs from the reference beyond float rounding.</summary>
    public abstract void Validate(int samples, Random rng);

    public override string ToString() => Id;

    /// <summary>The shapes of bench/README.md: three ResNet-50 convolutions in all three passes, and the
    /// box head's first FC (1024 RoIs × 12544 = 256·7·7 features → 1024) forward and both backward products.</summary>
    public static IReadOnlyList<OneDnnCase> All() =>
    [
        .. ConvShapes.SelectMany(s => new[] { ConvPass.Fwd, ConvPass.BwdData, ConvPass.BwdWeights }
            .Select(p => (OneDnnCase)new ConvCase(s.Id, s.Label, s.Geometry, p))),
        new MatmulCase("fc.12544-1024.fwd", "matmul 1024x12544 @ (1024x12544)^T", MatmulGeometry.Contiguous(1, 1024, 1024, 12544, transB: true)),
        new MatmulCase("fc.12544-1024.bwd_data", "matmul 1024x1024 @ 1024x12544", MatmulGeometry.Contiguous(1, 1024, 12544, 1024)),
        new MatmulCase("fc.12544-1024.bwd_weights", "matmul (1024x1024)^T @ 1024x12544", MatmulGeometry.Contiguous(1, 1024, 12544, 1024, transA: true)),
    ];

    public static readonly (string Id, string Label, Conv2dGeometry Geometry)[] ConvShapes =
    [
        ("r50.3x3.256@64x64", "conv 3x3 1x256x64x64 256->256 pad 1", Conv2dGeometry.Square(1, 256, 64, 64, 256, 3, pad: 1)),
        ("r50.1x1.64-256@200x304", "conv 1x1 2x64x200x304 64->256", Conv2dGeometry.Square(2, 64, 200, 304, 256, 1)),
        ("r50.1x1.2048-512@25x38", "conv 1x1 2x2048x25x38 2048->512", Conv2dGeometry.Square(2, 2048, 25, 38, 512, 1)),
    ];

    protected static float[] Random01(Random rng, long count)
    {
        var values = new float[count];
        for (var i = 0; i < values.Length; i++) values[i] = rng.NextSingle();
        return values;
    }

    /// <summary>The output was poisoned with NaN before the call: every element must have been written.</summary>
    protected void CheckAllWritten(string name, float[] output)
    {
        var i = Array.FindIndex(output, float.IsNaN);
        if (i >= 0) throw new InvalidOperationException($"{Id}: {name}[{i}] was never written (still NaN); not timing it.");
    }

    /// <summary>All terms are positive, so |error| ≤ K·eps·value bounds any float summation order
    /// (Higham §3.1); blocked sums stay well inside 32·eps·value.</summary>
    protected void Check(string element, double actual, double expected)
    {
        const double eps32 = 1.1920929e-7;
        if (!(Math.Abs(actual - expected) <= 1e-5 + 32 * eps32 * Math.Abs(expected)))
            throw new InvalidOperationException($"{Id}: {element} is {actual}, reference {expected:R}; the result is wrong, not timing it.");
    }
}

public sealed class ConvCase : OneDnnCase
{
    private readonly Conv2dGeometry _g;
    private readonly ConvPass _pass;
    private readonly float[] _x, _w, _dy, _out, _bias;
    private readonly ulong _weightKey;

    public ConvCase(string shapeId, string label, Conv2dGeometry g, ConvPass pass)
    {
        (_g, _pass) = (g, pass);
        Id = $"{shapeId}.{Name(pass)}";
        Label = $"{label} {Name(pass)}";
        var rng = new Random(Id.GetHashCode());
        _x = pass == ConvPass.BwdData ? [] : Random01(rng, g.SrcLength);
        _w = pass == ConvPass.BwdWeights ? [] : Random01(rng, g.WeightLength);
        _dy = pass == ConvPass.Fwd ? [] : Random01(rng, g.DstLength);
        _out = new float[pass switch { ConvPass.Fwd => g.DstLength, ConvPass.BwdData => g.SrcLength, _ => g.WeightLength }];
        _bias = new float[g.COut];
        _weightKey = (ulong)Math.Abs((long)Id.GetHashCode()) + 1;
    }

    public override string Id { get; }
    public override string Label { get; }
    public override double Flops => _g.Flops;

    private static string Name(ConvPass p) => p switch { ConvPass.Fwd => "fwd", ConvPass.BwdData => "bwd_data", _ => "bwd_weights" };

    public override void Run()
    {
        switch (_pass)
        {
            case ConvPass.Fwd: OneDnn.Conv2dForward(_g, _x, _w, ReadOnlySpan<float>.Empty, _out, _weightKey, 1); break;
            case ConvPass.BwdData: OneDnn.Conv2dBackwardData(_g, _dy, _w, _out, _weightKey, 1); break;
            default: OneDnn.Conv2dBackwardWeights(_g, _x, _dy, _out, _bias); break;
        }
    }

    public override void Validate(int samples, Random rng)
    {
        Array.Fill(_out, float.NaN);
        Array.Fill(_bias, float.NaN);
        Run();
        CheckAllWritten("output", _out);
        if (_pass == ConvPass.BwdWeights) CheckAllWritten("bias gradient", _bias);
        for (var s = 0; s < samples; s++)
            switch (_pass)
            {
                case ConvPass.Fwd:
                {
                    int n = rng.Next(_g.N), c = rng.Next(_g.COut), y = rng.Next(_g.OutH), x = rng.Next(_g.OutW);
                    Check($"y[{n},{c},{y},{x}]", _out[ConvolutionReference.Dst(_g, n, c, y, x)],
                          ConvolutionReference.ForwardAt<float>(_g, _x, _w, [], n, c, y, x));
                    break;
                }
                case ConvPass.BwdData:
                {
                    int n = rng.Next(_g.N), c = rng.Next(_g.CIn), y = rng.Next(_g.H), x = rng.Next(_g.W);
                    Check($"dx[{n},{c},{y},{x}]", _out[ConvolutionReference.Src(_g, n, c, y, x)],
                          ConvolutionReference.BackwardDataAt<float>(_g, _dy, _w, n, c, y, x));
                    break;
                }
                default:
                {
                    int o = rng.Next(_g.COut), c = rng.Next(_g.CInPerGroup), ky = rng.Next(_g.KernelH), kx = rng.Next(_g.KernelW);
                    Check($"dw[{o},{c},{ky},{kx}]", _out[ConvolutionReference.Weight(_g, o, c, ky, kx)],
                          ConvolutionReference.BackwardWeightsAt<float>(_g, _x, _dy, o, c, ky, kx));
                    Check($"db[{o}]", _bias[o], ConvolutionReference.BiasGradAt<float>(_g, _dy, o));
                    break;
                }
            }
    }
}

public sealed class MatmulCase : OneDnnCase
{
    private readonly MatmulGeometry _g;
    private readonly float[] _a, _b, _c;

    public MatmulCase(string id, string label, MatmulGeometry g)
    {
        (Id, Label, _g) = (id, label, g);
        var rng = new Random(id.GetHashCode());
        _a = Random01(rng, g.ExtentA);
        _b = Random01(rng, g.ExtentB);
        _c = new float[g.ExtentC];
    }

    public override string Id { get; }
    public override string Label { get; }
    public override double Flops => _g.Flops;

    public override void Run() => OneDnn.Matmul(_g, _a, _b, _c);

    public override void Validate(int samples, Random rng)
    {
        Array.Fill(_c, float.NaN);
        Run();
        CheckAllWritten("C", _c);
        for (var s = 0; s < samples; s++)
        {
            int i = rng.Next(_g.M), j = rng.Next(_g.N);
            Check($"C[{i},{j}]", _c[_g.IndexC(0, i, j)], MatmulReference.ForwardAt<float>(_g, _a, _b, 0, i, j));
        }
    }
}
