// The evaluation files of a run. With an LVIS result, metrics.json holds the official keys (through the
// evaluator's ReportFiles) and per_category_ap.csv the per-category AP; otherwise metrics.json holds the
// metrics the evaluation delegate returned. Each evaluation replaces the files atomically, so they always
// describe the latest evaluation. The generic form also records "iter"; the LVIS form keeps exactly the
// official keys so other tools read it unchanged.
using System.Text.Json;
using Engine.Evaluation;

namespace Engine.Training;

public static class MetricsFiles
{
    public static void Write(string outputDir, long iteration, EvaluationResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var metricsPath = Path.Combine(outputDir, ReportFiles.MetricsFile);
        if (result.Lvis is { } lvis)
        {
            WriteVia(metricsPath, p => ReportFiles.WriteMetrics(p, lvis.Summary, lvis.Pooled));
            WriteVia(Path.Combine(outputDir, ReportFiles.PerCategoryFile), p => ReportFiles.WritePerCategory(p, lvis));
            return;
        }
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("iter", iteration);
            foreach (var (k, v) in result.Metrics)
                if (double.IsFinite(v)) w.WriteNumber(k, v);
                else w.WriteString(k, v.ToString(System.Globalization.CultureInfo.InvariantCulture));
            w.WriteEndObject();
        }
        AtomicFile.WriteAllBytes(metricsPath, buffer.ToArray());
    }

    // ReportFiles writes in place; writing to a temporary and renaming keeps the previous file until the new one is whole.
    private static void WriteVia(string path, Action<string> write)
    {
        var temp = Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            write(temp);
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
