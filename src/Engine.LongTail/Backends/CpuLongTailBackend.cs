// CPU implementation of the long-tail primitives. Rows are processed in fixed chunks of RowsPerChunk rows
// (in parallel when there is enough work); inside a row the work is TensorPrimitives calls on contiguous
// runs, so the per-element math is vectorized. Reductions across rows (gradient statistics, logit moments)
// are accumulated per chunk and merged in chunk order, so a result does not depend on the thread count or
// on scheduling: the same inputs give bit-identical state on every run.
using System.Buffers;

namespace Engine.LongTail;

public sealed unsafe partial class CpuLongTailBackend : ILongTailBackend
{
    /// <summary>Rows per unit of work; fixed (not derived from the core count) so that merged sums are reproducible.</summary>
    internal const int RowsPerChunk = 32;

    /// <summary>Below this many elements a kernel runs on the calling thread.</summary>
    private const long ParallelThreshold = 1 << 15;

    /// <summary>Most threads a kernel uses (1 runs everything on the calling thread, e.g. to time one core).</summary>
    internal static int MaxThreads { get; set; } = Environment.ProcessorCount;

    public Device Device => Device.Cpu;

    private static int ChunkCount(int rows) => (rows + RowsPerChunk - 1) / RowsPerChunk;

    /// <summary>Throws for the first label below 0 or above <paramref name="max"/> (max &lt; 0: no upper bound), in the
    /// words and ranges of the CUDA backend's error record, before any output is written.</summary>
    private static void CheckLabels(string op, long* labels, int rows, long max)
    {
        for (var i = 0; i < rows; i++)
            if (labels[i] < 0 || (max >= 0 && labels[i] > max))
                throw new ArgumentException($"{op}: label {labels[i]} at row {i} {(max >= 0 ? $"is outside 0..{max}" : "is negative")}; labels are " +
                                            "class indices with the background as the last class. Check the label mapping.");
    }

    /// <summary>Runs body(chunk, firstRow, endRow) for every chunk of rows.</summary>
    private static void ForEachChunk(int rows, long costPerRow, Action<int, int, int> body)
    {
        var chunks = ChunkCount(rows);
        void Run(int c) => body(c, c * RowsPerChunk, Math.Min(rows, (c + 1) * RowsPerChunk));
        if (chunks <= 1 || MaxThreads <= 1 || rows * Math.Max(costPerRow, 1) < ParallelThreshold)
        {
            for (var c = 0; c < chunks; c++) Run(c);
            return;
        }
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = MaxThreads }, Run);
    }

    /// <summary>A scratch row of at least <paramref name="length"/> floats from the shared pool.</summary>
    private static float[] Rent(int length) => ArrayPool<float>.Shared.Rent(Math.Max(length, 1));

    private static void Return(float[] a) => ArrayPool<float>.Shared.Return(a);
}
