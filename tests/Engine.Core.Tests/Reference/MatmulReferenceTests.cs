// Tests of src/Engine.Core/Reference/MatmulReference.cs: a hand-worked product, and the reference
// backward (into A's and B's own storage, broadcast operands summed) against central finite differences.
using Engine.Native;
using Engine.Reference;
using Engine.Tests.Native;

namespace Engine.Tests.Reference;

public class MatmulReferenceTests
{
    [Fact]
    public void ForwardMatchesHandWorkedExample()
    {
        var g = MatmulGeometry.Contiguous(1, 2, 2, 2);
        Assert.Equal([19.0, 22, 43, 50], MatmulReference.Forward(g, [1, 2, 3, 4], [5, 6, 7, 8]));
        // Same product with A stored transposed: storage [[1, 3], [2, 4]].
        g = MatmulGeometry.Contiguous(1, 2, 2, 2, transA: true);
        Assert.Equal([19.0, 22, 43, 50], MatmulReference.Forward(g, [1, 3, 2, 4], [5, 6, 7, 8]));
    }

    [Fact]
    public void BackwardMatchesFiniteDifferences()
    {
        var seed = NativeTestData.NewSeed();
        var rng = new Random(seed);
        foreach (var g in NativeTestData.MatmulCases().Where(c => c.Flops < 20_000))
        {
            var a = NativeTestData.Uniform(rng, g.ExtentA);
            var b = NativeTestData.Uniform(rng, g.ExtentB);
            var r = NativeTestData.Uniform(rng, g.ExtentC);   // L = Σ r·C over the written elements

            double Loss()
            {
                var c = MatmulReference.Forward(g, a, b);
                var sum = 0.0;
                for (var n = 0; n < g.Batch; n++)
                    for (var i = 0; i < g.M; i++)
                        for (var j = 0; j < g.N; j++)
                            sum += r[g.IndexC(n, i, j)] * c[g.IndexC(n, i, j)];
                return sum;
            }

            var (da, db) = MatmulReference.Backward(g, a, b, r);
            ConvolutionReferenceTests.CheckAgainstFiniteDifferences($"dA {g}", a, da, Loss, seed);
            ConvolutionReferenceTests.CheckAgainstFiniteDifferences($"dB {g}", b, db, Loss, seed);
        }
    }
}
