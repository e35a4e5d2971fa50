// log.jsonl: one JSON object per logged iteration, flushed line by line so a crash loses at most the line
// being written, e.g.
//   {"iter":19,"loss_cls":0.61,"loss_box_reg":0.32,"total_loss":0.93,"lr":0.002,"time":0.41,"data_time":0.02,"eta_seconds":36912}
// "iter" is the 0-based iteration, "time" the mean seconds per iteration since the previous line, "data_time"
// the mean seconds of those spent waiting for the batch. On resume from iteration i the file is cut back to
// the lines with iter ≤ i before appending, so iterations redone after a crash are not logged twice.
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Engine.Training;

public sealed record LogEntry(long Iteration, IReadOnlyDictionary<string, double> Losses, double TotalLoss, double Lr,
                              double Time, double DataTime, double EtaSeconds);

public sealed class TrainingLog : IDisposable
{
    public const string FileName = "log.jsonl";
    private readonly StreamWriter _writer;

    private TrainingLog(StreamWriter writer, string path)
    {
        _writer = writer;
        Path = path;
    }

    public string Path { get; }

    /// <summary>Starts a fresh log (any earlier file is replaced).</summary>
    public static TrainingLog Create(string outputDir)
    {
        var path = System.IO.Path.Combine(outputDir, FileName);
        return new TrainingLog(new StreamWriter(new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read), new UTF8Encoding(false)), path);
    }

    /// <summary>Opens the log for appending after keeping only the lines with iter ≤ <paramref name="lastIteration"/>
    /// (and dropping a torn last line). The trimmed file is written atomically before appending starts.</summary>
    public static TrainingLog Resume(string outputDir, long lastIteration)
    {
        var path = System.IO.Path.Combine(outputDir, FileName);
        if (File.Exists(path))
        {
            var kept = new StringBuilder();
            foreach (var line in File.ReadLines(path))
                if (TryParse(line, out var entry) && entry.Iteration <= lastIteration)
                    kept.Append(line).Append('\n');
            AtomicFile.WriteAllText(path, kept.ToString());
        }
        return new TrainingLog(new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read), new UTF8Encoding(false)), path);
    }

    public void Write(LogEntry entry)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("iter", entry.Iteration);
            foreach (var (name, value) in entry.Losses) WriteDouble(w, name, value);
            WriteDouble(w, "total_loss", entry.TotalLoss);
            WriteDouble(w, "lr", entry.Lr);
            WriteDouble(w, "time", entry.Time);
            WriteDouble(w, "data_time", entry.DataTime);
            WriteDouble(w, "eta_seconds", entry.EtaSeconds);
            w.WriteEndObject();
        }
        _writer.Write(Encoding.UTF8.GetString(buffer.ToArray()));
        _writer.Write('\n');
        _writer.Flush();
    }

    // JSON has no NaN or infinity; a non-finite value is written as a string so the line stays parseable.
    private static void WriteDouble(Utf8JsonWriter w, string name, double value)
    {
        if (double.IsFinite(value)) w.WriteNumber(name, value);
        else w.WriteString(name, value.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>Every well-formed line of <paramref name="path"/>, in file order.</summary>
    public static List<LogEntry> Read(string path)
    {
        var entries = new List<LogEntry>();
        foreach (var line in File.ReadLines(path))
            if (TryParse(line, out var e)) entries.Add(e);
        return entries;
    }

    private static readonly HashSet<string> Fixed = ["iter", "total_loss", "lr", "time", "data_time", "eta_seconds"];

    public static bool TryParse(string line, out LogEntry entry)
    {
        entry = null!;
        if (string.IsNullOrWhiteSpace(line)) return false;
        try
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("iter", out var iter)) return false;
            var losses = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var p in root.EnumerateObject())
                if (!Fixed.Contains(p.Name)) losses[p.Name] = Number(p.Value);
            entry = new LogEntry(iter.GetInt64(), losses, Get(root, "total_loss"), Get(root, "lr"), Get(root, "time"), Get(root, "data_time"), Get(root, "eta_seconds"));
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static double Get(JsonElement root, string name) => root.TryGetProperty(name, out var v) ? Number(v) : double.NaN;

    private static double Number(JsonElement v) => v.ValueKind == JsonValueKind.String
        ? double.Parse(v.GetString()!, CultureInfo.InvariantCulture)
        : v.GetDouble();

    public void Dispose() => _writer.Dispose();
}
