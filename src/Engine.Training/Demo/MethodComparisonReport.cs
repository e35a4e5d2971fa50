// report.html of a multi-method demo: the long-tail benchmark table (AP, AP50, APr, APc, APf, training time per
// method) and a grouped bar chart of APr / APc / APf per method — the figure a long-tail paper leads with: does the
// method lift the rare group without giving up the frequent one. Each method's own report.html (loss curves,
// per-category AP) is linked. Built as XHTML + inline SVG through XElement, so names and numbers are escaped.
using System.Globalization;
using System.Xml.Linq;

namespace Engine.Training.Demo;

public static class MethodComparisonReport
{
    private static readonly XNamespace Html = "http://www.w3.org/1999/xhtml";
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";
    private static readonly (string Key, string Label, string Color)[] Groups =
        [("APr", "rare", "#d62728"), ("APc", "common", "#ff7f0e"), ("APf", "frequent", "#1f77b4")];

    /// <summary>Writes report.html into <paramref name="outputDirectory"/> atomically; returns its path.</summary>
    public static string Write(string outputDirectory, IReadOnlyList<DemoMethodResult> results)
    {
        var path = Path.Combine(outputDirectory, RunReport.FileName);
        AtomicFile.WriteAllText(path, Render(results, outputDirectory));
        return path;
    }

    public static string Render(IReadOnlyList<DemoMethodResult> results, string outputDirectory)
    {
        ArgumentNullException.ThrowIfNull(results);
        var html = new XElement(Html + "html", new XAttribute("lang", "en"),
            new XElement(Html + "head",
                new XElement(Html + "meta", new XAttribute("charset", "utf-8")),
                new XElement(Html + "title", "Long-tail methods on the synthetic set"),
                new XElement(Html + "style",
                    "body{font-family:sans-serif;margin:2em;color:#222}svg{background:#fff;border:1px solid #ddd}" +
                    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}td:first-child{text-align:left}")),
            new XElement(Html + "body",
                new XElement(Html + "h1", "Long-tail methods on the synthetic set"),
                new XElement(Html + "p", "Box AP of each method trained with the same schedule on the same data, evaluated with the LVIS protocol."),
                Table(results, outputDirectory),
                new XElement(Html + "h2", "AP by frequency group"),
                Bars(results)));
        return "<!DOCTYPE html>\n" + html + "\n";
    }

    private static string F(double v, string format) => double.IsNaN(v) ? "n/a" : v.ToString(format, CultureInfo.InvariantCulture);

    private static XElement Table(IReadOnlyList<DemoMethodResult> results, string outputDirectory)
    {
        string[] keys = ["AP", "AP50", "APr", "APc", "APf"];
        var header = new XElement(Html + "tr", new XElement(Html + "th", "method"), keys.Select(k => new XElement(Html + "th", k)),
                                  new XElement(Html + "th", "train minutes"), new XElement(Html + "th", "images/s"));
        var rows = results.Select(r =>
        {
            var own = Path.GetRelativePath(outputDirectory, Path.Combine(r.RunDirectory, RunReport.FileName)).Replace('\\', '/');
            return new XElement(Html + "tr",
                new XElement(Html + "td", new XElement(Html + "a", new XAttribute("href", own), r.Method)),
                keys.Select(k => new XElement(Html + "td", F(DemoRunner.Get(r, k), "0.000"))),
                new XElement(Html + "td", F(r.TrainSeconds / 60, "0.0")),
                new XElement(Html + "td", F(r.ImagesPerSecond, "0.0")));
        });
        return new XElement(Html + "table", header, rows);
    }

    /// <summary>One group of three bars (APr, APc, APf) per method on a 0..max AP axis.</summary>
    private static XElement Bars(IReadOnlyList<DemoMethodResult> results)
    {
        const int left = 48, top = 16, bottom = 48, plotHeight = 260, bar = 14, gap = 18;
        var groupWidth = Groups.Length * bar + gap;
        var width = left + results.Count * groupWidth + 120;
        var height = top + plotHeight + bottom;
        var max = results.SelectMany(r => Groups.Select(g => DemoRunner.Get(r, g.Key))).Where(double.IsFinite).DefaultIfEmpty(0).Max();
        var yMax = Math.Max(0.1, Math.Ceiling(max * 10) / 10);
        double Y(double v) => top + plotHeight * (1 - v / yMax);
        var content = new List<XElement>
        {
            Line(left, top, left, top + plotHeight),
            Line(left, top + plotHeight, width - 120, top + plotHeight),
        };
        for (var i = 0; i <= 4; i++)
        {
            var v = yMax * i / 4;
            content.Add(Line(left - 4, Y(v), left, Y(v)));
            content.Add(Text(left - 6, Y(v) + 4, F(v, "0.00"), "end"));
        }
        for (var m = 0; m < results.Count; m++)
        {
            var x0 = left + gap / 2.0 + m * groupWidth;
            for (var g = 0; g < Groups.Length; g++)
            {
                var v = DemoRunner.Get(results[m], Groups[g].Key);
                if (!double.IsFinite(v) || v < 0) continue;
                content.Add(new XElement(Svg + "rect", new XAttribute("x", F(x0 + g * bar, "F1")), new XAttribute("y", F(Y(v), "F1")),
                                         new XAttribute("width", bar - 2), new XAttribute("height", F(top + plotHeight - Y(v), "F1")),
                                         new XAttribute("fill", Groups[g].Color),
                                         new XElement(Svg + "title", $"{results[m].Method} {Groups[g].Key} {F(v, "0.000")}")));
            }
            content.Add(Text(x0 + Groups.Length * bar / 2.0, top + plotHeight + 16, results[m].Method, "middle"));
        }
        for (var g = 0; g < Groups.Length; g++)
        {
            var y = top + 14 + g * 18;
            content.Add(new XElement(Svg + "rect", new XAttribute("x", width - 110), new XAttribute("y", y - 10), new XAttribute("width", 12),
                                     new XAttribute("height", 12), new XAttribute("fill", Groups[g].Color)));
            content.Add(Text(width - 92, y, $"{Groups[g].Key} ({Groups[g].Label})", "start"));
        }
        return new XElement(Svg + "svg", new XAttribute("width", width), new XAttribute("height", height),
                            new XAttribute("viewBox", $"0 0 {width} {height}"), new XAttribute("role", "img"),
                            new XAttribute("aria-label", "APr, APc and APf per method"), content);
    }

    private static XElement Text(double x, double y, string text, string anchor) =>
        new(Svg + "text", new XAttribute("x", F(x, "F1")), new XAttribute("y", F(y, "F1")), new XAttribute("text-anchor", anchor),
            new XAttribute("font-size", 11), text);

    private static XElement Line(double x1, double y1, double x2, double y2) =>
        new(Svg + "line", new XAttribute("x1", F(x1, "F1")), new XAttribute("y1", F(y1, "F1")), new XAttribute("x2", F(x2, "F1")),
            new XAttribute("y2", F(y2, "F1")), new XAttribute("stroke", "#999"));
}
