// The results reader: writer round trip (doubles bit for bit), tiny byte windows, the parallel
// reader against the sequential one (including boundary guesses that land inside a string), the
// segmentation filter, and clear errors for malformed or incomplete records.
using System.Globalization;
using System.Text;
using Engine.Lvis;

namespace Engine.Lvis.Tests;

public class LvisResultsReaderTests
{
    private static string WriteRandom(Random rng, int n, bool withNotes)
    {
        string path = Path.Combine(Path.GetTempPath(), $"results-{Guid.NewGuid():N}.json");
        if (!withNotes)
        {
            using var w = new LvisResultsWriter(path);
            for (int i = 0; i < n; i++)
            {
                LvisSegmentation? seg = rng.Next(3) == 0 ? new CompressedRleSegmentation(10, 12, "0a1[\\\\" + i) : null;
                w.Write(rng.Next(1, 50), rng.Next(1, 1300), [rng.NextDouble() * 600, rng.NextDouble() * 400, (float)rng.NextDouble() * 90, rng.NextDouble() * 90],
                        (float)rng.NextDouble(), seg);
            }
            return path;
        }
        // Records carrying an unknown string field that looks like a record separator.
        var sb = new StringBuilder("[");
        for (int i = 0; i < n; i++)
        {
            if (i > 0)
                sb.Append(i % 2 == 0 ? ",\n" : ",");
            sb.Append($$"""{"note": "x},{y} , {z", "image_id": {{i % 7}}, "category_id": {{i % 5 + 1}}, "bbox": [{{i}}.5, 1, 2, 3], "score": 0.{{i % 97 + 1}}}""");
        }
        sb.Append(']');
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    private static void AssertSame(LvisResults a, LvisResults b)
    {
        Assert.Equal(a.Count, b.Count);
        Assert.True(a.ImageIds.SequenceEqual(b.ImageIds));
        Assert.True(a.CategoryIds.SequenceEqual(b.CategoryIds));
        Assert.True(a.Scores.SequenceEqual(b.Scores));
        Assert.True(a.Boxes.SequenceEqual(b.Boxes));
        Assert.True(a.HasBox.SequenceEqual(b.HasBox));
        for (int i = 0; i < a.Count; i++)
            Assert.Equal(a.Segmentation(i), b.Segmentation(i));
    }

    [Fact]
    public void ParallelReadEqualsSequentialRead()
    {
        int seed = Environment.TickCount;
        var rng = new Random(seed);
        foreach (bool notes in new[] { false, true })
        {
            string path = WriteRandom(rng, 3000 + rng.Next(500), notes);
            try
            {
                var sequential = LvisResultsReader.Read(path, null, long.MaxValue, 1);
                foreach (int pieces in new[] { 2, 3, 7 })
                    AssertSame(sequential, LvisResultsReader.Read(path, null, 4096, pieces));
            }
            finally
            {
                File.Delete(path);
            }
        }
    }

    /// <summary>A results file in assorted legal spellings: whitespace, key order, number forms.</summary>
    private static string WriteVaried(Random rng, int n, string? oddRecord)
    {
        string[] ws = ["", " ", "\n", "\t", "\r\n  "];
        string W() => ws[rng.Next(ws.Length)];
        string Num(double x) => rng.Next(4) switch
        {
            0 => x.ToString("R", CultureInfo.InvariantCulture),
            1 => x.ToString("E10", CultureInfo.InvariantCulture),
            2 => ((float)x).ToString("R", CultureInfo.InvariantCulture) is var f && f.Contains('E') ? x.ToString("R", CultureInfo.InvariantCulture) : ((double)(float)x).ToString("R", CultureInfo.InvariantCulture),
            _ => Math.Round(x, 2).ToString(CultureInfo.InvariantCulture),
        };
        var sb = new StringBuilder(W() + "[" + W());
        for (int i = 0; i < n; i++)
        {
            if (i > 0)
                sb.Append(W() + "," + W());
            if (oddRecord is not null && i == n / 2)
            {
                sb.Append(oddRecord);
                continue;
            }
            var fields = new List<string>
            {
                $"\"image_id\"{W()}:{W()}{rng.Next(0, 100000)}",
                $"\"category_id\"{W()}:{W()}{rng.Next(1, 1300)}",
                $"\"bbox\"{W()}:{W()}[{W()}{Num(rng.NextDouble() * 600)}{W()},{Num(rng.NextDouble() * 400)},{W()}{Num(rng.NextDouble() * 90)},{Num(rng.NextDouble() * 1e-3)}{W()}]",
                $"\"score\":{W()}{Num(rng.NextDouble())}",
            };
            sb.Append('{').Append(W()).AppendJoin("," + W(), fields.OrderBy(_ => rng.Next())).Append(W()).Append('}');
        }
        sb.Append(W() + "]" + W());
        string path = Path.Combine(Path.GetTempPath(), $"results-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    [Theory]
    [InlineData(null)]
    [InlineData("{\"image_id\": 1, \"category_id\": 2, \"bbox\": [0, 0, 1, 1], \"score\": 0.5, \"segmentation\": {\"size\": [2, 2], \"counts\": \"04\"}}")]
    [InlineData("{\"image_id\": 1.0, \"category_id\": 2, \"bbox\": [0, 0, 1, 1], \"score\": 0.5}")]
    [InlineData("{\"image_\\u0069d\": 1, \"category_id\": 2, \"bbox\": [0, 0, 1, 1], \"score\": 0.5}")]
    public void PieceReadsAgreeWithOneStreamOnAnySpelling(string? oddRecord)
    {
        // The path-based reader splits files into pieces at guessed record boundaries; odd records and
        // unusual whitespace must not change what it reads.
        int seed = Environment.TickCount;
        var rng = new Random(seed);
        string path = WriteVaried(rng, 2000 + rng.Next(100), oddRecord);
        try
        {
            LvisResults general;
            using (var stream = File.OpenRead(path))
                general = LvisResultsReader.Read(stream, path, null, 16, 64);
            AssertSame(general, LvisResultsReader.Read(path, null, long.MaxValue, 1));
            AssertSame(general, LvisResultsReader.Read(path, null, 2048, 5));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("[{\"image_id\": 1, \"category_id\": 2, \"bbox\": [0, 0, 1, 1], \"score\": 0.5},]", "malformed JSON at line 1")]
    [InlineData("[{\"image_id\": 1, \"category_id\": 2, \"bbox\": [0, 0, 1, 1], \"score\": 01}]", "malformed JSON at line 1")]
    [InlineData("[{\"image_id\": 1, \"category_id\": 2, \"bbox\": [0, 0, 1, 1], \"score\": 0.5}", "malformed JSON")]
    [InlineData("[{\"image_id\": 1, \"category_id\": 2, \"bbox\": [0, 0, 1, 1]}]", "has no \"score\"")]
    [InlineData("[{\"image_id\": 1, \"category_id\": 2, \"bbox\": [0, 0, 1, 1], \"score\": 0.5}] []", "malformed JSON")]
    public void MalformedFilesReadByPathReportTheReadersError(string json, string expected)
    {
        string path = Path.Combine(Path.GetTempPath(), $"results-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        try
        {
            Assert.Contains(expected, Assert.Throws<LvisFormatException>(() => LvisResultsReader.Read(path)).Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void WriterRoundTripsDoublesExactly()
    {
        int seed = Environment.TickCount;
        var rng = new Random(seed);
        var ms = new MemoryStream();
        var boxes = new List<double[]>();
        var scores = new List<double>();
        using (var w = new LvisResultsWriter(ms))
        {
            for (int i = 0; i < 200; i++)
            {
                double[] box = [rng.NextDouble() * 1000, (float)(rng.NextDouble() * 1000), rng.NextDouble(), 1e-7 * rng.NextDouble()];
                double score = rng.NextDouble();
                w.Write(i, i % 3, box, score);
                boxes.Add(box);
                scores.Add(score);
            }
        }
        ms.Position = 0;
        var r = LvisResultsReader.Read(ms, "r.json", null, 16, 16);
        Assert.Equal(200, r.Count);
        for (int i = 0; i < 200; i++)
        {
            Assert.True(boxes[i].AsSpan().SequenceEqual(r.Boxes.Slice(4 * i, 4)), $"seed {seed}: box {i}");
            Assert.True(scores[i] == r.Scores[i], $"seed {seed}: score {i}");
        }
    }

    [Fact]
    public void SegmentationsAreKeptOnlyWhereAsked()
    {
        string json = """
            [{"image_id": 1, "category_id": 2, "segmentation": {"size": [4, 5], "counts": "abc"}, "score": 0.5},
             {"image_id": 1, "category_id": 3, "bbox": [0, 0, 1, 1], "score": 0.4, "segmentation": {"size": [4, 5], "counts": [1, 2, 17]}}]
            """;
        var all = LvisResultsReader.Read(new MemoryStream(Encoding.UTF8.GetBytes(json)), "r.json");
        Assert.Equal(new CompressedRleSegmentation(4, 5, "abc"), all.Segmentation(0));
        Assert.IsType<UncompressedRleSegmentation>(all.Segmentation(1));
        Assert.False(all.HasBox[0]);
        Assert.True(all.HasBox[1]);
        var some = LvisResultsReader.Read(new MemoryStream(Encoding.UTF8.GetBytes(json)), "r.json", new ResultsReadOptions { KeepSegmentation = (_, c) => c == 3 });
        Assert.Null(some.Segmentation(0));
        Assert.NotNull(some.Segmentation(1));
        var none = LvisResultsReader.Read(new MemoryStream(Encoding.UTF8.GetBytes(json)), "r.json", new ResultsReadOptions { ReadSegmentation = false });
        Assert.False(none.HasSegmentations);
        Assert.Null(none.Segmentation(1));
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("{\"annotations\": []}", "JSON array")]
    [InlineData("[{\"image_id\": 1, \"category_id\": 2, \"bbox\": [0, 0, 1, 1]}]", "has no \"score\"")]
    [InlineData("[{\"image_id\": 1, \"category_id\": 2, \"bbox\": [0, 0, 1], \"score\": 0.5}]", "bbox of 3 numbers")]
    [InlineData("[{\"image_id\": 1.5, \"category_id\": 2, \"score\": 0.5}]", "not an integer")]
    [InlineData("[{\"image_id\": 1, \"category_id\": 2, \"bbox\": [0, 0, NaN, 1], \"score\": 0.5}]", "NaN and Infinity are not JSON numbers")]
    [InlineData("[{\"image_id\": 1, \"category_id\": 2, \"bbox\": [0, 0, 1, 1], \"score\": 1e999}]", "not a finite double")]
    [InlineData("[{\"image_id\": 1, \"category_id\": 2, \"score\": 0.5}] x", "malformed JSON at line 1")]
    [InlineData("[{\"image_id\": 1,\n\"category_id\" 2}]", "malformed JSON at line 2")]
    public void BadInputIsAClearFormatError(string json, string expected)
    {
        var e = Assert.Throws<LvisFormatException>(() => LvisResultsReader.Read(new MemoryStream(Encoding.UTF8.GetBytes(json)), "r.json"));
        Assert.Contains(expected, e.Message);
        Assert.StartsWith("r.json", e.Message);
    }
}
