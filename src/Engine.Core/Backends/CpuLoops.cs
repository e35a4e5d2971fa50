// Strided iteration for CPU kernels. The shape is collapsed (size-1 dims dropped, dims merged where every
// operand is contiguous across them), then split into rows of the innermost dimension; each row (or piece
// of a long row) is one unit of work, run in parallel when the total is large enough to pay for it.
namespace Engine;

internal delegate void RowBody(ReadOnlySpan<long> offsets, ReadOnlySpan<long> innerStrides, int length);

internal static class CpuLoops
{
    /// <summary>Below this many elements a loop runs on the calling thread.</summary>
    public const long ParallelThreshold = 1 << 15;

    private const int Piece = 1 << 14;

    /// <summary>Calls <paramref name="body"/> with each operand's element offset at the start of a run of
    /// <c>length</c> innermost elements and each operand's stride along that run.</summary>
    public static void ForEachRow(ReadOnlySpan<int> shape, long[][] strides, long[] baseOffsets, RowBody body)
    {
        var ops = strides.Length;
        var dims = new List<int>();
        var st = new List<long[]>();
        for (var d = 0; d < shape.Length; d++)
        {
            if (shape[d] == 1) continue;
            if (shape[d] == 0) return;
            if (dims.Count > 0)
            {
                var last = dims.Count - 1;
                var merge = true;
                for (var k = 0; k < ops; k++)
                    if (st[last][k] != strides[k][d] * shape[d]) { merge = false; break; }
                if (merge)
                {
                    dims[last] *= shape[d];
                    for (var k = 0; k < ops; k++) st[last][k] = strides[k][d];
                    continue;
                }
            }
            dims.Add(shape[d]);
            var s = new long[ops];
            for (var k = 0; k < ops; k++) s[k] = strides[k][d];
            st.Add(s);
        }

        if (dims.Count == 0)
        {
            body(baseOffsets, new long[ops], 1);
            return;
        }

        var rowLen = dims[^1];
        var inner = st[^1];
        var outer = dims.Count - 1;
        long rows = 1;
        for (var i = 0; i < outer; i++) rows *= dims[i];
        var pieces = rowLen > Piece ? (rowLen + Piece - 1) / Piece : 1;
        var pieceLen = pieces == 1 ? rowLen : Piece;
        var units = rows * pieces;

        void Unit(long u, Span<long> offsets)
        {
            var row = u / pieces;
            var piece = (int)(u % pieces);
            for (var k = 0; k < ops; k++) offsets[k] = baseOffsets[k];
            var r = row;
            for (var i = outer - 1; i >= 0; i--)
            {
                var idx = r % dims[i];
                r /= dims[i];
                for (var k = 0; k < ops; k++) offsets[k] += idx * st[i][k];
            }
            var start = piece * pieceLen;
            for (var k = 0; k < ops; k++) offsets[k] += start * inner[k];
            body(offsets, inner, Math.Min(pieceLen, rowLen - start));
        }

        if (rows * rowLen < ParallelThreshold || units == 1)
        {
            Span<long> offsets = stackalloc long[ops];
            for (long u = 0; u < units; u++) Unit(u, offsets);
            return;
        }
        ParallelRange(units, (from, to) =>
        {
            Span<long> offsets = stackalloc long[ops];
            for (var u = from; u < to; u++) Unit(u, offsets);
        });
    }

    /// <summary>Splits [0, count) into contiguous ranges, about four per core, and runs them in parallel.</summary>
    public static void ParallelRange(long count, Action<long, long> body)
    {
        if (count <= 0) return;
        var chunks = (int)Math.Min(count, Environment.ProcessorCount * 4L);
        if (chunks <= 1)
        {
            body(0, count);
            return;
        }
        Parallel.For(0, chunks, c => body(count * c / chunks, count * (c + 1) / chunks));
    }

    /// <summary>Runs body(i) for i in [0, count), in parallel when count × costPerItem is large.</summary>
    public static void For(long count, long costPerItem, Action<long> body)
    {
        if (count * Math.Max(costPerItem, 1) < ParallelThreshold || count < 2)
        {
            for (long i = 0; i < count; i++) body(i);
            return;
        }
        ParallelRange(count, (from, to) =>
        {
            for (var i = from; i < to; i++) body(i);
        });
    }
}
