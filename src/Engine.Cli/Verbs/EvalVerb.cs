// `engine eval`: evaluates a results file against LVIS ground truth with the official LVIS metrics
// (bbox or segm), prints the summary table, and writes metrics.json and per_category_ap.csv. With
// --ap-fixed it also evaluates under the AP-fixed protocol (a budget of detections per category over
// the dataset instead of 300 per image) and reports AP-fixed and AP-pool.
using CommandLine;
using Engine.Evaluation;
using Engine.Lvis;
using Spectre.Console;

namespace Engine.Cli.Verbs;

[Verb("eval", HelpText = "Evaluate detection results on LVIS: AP, AP50, AP75, APs/m/l, APr/c/f, AR@300 (official LVIS API numbers).")]
public sealed class EvalVerb : IVerb
{
    [Option("gt", HelpText = "LVIS ground-truth JSON (e.g. lvis_v1_val.json).")]
    public string? GroundTruth { get; set; }

    [Option("results", HelpText = "Results JSON: a list of {image_id, category_id, bbox, score[, segmentation]}.")]
    public string? Results { get; set; }

    [Option("iou-type", Default = IouType.Bbox, HelpText = "bbox or segm.")]
    public IouType IouType { get; set; } = IouType.Bbox;

    [Option("out", HelpText = "Folder for metrics.json and per_category_ap.csv (created if missing).")]
    public string? OutDir { get; set; }

    [Option("ap-fixed", HelpText = "Also report AP-fixed and AP-pool (Dave et al. 2021): a fixed budget of detections per category over the dataset, no per-image limit.")]
    public bool ApFixed { get; set; }

    [Option("dets-per-class", Default = 10000, HelpText = "Per-category detection budget of --ap-fixed (10,000 for LVIS).")]
    public int DetsPerClass { get; set; } = 10000;

    [Option("threads", Default = -1, HelpText = "Worker threads (-1: all cores).")]
    public int Threads { get; set; } = -1;

    [Option("no-progress", HelpText = "Do not draw progress bars.")]
    public bool NoProgress { get; set; }

    [Option("timings", HelpText = "Print the time each phase took.")]
    public bool Timings { get; set; }

    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
    private readonly List<(string Phase, double Seconds, double Cpu)> _phases = [];
    private TimeSpan _cpu = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;

    private void Phase(string name)
    {
        var cpu = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
        _phases.Add((name, _clock.Elapsed.TotalSeconds, (cpu - _cpu).TotalSeconds));
        _cpu = cpu;
        _clock.Restart();
    }

    public int Run()
    {
        if (string.IsNullOrEmpty(GroundTruth))
            throw new ArgumentException("eval: --gt <lvis ground-truth json> is required");
        if (string.IsNullOrEmpty(Results))
            throw new ArgumentException("eval: --results <results json> is required");
        if (ApFixed && DetsPerClass <= 0)
            throw new ArgumentException($"eval: --dets-per-class must be positive, got {DetsPerClass}");
        if (Threads == 0 || Threads < -1)
            throw new ArgumentException($"eval: --threads must be -1 (all cores) or positive, got {Threads}");
        string gtPath = GroundTruth, resultsPath = Results;
        foreach (string p in new[] { gtPath, resultsPath })
        {
            if (!File.Exists(p))
                throw new FileNotFoundException($"eval: {p}: no such file", p);
        }
        if (OutDir is not null)
            Directory.CreateDirectory(OutDir);

        var outcome = WithProgress(report => Evaluate(gtPath, resultsPath, report));

        PrintSummary("LVIS " + IouType.ToString().ToLowerInvariant(), outcome.Standard.Summary);
        PrintDiagnostics(outcome.Standard.Diagnostics);
        if (outcome.Fixed is { } fixedResult)
            PrintApFixed(fixedResult);
        if (OutDir is not null)
        {
            ReportFiles.WriteMetrics(Path.Combine(OutDir, ReportFiles.MetricsFile), outcome.Standard.Summary);
            ReportFiles.WritePerCategory(Path.Combine(OutDir, ReportFiles.PerCategoryFile), outcome.Standard);
            if (outcome.Fixed is { } f)
                ReportFiles.WriteMetrics(Path.Combine(OutDir, ReportFiles.ApFixedFile), f.Summary, f.Pooled);
            AnsiConsole.MarkupLineInterpolated($"wrote {Path.Combine(OutDir, ReportFiles.MetricsFile)}, {ReportFiles.PerCategoryFile}{(outcome.Fixed is null ? "" : ", " + ReportFiles.ApFixedFile)}");
        }
        Phase("report");
        if (Timings)
            AnsiConsole.WriteLine("timings: " + string.Join(", ", _phases.Select(p => $"{p.Phase} {p.Seconds:0.000} s (cpu {p.Cpu:0.000} s)")));
        return 0;
    }

    private sealed record Outcome(LvisEvalResult Standard, LvisEvalResult? Fixed);

    /// <summary>Reports (stage, done, total) to the progress display.</summary>
    private delegate void Report(string stage, long done, long total);

    private Outcome Evaluate(string gtPath, string resultsPath, Report report)
    {
        bool segm = IouType == IouType.Segm;
        long gtBytes = new FileInfo(gtPath).Length, resultBytes = new FileInfo(resultsPath).Length;
        var gtProgress = new Progress(b => report("reading ground truth", b, gtBytes));
        var resultsProgress = new Progress(b => report("reading results", b, resultBytes));

        LvisDataset dataset;
        LvisResults results;
        GroundTruthIndex gt;
        if (segm)
        {
            // Segmentations are kept only for (image, category) pairs the federated rule evaluates, which
            // needs the GT index first.
            dataset = LvisDatasetReader.Read(gtPath, new LvisReadOptions { ReadSegmentation = true, Progress = gtProgress });
            gt = new GroundTruthIndex(dataset);
            results = LvisResultsReader.Read(resultsPath, new ResultsReadOptions
            {
                ReadSegmentation = true, KeepSegmentation = gt.IsEvaluated, Progress = resultsProgress,
            });
        }
        else
        {
            // Both files are read at once: the results file is usually the larger one.
            var gtTask = Task.Run(() => LvisDatasetReader.Read(gtPath, new LvisReadOptions { ReadSegmentation = false, Progress = gtProgress }));
            results = LvisResultsReader.Read(resultsPath, new ResultsReadOptions { ReadSegmentation = false, Progress = resultsProgress });
            Phase("read results");
            dataset = gtTask.GetAwaiter().GetResult();
            Phase("read ground truth (rest)");
            gt = new GroundTruthIndex(dataset);
        }
        Phase("index ground truth");
        if (results.Count == 0)
            AnsiConsole.MarkupLineInterpolated($"[yellow]warning:[/] {resultsPath} holds no detections; every category with GT scores 0 (the official API raises an error on an empty list)");

        var evalProgress = new Progress<EvalProgress>(p => report(p.Stage, p.Done, p.Total));
        var standard = LvisEvaluator.Evaluate(gt, results, new LvisEvalOptions
        {
            IouType = IouType, Progress = evalProgress, MaxDegreeOfParallelism = Threads,
        });
        Phase("evaluate");
        LvisEvalResult? fixedResult = null;
        if (ApFixed)
        {
            fixedResult = LvisEvaluator.Evaluate(gt, results, new LvisEvalOptions
            {
                IouType = IouType, MaxDetsPerImage = 0, MaxDetsPerCategory = DetsPerClass, ComputePooled = true,
                Progress = new Progress<EvalProgress>(p => report("AP-fixed", p.Done, p.Total)), MaxDegreeOfParallelism = Threads,
            });
            Phase("evaluate AP-fixed");
        }
        return new Outcome(standard, fixedResult);
    }

    /// <summary>A synchronous IProgress (System.Progress posts to the thread pool, which would reorder reports).</summary>
    private sealed class Progress(Action<long> action) : IProgress<long>
    {
        public void Report(long value) => action(value);
    }

    private sealed class Progress<T>(Action<T> action) : IProgress<T>
    {
        public void Report(T value) => action(value);
    }

    private Outcome WithProgress(Func<Report, Outcome> work)
    {
        if (NoProgress || !AnsiConsole.Profile.Capabilities.Interactive)
            return work((_, _, _) => { });
        Outcome? outcome = null;
        AnsiConsole.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                var gate = new object();
                outcome = work((stage, done, total) =>
                {
                    lock (gate)
                    {
                        if (!tasks.TryGetValue(stage, out var task))
                            tasks[stage] = task = ctx.AddTask(stage, maxValue: Math.Max(1, total));
                        task.Value = Math.Min(done, task.MaxValue);
                    }
                });
            });
        return outcome!;
    }

    private static string Format(double v) => v < 0 ? "-1" : v.ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture);

    private static void PrintSummary(string title, LvisSummary s)
    {
        var table = new Table().Title(title).AddColumns("metric", "IoU", "area", "categories", "value");
        void Row(string m, string iou, string area, string cats, double v) => table.AddRow(m, iou, area, cats, Format(v));
        Row("AP", "0.50:0.95", "all", "all", s.AP);
        Row("AP50", "0.50", "all", "all", s.AP50);
        Row("AP75", "0.75", "all", "all", s.AP75);
        Row("APs", "0.50:0.95", "small", "all", s.APs);
        Row("APm", "0.50:0.95", "medium", "all", s.APm);
        Row("APl", "0.50:0.95", "large", "all", s.APl);
        Row("APr", "0.50:0.95", "all", "rare", s.APr);
        Row("APc", "0.50:0.95", "all", "common", s.APc);
        Row("APf", "0.50:0.95", "all", "frequent", s.APf);
        Row("AR@300", "0.50:0.95", "all", "all", s.AR300);
        Row("ARs@300", "0.50:0.95", "small", "all", s.ARs300);
        Row("ARm@300", "0.50:0.95", "medium", "all", s.ARm300);
        Row("ARl@300", "0.50:0.95", "large", "all", s.ARl300);
        AnsiConsole.Write(table);
    }

    private static void PrintDiagnostics(EvalDiagnostics d)
    {
        AnsiConsole.WriteLine(
            $"{d.Detections} detections: {d.DroppedByImageLimit} beyond 300 per image, {d.UnknownCategory} of unknown categories, "
            + $"{d.ZeroArea} of zero area, {d.NotFederated} of categories neither annotated nor negative in their image; {d.Evaluated} evaluated");
    }

    private void PrintApFixed(LvisEvalResult r)
    {
        var s = r.Summary;
        var p = r.Pooled!;
        var table = new Table().Title($"AP-fixed ({DetsPerClass} detections per category, no per-image limit)").AddColumns("metric", "all", "rare", "common", "frequent");
        table.AddRow("AP-fixed", Format(s.AP), Format(s.APr), Format(s.APc), Format(s.APf));
        table.AddRow("AP-pool", Format(p.All), Format(p.Rare), Format(p.Common), Format(p.Frequent));
        AnsiConsole.Write(table);
        if (r.Diagnostics.DroppedByCategoryLimit == 0)
            AnsiConsole.MarkupLine("[yellow]note:[/] no category reached the per-category budget; AP-fixed is meant for results with that many detections per category");
    }
}
