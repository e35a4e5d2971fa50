// The shape and memory layout of a batched matrix product C[b] = op(A[b]) @ op(B[b]), b < Batch,
// op(A) (M, K), op(B) (K, N), C (M, N), all row-major:
//   A stored (M, K) with row pitch Lda >= K, or when TransA (K, M) with Lda >= M;
//   B stored (K, N) with Ldb >= N, or when TransB (N, K) with Ldb >= K;
//   C stored (M, N) with Ldc >= N;  BatchStrideX elements between consecutive matrices, 0 = one
//   matrix broadcast to every batch entry (A and B only).
// Shared by OneDnn.Matmul and MatmulReference; construction validates and states the fix.
namespace Engine.Native;

public sealed record MatmulGeometry
{
    public int Batch { get; }
    public int M { get; }
    public int N { get; }
    public int K { get; }
    public bool TransA { get; }
    public bool TransB { get; }
    public long Lda { get; }
    public long Ldb { get; }
    public long Ldc { get; }
    public long BatchStrideA { get; }
    public long BatchStrideB { get; }
    public long BatchStrideC { get; }

    public MatmulGeometry(int batch, int m, int n, int k, bool transA, bool transB, long lda, long ldb, long ldc,
                          long batchStrideA, long batchStrideB, long batchStrideC)
    {
        (Batch, M, N, K, TransA, TransB) = (batch, m, n, k, transA, transB);
        (Lda, Ldb, Ldc, BatchStrideA, BatchStrideB, BatchStrideC) = (lda, ldb, ldc, batchStrideA, batchStrideB, batchStrideC);
        if (batch < 0 || m < 0 || n < 0 || k < 0) Fail("Batch, M, N and K must be >= 0");
        if (lda < Math.Max(StoredColsA, 1)) Fail(TransA ? "Lda must be >= M (A is stored K x M)" : "Lda must be >= K (A is stored M x K)");
        if (ldb < Math.Max(StoredColsB, 1)) Fail(TransB ? "Ldb must be >= K (B is stored N x K)" : "Ldb must be >= N (B is stored K x N)");
        if (ldc < Math.Max(n, 1)) Fail("Ldc must be >= N");
        if (batchStrideA < 0 || batchStrideB < 0) Fail("batch strides must be >= 0 (0 broadcasts one matrix)");
        if (batch > 1 && m > 0 && n > 0 && batchStrideC < (long)(m - 1) * ldc + n)
            Fail("BatchStrideC must be >= (M-1)*Ldc + N: output matrices may not overlap");
    }

    /// <summary>Densely packed operands: A (Batch, M, K) or (Batch, K, M) when transposed, likewise B;
    /// a broadcast operand is a single matrix. Example: Contiguous(2, 3, 4, 5) has Lda 5, Ldb 4, Ldc 4,
    /// batch strides 15, 20, 12.</summary>
    public static MatmulGeometry Contiguous(int batch, int m, int n, int k, bool transA = false, bool transB = false,
                                            bool broadcastA = false, bool broadcastB = false)
    {
        long lda = transA ? m : k, ldb = transB ? k : n;
        return new MatmulGeometry(batch, m, n, k, transA, transB, Math.Max(lda, 1), Math.Max(ldb, 1), Math.Max(n, 1),
                                  broadcastA ? 0 : (long)m * k, broadcastB ? 0 : (long)k * n, (long)m * n);
    }

    private int StoredRowsA => TransA ? K : M;
    private int StoredColsA => TransA ? M : K;
    private int StoredRowsB => TransB ? N : K;
    private int StoredColsB => TransB ? K : N;

    /// <summary>Elements of A, B, C the call touches: the buffers must be at least this long.</summary>
    public long ExtentA => Extent(BatchStrideA, StoredRowsA, StoredColsA, Lda);
    public long ExtentB => Extent(BatchStrideB, StoredRowsB, StoredColsB, Ldb);
    public long ExtentC => Extent(BatchStrideC, M, N, Ldc);

    public double Flops => 2.0 * Batch * M * N * K;

    /// <summary>Storage index of op(A)[b, i, p] (i < M, p < K).</summary>
    public long IndexA(int b, int i, int p) => b * BatchStrideA + (TransA ? p * Lda + i : i * Lda + p);
    /// <summary>Storage index of op(B)[b, p, j] (p < K, j < N).</summary>
    public long IndexB(int b, int p, int j) => b * BatchStrideB + (TransB ? j * Ldb + p : p * Ldb + j);
    /// <summary>Storage index of C[b, i, j].</summary>
    public long IndexC(int b, int i, int j) => b * BatchStrideC + i * Ldc + j;

    private long Extent(long batchStride, int rows, int cols, long ld)
    {
        if (Batch == 0 || rows == 0 || cols == 0) return 0;
        return (Batch - 1) * batchStride + (rows - 1) * ld + cols;
    }

    public EngineMatmulDesc ToNative() => new()
    {
        Batch = Batch, M = M, N = N, K = K, TransA = TransA ? 1 : 0, TransB = TransB ? 1 : 0,
        Lda = Lda, Ldb = Ldb, Ldc = Ldc, BatchStrideA = BatchStrideA, BatchStrideB = BatchStrideB, BatchStrideC = BatchStrideC,
    };

    public override string ToString() =>
        $"matmul batch {Batch}, op(A) ({M}, {K}){(TransA ? " transposed" : "")}, op(B) ({K}, {N}){(TransB ? " transposed" : "")}, " +
        $"lda {Lda}, ldb {Ldb}, ldc {Ldc}, batch strides {BatchStrideA}/{BatchStrideB}/{BatchStrideC}";

    private void Fail(string what) =>
        throw new ArgumentException($"MatmulGeometry: {what} ({this}).");
}
