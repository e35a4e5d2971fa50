// The files an evaluation leaves in its output folder: metrics.json with exactly the official results
// dict's keys (fractions in [0, 1], -1 where undefined), per_category_ap.csv (one row per category:
// id, name, frequency, image_count, instance_count, AP), and for the AP-fixed protocol
// metrics_ap_fixed.json (the same keys computed under it, plus AP-pool per frequency group).
using System.Globalization;
using System.Text;
using System.Text.Json;
using Engine.Lvis;

namespace Engine.Evaluation;

public static class ReportFiles
{
    public const string MetricsFile = "metrics.json";
    public const string PerCategoryFile = "per_category_ap.csv";
    public const string ApFixedFile = "metrics_ap_fixed.json";

    public static void WriteMetrics(string path, LvisSummary summary, PooledAp? pooled = null)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        foreach (var (key, value) in summary.ToOfficialKeys())
            w.WriteNumber(key, value);
        if (pooled is not null)
        {
            w.WriteNumber("AP-pool", pooled.All);
            w.WriteNumber("APr-pool", pooled.Rare);
            w.WriteNumber("APc-pool", pooled.Common);
            w.WriteNumber("APf-pool", pooled.Frequent);
        }
        w.WriteEndObject();
    }

    /// <summary>image_count and instance_count are the category's fields in the GT file when present (LVIS has
    /// them: training-set counts in v1 val); otherwise counted from the evaluated GT annotations.</summary>
    public static void WritePerCategory(string path, LvisEvalResult result)
    {
        var gt = result.GroundTruth;
        var sb = new StringBuilder("category_id,name,frequency,image_count,instance_count,AP\n");
        for (int k = 0; k < gt.CategoryCount; k++)
        {
            var c = gt.Categories[k];
            sb.Append(c.Id.ToString(CultureInfo.InvariantCulture)).Append(',')
              .Append(Csv(c.Name)).Append(',')
              .Append(FrequencyLetter(gt.Frequencies[k])).Append(',')
              .Append((c.ImageCount ?? gt.ImageCounts[k]).ToString(CultureInfo.InvariantCulture)).Append(',')
              .Append((c.InstanceCount ?? gt.InstanceCounts[k]).ToString(CultureInfo.InvariantCulture)).Append(',')
              .Append(result.PerCategoryAp[k].ToString("R", CultureInfo.InvariantCulture)).Append('\n');
        }
        File.WriteAllText(path, sb.ToString());
    }

    public static string FrequencyLetter(LvisFrequency f) => f switch
    {
        LvisFrequency.Rare => "r",
        LvisFrequency.Common => "c",
        _ => "f",
    };

    private static string Csv(string s) =>
        s.AsSpan().IndexOfAny(",\"\n\r") >= 0 ? "\"" + s.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : s;
}
