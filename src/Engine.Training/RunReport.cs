// report.html: one self-contained page (inline SVG, no scripts) summarising a run from its files — loss
// curves from log.jsonl, AP by frequency group (AP, APr, APc, APf) from metrics.json, and per-category AP
// against training-instance count (log x) from per_category_ap.csv, the question a long-tail study asks
// first: how fast AP falls with fewer training examples; and a few validation images with the model's
// detections drawn on them (JPEGs embedded as data: URLs, from report_images/ or given by the caller). The page
// is built as XML (XHTML + SVG), so every name and number is escaped and the file is well-formed by construction.
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Xml.Linq;
using Engine.Evaluation;

namespace Engine.Training;

/// <summary>One row of per_category_ap.csv. <paramref name="Frequency"/> is 'r', 'c' or 'f'; AP is a fraction, −1 where
/// the category had no ground truth in the evaluated images.</summary>
public sealed record CategoryAp(int Id, string Name, char Frequency, long ImageCount, long InstanceCount, double Ap);

/// <summary>An image shown in the report: JPEG bytes and the caption under it.</summary>
public sealed record ReportImage(string Caption, byte[] Jpeg);

public sealed record ReportInputs(string Title, IReadOnlyList<LogEntry> Log, IReadOnlyDictionary<string, double>? Metrics, IReadOnlyList<CategoryAp> Categories,
                                  IReadOnlyList<ReportImage>? Images = null);

public static class RunReport
{
    public const string FileName = "report.html";

    /// <summary>Folder of OUTPUT_DIR whose images Write shows: the JPEGs that <see cref="ImagesManifest"/> lists, in its order.</summary>
    public const string ImagesFolder = "report_images";

    /// <summary>JSON list of {"file": name in ImagesFolder, "caption": text}.</summary>
    public const string ImagesManifest = "images.json";
    private static readonly XNamespace Html = "http://www.w3.org/1999/xhtml";
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";
    private static readonly string[] Palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
    private const string RareColor = "#d62728", CommonColor = "#ff7f0e", FrequentColor = "#1f77b4";

    /// <summary>Reads log.jsonl, metrics.json, per_category_ap.csv and report_images/ from <paramref name="outputDir"/>
    /// (each optional) and writes report.html there atomically; returns its path.</summary>
    public static string Write(string outputDir, string? title = null) => Write(outputDir, title, null);

    /// <summary>As Write(outputDir, title), showing <paramref name="images"/> (null: those of report_images/).</summary>
    public static string Write(string outputDir, string? title, IReadOnlyList<ReportImage>? images)
    {
        var logPath = Path.Combine(outputDir, TrainingLog.FileName);
        var metricsPath = Path.Combine(outputDir, ReportFiles.MetricsFile);
        var csvPath = Path.Combine(outputDir, ReportFiles.PerCategoryFile);
        var inputs = new ReportInputs(
            title ?? Path.GetFileName(Path.GetFullPath(outputDir).TrimEnd(Path.DirectorySeparatorChar)),
            File.Exists(logPath) ? TrainingLog.Read(logPath) : [],
            File.Exists(metricsPath) ? ReadMetrics(metricsPath) : null,
            File.Exists(csvPath) ? ReadPerCategoryCsv(csvPath) : [],
            images ?? ReadImages(outputDir));
        var path = Path.Combine(outputDir, FileName);
        AtomicFile.WriteAllText(path, Render(inputs));
        return path;
    }

    /// <summary>Saves <paramref name="images"/> into <paramref name="outputDir"/>/report_images (replacing what was there),
    /// where Write finds them; the manifest is written last, so a reader never sees a half-written set.</summary>
    public static void WriteImages(string outputDir, IReadOnlyList<ReportImage> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        var folder = Path.Combine(outputDir, ImagesFolder);
        Directory.CreateDirectory(folder);
        var entries = new List<Dictionary<string, string>>();
        for (var i = 0; i < images.Count; i++)
        {
            var file = $"{i:D2}.jpg";
            AtomicFile.WriteAllBytes(Path.Combine(folder, file), images[i].Jpeg);
            entries.Add(new Dictionary<string, string> { ["file"] = file, ["caption"] = images[i].Caption });
        }
        AtomicFile.WriteAllText(Path.Combine(folder, ImagesManifest), JsonSerializer.Serialize(entries, new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>The images report_images/images.json lists (none when the folder or manifest is absent).</summary>
    public static List<ReportImage> ReadImages(string outputDir)
    {
        var folder = Path.Combine(outputDir, ImagesFolder);
        var manifest = Path.Combine(folder, ImagesManifest);
        if (!File.Exists(manifest)) return [];
        List<Dictionary<string, string>>? entries;
        try
        {
            entries = JsonSerializer.Deserialize<List<Dictionary<string, string>>>(File.ReadAllText(manifest));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"RunReport: '{manifest}' is not a JSON list of {{\"file\", \"caption\"}} objects: {e.Message}", e);
        }
        var images = new List<ReportImage>();
        foreach (var entry in entries ?? [])
        {
            if (!entry.TryGetValue("file", out var file) || Path.GetFileName(file) != file)
                throw new InvalidDataException($"RunReport: '{manifest}' has an entry without a plain file name ({string.Join(", ", entry.Select(kv => $"{kv.Key}={kv.Value}"))}).");
            var path = Path.Combine(folder, file);
            if (!File.Exists(path))
                throw new FileNotFoundException($"RunReport: '{manifest}' lists {file}, which is not in {folder}.", path);
            images.Add(new ReportImage(entry.GetValueOrDefault("caption") ?? file, File.ReadAllBytes(path)));
        }
        return images;
    }

    /// <summary>The per-category rows of an evaluation, with the counts ReportFiles writes.</summary>
    public static IReadOnlyList<CategoryAp> CategoriesFrom(LvisEvalResult result)
    {
        var gt = result.GroundTruth;
        return Enumerable.Range(0, gt.CategoryCount).Select(k =>
        {
            var c = gt.Categories[k];
            return new CategoryAp(c.Id, c.Name, ReportFiles.FrequencyLetter(gt.Frequencies[k])[0], c.ImageCount ?? gt.ImageCounts[k],
                                  c.InstanceCount ?? gt.InstanceCounts[k], result.PerCategoryAp[k]);
        }).ToList();
    }

    /// <summary>Numeric fields of metrics.json (strings such as "NaN" are parsed; other fields skipped).</summary>
    public static Dictionary<string, double> ReadMetrics(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var metrics = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var p in doc.RootElement.EnumerateObject())
                if (p.Value.ValueKind == JsonValueKind.Number) metrics[p.Name] = p.Value.GetDouble();
                else if (p.Value.ValueKind == JsonValueKind.String && double.TryParse(p.Value.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var v)) metrics[p.Name] = v;
            return metrics;
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"RunReport: '{path}' is not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>Parses per_category_ap.csv (header category_id,name,frequency,image_count,instance_count,AP; names
    /// quoted when they hold a comma, quote or newline, quotes doubled).</summary>
    public static List<CategoryAp> ReadPerCategoryCsv(string path)
    {
        var rows = ParseCsv(File.ReadAllText(path));
        const string header = "category_id,name,frequency,image_count,instance_count,AP";
        if (rows.Count == 0 || string.Join(",", rows[0]) != header)
            throw new InvalidDataException($"RunReport: '{path}' does not start with the header '{header}'.");
        var result = new List<CategoryAp>();
        for (var i = 1; i < rows.Count; i++)
        {
            var r = rows[i];
            if (r.Count != 6 || r[2].Length != 1)
                throw new InvalidDataException($"RunReport: '{path}' row {i + 1} has {r.Count} fields ({string.Join(" | ", r)}); expected 6 with a one-letter frequency.");
            var inv = CultureInfo.InvariantCulture;
            result.Add(new CategoryAp(int.Parse(r[0], inv), r[1], r[2][0], long.Parse(r[3], inv), long.Parse(r[4], inv), double.Parse(r[5], NumberStyles.Float, inv)));
        }
        return result;
    }

    private static List<List<string>> ParseCsv(string text)
    {
        var rows = new List<List<string>>();
        var row = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < text.Length; i++)
        {
            var ch = text[i];
            if (quoted)
            {
                if (ch != '"') field.Append(ch);
                else if (i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i++; }
                else quoted = false;
            }
            else if (ch == '"') quoted = true;
            else if (ch == ',') { row.Add(field.ToString()); field.Clear(); }
            else if (ch == '\n')
            {
                row.Add(field.ToString());
                field.Clear();
                rows.Add(row);
                row = [];
            }
            else if (ch != '\r') field.Append(ch);
        }
        if (field.Length > 0 || row.Count > 0)
        {
            row.Add(field.ToString());
            rows.Add(row);
        }
        return rows;
    }

    public static string Render(ReportInputs inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        var body = new XElement(Html + "body",
            new XElement(Html + "h1", $"Training report: {inputs.Title}"),
            Summary(inputs),
            new XElement(Html + "h2", "Losses"),
            inputs.Log.Count > 0 ? LossChart(inputs.Log) : Note("log.jsonl has no entries yet."),
            new XElement(Html + "h2", "AP by frequency group"),
            inputs.Metrics is { } m ? FrequencyBars(m) : Note("No evaluation yet (metrics.json is absent)."),
            new XElement(Html + "h2", "Per-category AP against training instances"),
            inputs.Categories.Count > 0 ? Scatter(inputs.Categories) : Note("No per-category results (per_category_ap.csv is absent)."),
            inputs.Metrics is { } all ? MetricsTable(all) : null,
            inputs.Images is { Count: > 0 } images ? Images(images) : null);
        var html = new XElement(Html + "html", new XAttribute("lang", "en"),
            new XElement(Html + "head",
                new XElement(Html + "meta", new XAttribute("charset", "utf-8")),
                new XElement(Html + "title", $"Training report: {inputs.Title}"),
                new XElement(Html + "style",
                    "body{font-family:sans-serif;margin:2em;color:#222}svg{background:#fff;border:1px solid #ddd}" +
                    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}.note{color:#777}" +
                    "figure{display:inline-block;margin:0 1em 1em 0;vertical-align:top}figcaption{font-size:0.85em;color:#555;max-width:640px}")),
            body);
        return "<!DOCTYPE html>\n" + html.ToString() + "\n";
    }

    private static XElement Note(string text) => new(Html + "p", new XAttribute("class", "note"), text);

    private static string F(double v, string format = "G4") => v.ToString(format, CultureInfo.InvariantCulture);

    private static XElement Summary(ReportInputs inputs)
    {
        var items = new List<string>();
        if (inputs.Log.Count > 0)
        {
            var last = inputs.Log[^1];
            items.Add($"last logged iteration {last.Iteration}, total_loss {F(last.TotalLoss)}, lr {F(last.Lr)}, {F(last.Time, "F3")} s/iter, data {F(last.DataTime, "F3")} s/iter");
        }
        if (inputs.Metrics is { } m && m.TryGetValue("AP", out var ap)) items.Add($"AP {Percent(ap)}");
        return new XElement(Html + "ul", items.Select(i => new XElement(Html + "li", i)));
    }

    private static string Percent(double fraction) => fraction < 0 || double.IsNaN(fraction) ? "n/a" : F(100 * fraction, "F1");

    // ---- charts ----

    private const int W = 760, H = 340, Left = 64, Right = 150, Top = 16, Bottom = 44;

    private static XElement Chart(string label, params object?[] content) =>
        new(Svg + "svg", new XAttribute("width", W), new XAttribute("height", H), new XAttribute("viewBox", $"0 0 {W} {H}"),
            new XAttribute("role", "img"), new XAttribute("aria-label", label), content);

    private static XElement Text(double x, double y, string text, string anchor = "middle", int size = 11, string? fill = null) =>
        new(Svg + "text", new XAttribute("x", F(x, "F1")), new XAttribute("y", F(y, "F1")), new XAttribute("text-anchor", anchor),
            new XAttribute("font-size", size), fill is null ? null : new XAttribute("fill", fill), text);

    private static XElement Line(double x1, double y1, double x2, double y2, string stroke = "#999") =>
        new(Svg + "line", new XAttribute("x1", F(x1, "F1")), new XAttribute("y1", F(y1, "F1")), new XAttribute("x2", F(x2, "F1")),
            new XAttribute("y2", F(y2, "F1")), new XAttribute("stroke", stroke));

    /// <summary>Axes with 5 ticks each; <paramref name="xLabel"/> formats an x tick value.</summary>
    private static IEnumerable<XElement> Axes(double x0, double x1, double y0, double y1, Func<double, double> sx, Func<double, double> sy,
                                              Func<double, string> xLabel, string xTitle, string yTitle, IEnumerable<double>? xTicks = null)
    {
        yield return Line(Left, Top, Left, H - Bottom);
        yield return Line(Left, H - Bottom, W - Right, H - Bottom);
        for (var i = 0; i <= 4; i++)
        {
            var v = y0 + (y1 - y0) * i / 4;
            yield return Line(Left - 4, sy(v), Left, sy(v));
            yield return Text(Left - 6, sy(v) + 4, F(v, "G3"), "end");
        }
        foreach (var v in xTicks ?? Enumerable.Range(0, 5).Select(i => x0 + (x1 - x0) * i / 4))
        {
            yield return Line(sx(v), H - Bottom, sx(v), H - Bottom + 4);
            yield return Text(sx(v), H - Bottom + 16, xLabel(v));
        }
        yield return Text((Left + W - Right) / 2.0, H - 6, xTitle);
        yield return new XElement(Svg + "text", new XAttribute("transform", $"translate(14,{(Top + H - Bottom) / 2}) rotate(-90)"),
                                  new XAttribute("text-anchor", "middle"), new XAttribute("font-size", 11), yTitle);
    }

    private static XElement LossChart(IReadOnlyList<LogEntry> log)
    {
        var series = new List<(string Name, List<(long X, double Y)> Points)> { ("total_loss", log.Select(e => (e.Iteration, e.TotalLoss)).ToList()) };
        foreach (var name in log.SelectMany(e => e.Losses.Keys).Distinct())
            series.Add((name, log.Where(e => e.Losses.ContainsKey(name)).Select(e => (e.Iteration, e.Losses[name])).ToList()));
        var finite = series.SelectMany(s => s.Points).Where(p => double.IsFinite(p.Y)).ToList();
        if (finite.Count == 0) return Note("Every logged loss is non-finite.");
        double x0 = log.Min(e => e.Iteration), x1 = Math.Max(x0 + 1, log.Max(e => e.Iteration));
        double y0 = Math.Min(0, finite.Min(p => p.Y)), y1 = finite.Max(p => p.Y);
        if (y1 <= y0) y1 = y0 + 1;
        Func<double, double> sx = x => Left + (x - x0) / (x1 - x0) * (W - Left - Right);
        Func<double, double> sy = y => H - Bottom - (y - y0) / (y1 - y0) * (H - Top - Bottom);
        // Iterations are integers: ticks at distinct whole iterations, so a short run does not repeat a label.
        var xTicks = Enumerable.Range(0, 5).Select(i => Math.Round(x0 + (x1 - x0) * i / 4)).Distinct().ToList();
        var content = new List<object>(Axes(x0, x1, y0, y1, sx, sy, v => F(v, "F0"), "iteration", "loss", xTicks));
        for (var s = 0; s < series.Count; s++)
        {
            var color = Palette[s % Palette.Length];
            var pts = string.Join(" ", series[s].Points.Where(p => double.IsFinite(p.Y)).Select(p => $"{F(sx(p.X), "F1")},{F(sy(p.Y), "F1")}"));
            content.Add(new XElement(Svg + "polyline", new XAttribute("fill", "none"), new XAttribute("stroke", color),
                                     new XAttribute("stroke-width", s == 0 ? 2 : 1.2), new XAttribute("points", pts),
                                     new XAttribute("data-series", series[s].Name)));
            var ly = Top + 14 + 16 * s;
            content.Add(Line(W - Right + 10, ly - 4, W - Right + 26, ly - 4, color));
            content.Add(Text(W - Right + 30, ly, $"{series[s].Name} ({F(series[s].Points[^1].Y)})", "start", 11));
        }
        return Chart("loss curves", content);
    }

    private static XElement FrequencyBars(IReadOnlyDictionary<string, double> metrics)
    {
        (string Key, string Color)[] bars = [("AP", "#555"), ("APr", RareColor), ("APc", CommonColor), ("APf", FrequentColor)];
        var values = bars.Select(b => metrics.TryGetValue(b.Key, out var v) ? v : -1).ToArray();
        var top = Math.Max(1, Math.Ceiling(values.Where(v => v > 0).DefaultIfEmpty(0).Max() * 100 / 10) * 10);
        Func<double, double> sy = y => H - Bottom - y / top * (H - Top - Bottom);
        var slot = (W - Left - Right) / (double)bars.Length;
        var content = new List<object>(Axes(0, bars.Length, 0, top, x => Left + x * slot, sy, _ => "", "frequency group", "AP (%)", []));
        for (var i = 0; i < bars.Length; i++)
        {
            var x = Left + i * slot + slot * 0.2;
            var defined = values[i] >= 0 && double.IsFinite(values[i]);
            var h = defined ? H - Bottom - sy(100 * values[i]) : 0;
            content.Add(new XElement(Svg + "rect", new XAttribute("x", F(x, "F1")), new XAttribute("y", F(H - Bottom - h, "F1")),
                                     new XAttribute("width", F(slot * 0.6, "F1")), new XAttribute("height", F(h, "F1")),
                                     new XAttribute("fill", bars[i].Color), new XAttribute("data-metric", bars[i].Key),
                                     new XElement(Svg + "title", $"{bars[i].Key} {Percent(values[i])}")));
            content.Add(Text(x + slot * 0.3, H - Bottom - h - 4, Percent(values[i])));
            content.Add(Text(x + slot * 0.3, H - Bottom + 16, bars[i].Key));
        }
        return Chart("AP by frequency group", content);
    }

    private static XElement Scatter(IReadOnlyList<CategoryAp> categories)
    {
        var shown = categories.Where(c => c.Ap >= 0 && double.IsFinite(c.Ap) && c.InstanceCount > 0).ToList();
        var omitted = categories.Count - shown.Count;
        if (shown.Count == 0) return Note($"None of the {categories.Count} categories has both an AP and training instances.");
        var lx0 = Math.Floor(Math.Log10(shown.Min(c => c.InstanceCount)));
        var lx1 = Math.Max(lx0 + 1, Math.Ceiling(Math.Log10(shown.Max(c => c.InstanceCount))));
        Func<double, double> sx = lx => Left + (lx - lx0) / (lx1 - lx0) * (W - Left - Right);
        Func<double, double> sy = y => H - Bottom - y / 100 * (H - Top - Bottom);
        var ticks = Enumerable.Range((int)lx0, (int)(lx1 - lx0) + 1).Select(e => (double)e);
        var content = new List<object>(Axes(lx0, lx1, 0, 100, sx, sy, e => F(Math.Pow(10, e), "G6"), "training instances (log scale)", "AP (%)", ticks));
        foreach (var c in shown)
        {
            var color = c.Frequency switch { 'r' => RareColor, 'c' => CommonColor, _ => FrequentColor };
            content.Add(new XElement(Svg + "circle", new XAttribute("cx", F(sx(Math.Log10(c.InstanceCount)), "F1")), new XAttribute("cy", F(sy(100 * c.Ap), "F1")),
                                     new XAttribute("r", 3), new XAttribute("fill", color), new XAttribute("fill-opacity", 0.7),
                                     new XAttribute("data-category", c.Id),
                                     new XElement(Svg + "title", $"{c.Name} ({c.Frequency}): AP {Percent(c.Ap)}, {c.InstanceCount} training instances")));
        }
        (string Label, string Color)[] legend = [("rare", RareColor), ("common", CommonColor), ("frequent", FrequentColor)];
        for (var i = 0; i < legend.Length; i++)
        {
            var ly = Top + 14 + 16 * i;
            content.Add(new XElement(Svg + "circle", new XAttribute("cx", W - Right + 16), new XAttribute("cy", ly - 4), new XAttribute("r", 4), new XAttribute("fill", legend[i].Color)));
            content.Add(Text(W - Right + 26, ly, legend[i].Label, "start"));
        }
        var chart = Chart("per-category AP against training instances", content);
        return omitted == 0 ? chart
            : new XElement(Html + "div", chart, Note($"{omitted} of {categories.Count} categories not shown (no ground truth in the evaluated images, or no training instances)."));
    }

    private static XElement Images(IReadOnlyList<ReportImage> images) =>
        new(Html + "div",
            new XElement(Html + "h2", "Detections on validation images"),
            images.Select(im => new XElement(Html + "figure",
                new XElement(Html + "img", new XAttribute("src", "data:image/jpeg;base64," + Convert.ToBase64String(im.Jpeg)), new XAttribute("alt", im.Caption)),
                new XElement(Html + "figcaption", im.Caption))));

    private static XElement MetricsTable(IReadOnlyDictionary<string, double> metrics) =>
        new(Html + "table",
            new XElement(Html + "tr", new XElement(Html + "th", "metric"), new XElement(Html + "th", "value")),
            metrics.Select(kv => new XElement(Html + "tr", new XElement(Html + "td", kv.Key),
                                              new XElement(Html + "td", kv.Key == "iter" ? F(kv.Value, "F0") : F(kv.Value, "R")))));
}
