// Tests of OneDnn.Matmul (native/matmul.cpp) against MatmulReference: transposes, padded leading
// dimensions, gapped batch strides, broadcast operands, empty shapes; outputs poisoned with NaN,
// elements between rows of C left untouched; errors that name the call and the layout.
using Engine.Native;
using Engine.Reference;
using static Engine.Tests.Native.NativeTestData;

namespace Engine.Tests.Native;

[Collection("OneDnn")]
public class OneDnnMatmulTests
{
    [Fact]
    public void MatchesReference()
    {
        var seed = NewSeed();
        var rng = new Random(seed);
        foreach (var g in MatmulCases())
        {
            var a = ToFloat(Uniform(rng, g.ExtentA));
            var b = ToFloat(Uniform(rng, g.ExtentB));
            var (ad, bd) = (ToDouble(a), ToDouble(b));
            for (var repeat = 0; repeat < 2; repeat++)
            {
                var c = Poisoned(g.ExtentC);
                OneDnn.Matmul(g, a, b, c);
                var expected = MatmulReference.Forward(g, ad, bd);
                var magnitude = MatmulReference.Forward(g, Abs(ad), Abs(bd));
                var written = new bool[c.Length];
                for (var n = 0; n < g.Batch; n++)
                    for (var i = 0; i < g.M; i++)
                        for (var j = 0; j < g.N; j++)
                            written[g.IndexC(n, i, j)] = true;
                // Compare the product elements; the gaps between rows must still hold the poison.
                var actual = c.Select((v, i) => written[i] ? v : 0f).ToArray();
                AssertClose($"{g}", actual, expected, magnitude, seed);
                for (var i = 0; i < c.Length; i++)
                    if (!written[i]) Assert.True(float.IsNaN(c[i]), $"{g}: element {i} between rows was written (seed {seed})");
            }
        }
    }

    [Fact]
    public void BackwardProductsMatchReferenceBackward()
    {
        // The tensor layer forms dA = dC @ B^T and dB = A^T @ dC from the same call; check those
        // products against the reference backward on a batched case with a broadcast B (a linear layer).
        var seed = NewSeed();
        var rng = new Random(seed);
        const int batch = 3, m = 7, n = 5, k = 9;
        var g = MatmulGeometry.Contiguous(batch, m, n, k, transB: true, broadcastB: true);   // C = A @ W^T, W (n, k)
        var a = ToFloat(Uniform(rng, g.ExtentA));
        var w = ToFloat(Uniform(rng, g.ExtentB));
        var dc = ToFloat(Uniform(rng, g.ExtentC));
        var (da, dw) = MatmulReference.Backward(g, ToDouble(a), ToDouble(w), ToDouble(dc));
        var (daAbs, dwAbs) = MatmulReference.Backward(g, Abs(ToDouble(a)), Abs(ToDouble(w)), Abs(ToDouble(dc)));

        var daGot = Poisoned(g.ExtentA);
        OneDnn.Matmul(MatmulGeometry.Contiguous(batch, m, k, n, broadcastB: true), dc, w, daGot);   // dA = dC @ W
        AssertClose("dA = dC @ W", daGot, da, daAbs, seed);

        // dW = Σ_b dC[b]^T @ A[b] = dC^T @ A with the batch folded into the reduction (rows of A and dC).
        var dwGot = Poisoned(g.ExtentB);
        OneDnn.Matmul(MatmulGeometry.Contiguous(1, n, k, batch * m, transA: true), dc, a, dwGot);
        AssertClose("dW = dC^T @ A", dwGot, dw, dwAbs, seed);
    }

    [Fact]
    public void EmptyShapes()
    {
        OneDnn.Matmul(MatmulGeometry.Contiguous(0, 3, 4, 5), [], [], []);
        OneDnn.Matmul(MatmulGeometry.Contiguous(2, 0, 4, 5), [], new float[40], []);
        var c = Poisoned(2 * 3 * 4);
        OneDnn.Matmul(MatmulGeometry.Contiguous(2, 3, 4, 0), [], [], c);   // empty sums: every element 0
        Assert.All(c, v => Assert.Equal(0f, v));
    }

    [Fact]
    public unsafe void ErrorsNameTheCallAndTheLayout()
    {
        var e = Assert.Throws<ArgumentException>(() => new MatmulGeometry(1, 4, 5, 6, false, false, 5, 5, 5, 24, 30, 20));
        Assert.Contains("Lda must be >= K", e.Message);
        Assert.Contains("op(A) (4, 6)", e.Message);

        var g = MatmulGeometry.Contiguous(2, 3, 4, 5);
        e = Assert.Throws<ArgumentException>(() => OneDnn.Matmul(g, new float[29], new float[40], new float[24]));
        Assert.Contains("OneDnn.Matmul: A has 29 elements", e.Message);

        var desc = g.ToNative();
        desc.Ldc = 2;
        var buffer = new float[100];
        fixed (float* p = buffer)
        {
            var status = EngineNative.engine_matmul(&desc, p, p, p);
            var ex = Assert.Throws<EngineNativeException>(() => EngineNative.Check(status, "engine_matmul"));
            Assert.StartsWith("engine_matmul: ldc must be >= n", ex.Message);
            Assert.Contains("m=3 n=4 k=5", ex.Message);
        }
    }
}
