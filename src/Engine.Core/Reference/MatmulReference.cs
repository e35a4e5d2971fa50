// Plain batched matrix product, written from the definition with double accumulation, for tests,
// selftest and benchmark validation only. Storage as in MatmulGeometry (row-major, leading dimensions,
// transposes, batch stride 0 = broadcast):
//   C[b,i,j] = Σ_p op(A)[b,i,p] · op(B)[b,p,j]
// and for an upstream gradient dC the adjoints, written back into A's and B's own storage:
//   dop(A)[b,i,p] = Σ_j dC[b,i,j] · op(B)[b,p,j]        dop(B)[b,p,j] = Σ_i op(A)[b,i,p] · dC[b,i,j]
// A broadcast operand is one matrix used by every batch entry, so its gradient is the sum over b.
using System.Numerics;
using Engine.Native;

namespace Engine.Reference;

public static class MatmulReference
{
    public static double ForwardAt<T>(MatmulGeometry g, ReadOnlySpan<T> a, ReadOnlySpan<T> b, int batch, int i, int j)
        where T : INumberBase<T>
    {
        var sum = 0.0;
        for (var p = 0; p < g.K; p++)
            sum += double.CreateTruncating(a[(int)g.IndexA(batch, i, p)]) * double.CreateTruncating(b[(int)g.IndexB(batch, p, j)]);
        return sum;
    }

    /// <summary>C in the storage of <paramref name="g"/> (length ExtentC; elements between rows stay 0).
    /// Example: A = [[1, 2], [3, 4]], B = [[5, 6], [7, 8]] gives C = [[19, 22], [43, 50]].</summary>
    public static double[] Forward(MatmulGeometry g, double[] a, double[] b)
    {
        CheckLengths(g, a.Length, b.Length);
        var c = new double[g.ExtentC];
        for (var n = 0; n < g.Batch; n++)
            for (var i = 0; i < g.M; i++)
                for (var j = 0; j < g.N; j++)
                    c[g.IndexC(n, i, j)] = ForwardAt<double>(g, a, b, n, i, j);
        return c;
    }

    /// <summary>(dA, dB) in the storage of A and B (lengths ExtentA, ExtentB) for upstream gradient dC.</summary>
    public static (double[] DA, double[] DB) Backward(MatmulGeometry g, double[] a, double[] b, double[] dc)
    {
        CheckLengths(g, a.Length, b.Length);
        if (dc.Length < g.ExtentC)
            throw new ArgumentException($"MatmulReference: dC has {dc.Length} elements, the geometry needs {g.ExtentC} ({g}).");
        var da = new double[g.ExtentA];
        var db = new double[g.ExtentB];
        for (var n = 0; n < g.Batch; n++)
        {
            for (var i = 0; i < g.M; i++)
                for (var p = 0; p < g.K; p++)
                {
                    var sum = 0.0;
                    for (var j = 0; j < g.N; j++) sum += dc[g.IndexC(n, i, j)] * b[g.IndexB(n, p, j)];
                    da[g.IndexA(n, i, p)] += sum;   // += : a broadcast A collects every batch entry
                }
            for (var p = 0; p < g.K; p++)
                for (var j = 0; j < g.N; j++)
                {
                    var sum = 0.0;
                    for (var i = 0; i < g.M; i++) sum += a[g.IndexA(n, i, p)] * dc[g.IndexC(n, i, j)];
                    db[g.IndexB(n, p, j)] += sum;
                }
        }
        return (da, db);
    }

    private static void CheckLengths(MatmulGeometry g, int a, int b)
    {
        if (a < g.ExtentA || b < g.ExtentB)
            throw new ArgumentException($"MatmulReference: A has {a} and B has {b} elements, the geometry needs {g.ExtentA} and {g.ExtentB} ({g}).");
    }
}
