// Streaming reader of a results JSON file (a top-level array of detection records) into the columns
// of LvisResults. Each record is read field by field from a pooled byte window; boxes go straight
// into their column, so reading allocates nothing per detection unless segmentations are kept.
using System.Runtime.CompilerServices;
using System.Text.Json;
using Engine.Lvis.Json;

namespace Engine.Lvis;

public sealed record ResultsReadOptions
{
    /// <summary>Keep segmentations. Off: "segmentation" values are skipped (bbox evaluation).</summary>
    public bool ReadSegmentation { get; init; } = true;

    /// <summary>When set, only records for which it returns true keep their segmentation (imageId, categoryId);
    /// the others are skipped, which bounds memory when most detections will be filtered out anyway.</summary>
    public Func<long, int, bool>? KeepSegmentation { get; init; }

    /// <summary>Receives the number of bytes read so far.</summary>
    public IProgress<long>? Progress { get; init; }
}

public static class LvisResultsReader
{
    /// <summary>Files smaller than this are read on one thread.</summary>
    private const long ParallelThreshold = 32L << 20;

    public static LvisResults Read(string path, ResultsReadOptions? options = null) => Read(path, options, ParallelThreshold, Environment.ProcessorCount);

    /// <summary>As the public overload; files of at least <paramref name="parallelThreshold"/> bytes are read in up
    /// to <paramref name="maxPieces"/> pieces of at least half that size on separate threads.</summary>
    internal static LvisResults Read(string path, ResultsReadOptions? options, long parallelThreshold, int maxPieces)
    {
        options ??= new ResultsReadOptions();
        long length;
        int pieces;
        using (var stream = LvisDatasetReader.OpenRead(path))
        {
            length = stream.Length;
            pieces = (int)Math.Min(maxPieces, length / Math.Max(1, parallelThreshold / 2));
            if (length < parallelThreshold || pieces < 2)
                return Read(stream, path, options, EstimateCapacity(length));
        }
        return ReadParallel(path, length, options, pieces) ?? ReadSequential(path, options, length);
    }

    private static LvisResults ReadSequential(string path, ResultsReadOptions options, long length)
    {
        using var stream = LvisDatasetReader.OpenRead(path);
        return Read(stream, path, options, EstimateCapacity(length));
    }

    /// <summary>About 80-140 bytes per box-only record: start near the final size to avoid most regrowth.</summary>
    private static int EstimateCapacity(long bytes) => (int)Math.Clamp(bytes / 140, 1024, 1 << 24);

    public static LvisResults Read(Stream stream, string sourceName, ResultsReadOptions? options = null, int capacity = 1024) =>
        Read(stream, sourceName, options, capacity, JsonByteSource.DefaultSize);

    internal static LvisResults Read(Stream stream, string sourceName, ResultsReadOptions? options, int capacity, int bufferSize)
    {
        options ??= new ResultsReadOptions();
        using var source = new JsonByteSource(stream, sourceName, options.Progress, bufferSize);
        try
        {
            var results = new LvisResults(capacity, options.ReadSegmentation);
            var c = new JsonCursor(source);
            if (c.IsEmptyDocument || !c.Read())
                throw new LvisFormatException($"{sourceName}: the file is empty (a results file is a JSON array of detections)");
            if (c.TokenType != JsonTokenType.StartArray)
                throw c.Error($"a results file is a JSON array of {{image_id, category_id, bbox, score}} records, but it starts with {JsonCursor.Describe(c.TokenType)}");
            ReadRecords(ref c, results, options, long.MaxValue);
            return results;
        }
        catch (JsonException e)
        {
            throw JsonErrors.Malformed(sourceName, e);
        }
    }

    /// <summary>Reads records up to the end of the array (then requires the end of the document) or, when
    /// <paramref name="stopAt"/> is finite, until the record starting at that byte offset. Returns false when
    /// a record straddles <paramref name="stopAt"/> or the array ends before it: the offset was not a record
    /// boundary.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool ReadRecords(ref JsonCursor c, LvisResults results, ResultsReadOptions options, long stopAt)
    {
        var numbers = new List<double>();
        while (true)
        {
            c.ReadRequired("the results array");
            if (c.TokenType == JsonTokenType.EndArray)
            {
                if (stopAt != long.MaxValue)
                    return false;
                if (c.Read())
                    throw c.Error("unexpected content after the results array");
                return true;
            }
            c.Expect(JsonTokenType.StartObject, "a result record");
            if (c.Position >= stopAt)
                return c.Position == stopAt;
            ReadRecord(ref c, results, options, numbers);
        }
    }

    /// <summary>Splits the file at record boundaries and reads the pieces on all cores. A boundary is guessed
    /// by looking for "}" "," "{" (the separator of two records; "{" occurs inside a record only after ":" and
    /// never inside an RLE string) and then proven: the piece before it, read from a proven start, must end
    /// exactly there. Returns null when a guess fails or a piece has an error; the caller then reads the file
    /// on one thread, which also reports any error with its true line number.</summary>
    private static LvisResults? ReadParallel(string path, long length, ResultsReadOptions options, int pieces)
    {
        var bounds = new List<long> { 0 };
        for (int p = 1; p < pieces; p++)
        {
            long b = FindRecordStart(path, length * p / pieces);
            if (b > bounds[^1] && b < length)
                bounds.Add(b);
        }
        bounds.Add(length);
        int n = bounds.Count - 1;
        if (n < 2)
            return null;
        var parts = new LvisResults?[n];
        long bytesRead = 0;
        var progress = options.Progress;
        Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = n }, p =>
        {
            long last = 0;
            var pieceProgress = progress is null ? null : new SyncProgress(b =>
            {
                long total = Interlocked.Add(ref bytesRead, b - last);
                last = b;
                progress.Report(Math.Min(total, length));
            });
            try
            {
                using var stream = LvisDatasetReader.OpenRead(path);
                stream.Position = bounds[p];
                using var source = new JsonByteSource(stream, path, pieceProgress, prefix: p == 0 ? default : "["u8, startOffset: p == 0 ? 0 : bounds[p] - 1);
                var results = new LvisResults(EstimateCapacity(bounds[p + 1] - bounds[p]), options.ReadSegmentation);
                var c = new JsonCursor(source);
                if (!c.Read() || c.TokenType != JsonTokenType.StartArray)
                    return;
                if (ReadRecords(ref c, results, options, p == n - 1 ? long.MaxValue : bounds[p + 1]))
                    parts[p] = results;
            }
            catch (Exception e) when (e is JsonException or FormatException)
            {
                // Left null: the sequential read reports it properly.
            }
        });
        return parts.All(r => r is not null) ? LvisResults.Concat(parts!) : null;
    }

    /// <summary>Offset of the first "{" at or after <paramref name="from"/> that follows "}" "," (whitespace
    /// allowed between), or -1.</summary>
    private static long FindRecordStart(string path, long from)
    {
        using var stream = LvisDatasetReader.OpenRead(path);
        stream.Position = from;
        var buffer = new byte[1 << 20];
        int n = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        var span = buffer.AsSpan(0, n);
        for (int i = span.IndexOf((byte)'}'); i >= 0 && i < n;)
        {
            int j = i + 1;
            while (j < n && IsSpace(span[j]))
                j++;
            if (j < n && span[j] == (byte)',')
            {
                j++;
                while (j < n && IsSpace(span[j]))
                    j++;
                if (j < n && span[j] == (byte)'{')
                    return from + j;
            }
            int next = span[(i + 1)..].IndexOf((byte)'}');
            i = next < 0 ? -1 : i + 1 + next;
        }
        return -1;
    }

    private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t';

    private sealed class SyncProgress(Action<long> action) : IProgress<long>
    {
        public void Report(long value) => action(value);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ReadRecord(ref JsonCursor c, LvisResults results, ResultsReadOptions options, List<double> numbers)
    {
        long start = c.Position;
        int i = results.Reserve();
        long imageId = 0;
        int categoryId = 0;
        double score = double.NaN;
        bool hasImage = false, hasCategory = false, hasBox = false;
        LvisSegmentation? segmentation = null;
        while (true)
        {
            c.ReadRequired("a result record");
            if (c.TokenType == JsonTokenType.EndObject)
                break;
            if (c.NameIs("image_id"u8))
            {
                imageId = c.ReadInt64("image_id");
                hasImage = true;
            }
            else if (c.NameIs("category_id"u8))
            {
                long v = c.ReadInt64("category_id");
                if (v is < int.MinValue or > int.MaxValue)
                    throw c.Error($"category_id {v} does not fit in 32 bits");
                categoryId = (int)v;
                hasCategory = true;
            }
            else if (c.NameIs("score"u8))
            {
                score = c.ReadDouble("score");
            }
            else if (c.NameIs("bbox"u8))
            {
                c.ReadRequired("bbox");
                c.Expect(JsonTokenType.StartArray, "bbox");
                var slot = results.BoxSlot(i);
                int n = 0;
                while (true)
                {
                    c.ReadRequired("bbox");
                    if (c.TokenType == JsonTokenType.EndArray)
                        break;
                    double v = c.CurrentDouble("a bbox coordinate");
                    if (n < 4)
                        slot[n] = v;
                    n++;
                }
                if (n != 4)
                    throw c.Error($"result #{i} has a bbox of {n} numbers, expected [x, y, width, height]");
                hasBox = true;
            }
            else if (c.NameIs("segmentation"u8) && options.ReadSegmentation)
            {
                segmentation = SegmentationReader.Read(ref c, "segmentation", numbers);
            }
            else c.SkipValue();
        }
        if (!hasImage || !hasCategory || double.IsNaN(score))
        {
            string field = !hasImage ? "image_id" : !hasCategory ? "category_id" : "score";
            throw c.ErrorAt(start, $"result #{i} has no \"{field}\"");
        }
        if (segmentation is not null && options.KeepSegmentation is { } keep && !keep(imageId, categoryId))
            segmentation = null;
        results.Set(i, imageId, categoryId, score, hasBox, segmentation);
    }
}
