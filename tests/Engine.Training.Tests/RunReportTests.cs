// report.html from a real run: a toy model trained with an evaluation that runs the LVIS evaluator on a
// small hand-built case; the page must parse as XML and carry the logged losses, the frequency-group APs
// and every category's AP and instance count.
using System.Globalization;
using System.Xml;
using System.Xml.Linq;
using Engine.Evaluation;
using Engine.Lvis;

namespace Engine.Training.Tests;

public sealed class RunReportTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    /// <summary>Three categories (rare, common, frequent; names with characters XML and CSV must escape) on four
    /// images: the frequent one detected exactly, the common one behind higher-scored false positives, the rare
    /// one missed.</summary>
    private static LvisEvalResult SmallEvaluation()
    {
        LvisCategory[] categories =
        [
            new() { Id = 1, Name = "rare, \"odd\" thing", Frequency = LvisFrequency.Rare, ImageCount = 2, InstanceCount = 3 },
            new() { Id = 2, Name = "common <b>", Frequency = LvisFrequency.Common, ImageCount = 20, InstanceCount = 40 },
            new() { Id = 3, Name = "frequent & co", Frequency = LvisFrequency.Frequent, ImageCount = 900, InstanceCount = 5000 },
        ];
        var images = Enumerable.Range(1, 4).Select(i => new LvisImage { Id = i, Width = 200, Height = 200, NegCategoryIds = [], NotExhaustiveCategoryIds = [] }).ToList();
        var annotations = new List<LvisAnnotation>();
        var results = new LvisResults();
        long id = 1;
        foreach (var img in images)
            for (var c = 1; c <= 3; c++)
            {
                double[] box = [10 + 50 * (c - 1), 10, 40, 40];
                annotations.Add(new LvisAnnotation { Id = id++, ImageId = img.Id, CategoryId = c, Bbox = box, Area = 1600 });
                if (c == 3 || (c == 2 && img.Id <= 2)) results.Add(img.Id, c, 0.5, box);
                if (c == 2) results.Add(img.Id, c, 0.9, [150, 150, 30, 30]);
            }
        return LvisEvaluator.Evaluate(new LvisDataset { Images = images, Categories = categories, Annotations = annotations }, results);
    }

    private static XDocument Parse(string path)
    {
        using var reader = XmlReader.Create(path, new XmlReaderSettings { DtdProcessing = DtdProcessing.Ignore });
        return XDocument.Load(reader);
    }

    [Fact]
    public void RunWritesWellFormedReportWithLossesFrequencyApsAndPerCategoryPoints()
    {
        var dir = Toy.TempDir();
        var lvis = SmallEvaluation();
        var (m, opt) = Toy.Build(seed: 12, initSeed: 12);
        using var _ = m.Net;
        using var __ = opt;
        new Trainer<ToyBatch>(m, opt, Toy.Schedule(), s => new ToySource(12, s),
                              new TrainerOptions { OutputDir = dir, MaxIter = 6, LogPeriod = 1 })
        {
            Evaluate = _ => new EvaluationResult(lvis.Summary.ToOfficialKeys().ToDictionary(kv => kv.Key, kv => kv.Value), lvis),
        }.Run();

        Assert.True(File.Exists(Path.Combine(dir, ReportFiles.PerCategoryFile)));
        var doc = Parse(Path.Combine(dir, RunReport.FileName));
        var text = doc.ToString();

        var log = TrainingLog.Read(Path.Combine(dir, TrainingLog.FileName));
        foreach (var series in new[] { "total_loss", "loss_cls", "loss_l2" })
        {
            var line = doc.Descendants(Svg + "polyline").Single(p => (string?)p.Attribute("data-series") == series);
            Assert.Equal(log.Count, line.Attribute("points")!.Value.Split(' ').Length);
        }
        Assert.Contains($"total_loss ({log[^1].TotalLoss.ToString("G4", CultureInfo.InvariantCulture)})", text);

        var summary = lvis.Summary;
        Assert.True(summary.APf > summary.APc && summary.APc > summary.APr, $"the case should order the groups f > c > r, got {summary.APf}, {summary.APc}, {summary.APr}");
        foreach (var (key, value) in new[] { ("AP", summary.AP), ("APr", summary.APr), ("APc", summary.APc), ("APf", summary.APf) })
        {
            var bar = doc.Descendants(Svg + "rect").Single(r => (string?)r.Attribute("data-metric") == key);
            Assert.Equal($"{key} {(100 * value).ToString("F1", CultureInfo.InvariantCulture)}", bar.Element(Svg + "title")!.Value);
        }

        var points = doc.Descendants(Svg + "circle").Where(c => c.Attribute("data-category") is not null).ToList();
        Assert.Equal(3, points.Count);
        var categories = lvis.GroundTruth.Categories;
        for (var k = 0; k < categories.Length; k++)
        {
            var point = points.Single(p => (string?)p.Attribute("data-category") == categories[k].Id.ToString(CultureInfo.InvariantCulture));
            Assert.Equal($"{categories[k].Name} ({ReportFiles.FrequencyLetter(lvis.GroundTruth.Frequencies[k])}): AP {(100 * lvis.PerCategoryAp[k]).ToString("F1", CultureInfo.InvariantCulture)}, {categories[k].InstanceCount} training instances",
                         point.Element(Svg + "title")!.Value);
        }
        // More training instances sit further right on the log axis.
        var xs = categories.OrderBy(c => c.InstanceCount)
                           .Select(c => double.Parse(points.Single(p => (string?)p.Attribute("data-category") == c.Id.ToString(CultureInfo.InvariantCulture)).Attribute("cx")!.Value, CultureInfo.InvariantCulture))
                           .ToList();
        Assert.True(xs[0] < xs[1] && xs[1] < xs[2], $"x positions {string.Join(", ", xs)} should increase with instance count");
    }

    [Fact]
    public void PerCategoryCsvRoundTripsQuotedNames()
    {
        var dir = Toy.TempDir();
        var lvis = SmallEvaluation();
        var path = Path.Combine(dir, ReportFiles.PerCategoryFile);
        ReportFiles.WritePerCategory(path, lvis);
        Assert.Equal(RunReport.CategoriesFrom(lvis), RunReport.ReadPerCategoryCsv(path));
    }

    [Fact]
    public void ReportBeforeAnyEvaluationSaysSoAndStaysWellFormed()
    {
        var dir = Toy.TempDir();
        using (var log = TrainingLog.Create(dir))
            log.Write(new LogEntry(0, new Dictionary<string, double> { ["loss_x"] = 1.5 }, 1.5, 0.1, 0.2, 0.01, 3));
        var doc = Parse(RunReport.Write(dir));
        Assert.Contains("metrics.json is absent", doc.ToString());
        Assert.Contains("per_category_ap.csv is absent", doc.ToString());
        Assert.Equal(2, doc.Descendants(Svg + "polyline").Count());
    }

    [Fact]
    public void IterationTicksAreDistinctForShortRuns()
    {
        var dir = Toy.TempDir();
        using (var log = TrainingLog.Create(dir))
            for (var i = 0; i < 4; i++)
                log.Write(new LogEntry(i, new Dictionary<string, double> { ["loss_x"] = 1.0 / (i + 1) }, 1.0 / (i + 1), 0.1, 0.2, 0.01, 3 - i));
        var doc = Parse(RunReport.Write(dir));
        var chart = doc.Descendants(Svg + "svg").First();
        // Tick labels sit just below the x axis (y = H - Bottom + 16 = 312).
        var labels = chart.Elements(Svg + "text").Where(t => (string?)t.Attribute("y") == "312.0").Select(t => t.Value).ToList();
        Assert.Equal(["0", "1", "2", "3"], labels);
    }

    [Fact]
    public void MalformedCsvIsReportedWithThePath()
    {
        var dir = Toy.TempDir();
        var path = Path.Combine(dir, ReportFiles.PerCategoryFile);
        File.WriteAllText(path, "id,AP\n1,0.5\n");
        var e = Assert.Throws<InvalidDataException>(() => RunReport.Write(dir));
        Assert.Contains(path, e.Message);
    }
}
