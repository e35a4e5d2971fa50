// `engine demo`: the embedded long-tail benchmark, from nothing to AP by frequency group on a CPU. Makes the
// synthetic long-tailed set in the output folder when it is not there, trains the slim ResNet-18 FPN baseline (or
// each method of --methods with the same schedule), evaluates with the LVIS evaluator, prints AP, APr, APc, APf
// with a per-frequency table, and leaves metrics.json, per_category_ap.csv, log.jsonl, checkpoints and report.html
// in the output folder (one sub-folder per method when several run, plus methods.csv and a comparison report).
// Running it again resumes an interrupted run of the same config instead of starting over.
using System.Diagnostics;
using System.Globalization;
using CommandLine;
using Engine.Data.Synthetic;
using Engine.Training;
using Engine.Training.Demo;
using Spectre.Console;

namespace Engine.Cli.Verbs;

[Verb("demo", HelpText = "Train and evaluate on the embedded synthetic long-tail set (CPU, no downloads): AP, APr, APc, APf and report.html.")]
public sealed class DemoVerb : IVerb
{
    [Option("output", Default = "output/demo", HelpText = "Output folder (the synthetic set, runs, metrics.json and report.html go there).")]
    public string Output { get; set; } = "output/demo";

    [Option("methods", Separator = ',', HelpText = "Comma-separated methods to train and compare with the same schedule (baseline, rfs, eql, eqlv2, seesaw, federated, bags, logn, crat, bacl, rio, or all). BAGS and LogN start from the baseline's weights, BACL's second stage from its first; a shared first stage runs once. Default: baseline (the one that fits about 12 minutes on 2 cores).")]
    public IEnumerable<string> Methods { get; set; } = [];

    [Option("set", HelpText = "Override a config key for every method: --set SOLVER.MAX_ITER=200 (repeatable).")]
    public IEnumerable<string> Overrides { get; set; } = [];

    [Option("configs", HelpText = "Configs folder holding synth/*.yaml (default: the one shipped beside the engine).")]
    public string? Configs { get; set; }

    [Option("fresh", HelpText = "Start every method over instead of resuming a run of the same config in the output folder.")]
    public bool Fresh { get; set; }

    [Option("no-progress", HelpText = "Print progress lines instead of drawing a progress bar.")]
    public bool NoProgress { get; set; }

    [Option("log-period", Default = 20, HelpText = "Write a log.jsonl line (and a progress line when redirected) every this many iterations.")]
    public int LogPeriod { get; set; } = 20;

    public int Run()
    {
        if (LogPeriod < 1) throw new ArgumentException($"demo: --log-period must be ≥ 1, got {LogPeriod}.");
        var total = Stopwatch.StartNew();
        var methods = Methods.Select(m => m.Trim().ToLowerInvariant()).Where(m => m.Length > 0).ToList();
        if (methods.Contains("all"))
            methods = methods.Count == 1 ? [.. DemoRunner.KnownMethods] : throw new ArgumentException("demo: --methods all stands alone; it runs every method.");
        var options = new DemoOptions
        {
            OutputDirectory = Path.GetFullPath(Output),
            ConfigsDirectory = Configs ?? ShippedConfigs(),
            Methods = methods.Count == 0 ? [DemoRunner.Baseline] : methods,
            Overrides = Overrides.ToList(),
            Fresh = Fresh,
            LogPeriod = LogPeriod,
        };
        var plans = DemoRunner.Plan(options);

        var generated = DemoRunner.EnsureDataset(options);
        var datasetDir = Path.Combine(DemoRunner.DatasetsRoot(options), DemoRunner.DatasetFolder);
        if (generated is not null)
            AnsiConsole.WriteLine($"synthetic set: {generated.Train.Count} training and {generated.Val.Count} validation images, {generated.Categories.Count} classes, written to {datasetDir}");
        else
            AnsiConsole.WriteLine($"synthetic set: using {datasetDir}");

        var results = new List<DemoMethodResult>();
        var finished = new Dictionary<string, DemoStageResult>(StringComparer.Ordinal);
        foreach (var plan in plans)
        {
            var final = plan.Final;
            AnsiConsole.WriteLine($"[{results.Count + 1}/{plans.Count}] {plan.Method}: " + (plan.Stages.Count == 1
                ? $"{Path.GetFileName(final.ConfigFile)}, {final.Config.Solver.MaxIter} iterations of {final.Config.Solver.ImsPerBatch} images → {final.Config.OutputDir}"
                : $"stages {string.Join(" → ", plan.Stages.Select(s => s.Name + (finished.ContainsKey(s.Name) ? " (done)" : "")))}"));
            var interactive = !NoProgress && AnsiConsole.Profile.Capabilities.Interactive && !Console.IsOutputRedirected;
            DemoMethodResult? result = null;
            if (interactive)
                AnsiConsole.Progress().AutoClear(false)
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                    .Start(ctx => result = DemoRunner.RunMethod(plan, options, new TrainVerb.SpectreProgressReporter(ctx), finished, line => AnsiConsole.WriteLine("  " + line)));
            else
                result = DemoRunner.RunMethod(plan, options, new ConsoleProgressReporter(Console.Out, LogPeriod), finished, line => Console.WriteLine("  " + line));
            results.Add(result!);
            PrintMethod(result!);
        }
        if (results.Count > 1)
        {
            PrintComparison(results);
            var csv = DemoRunner.WriteSummary(options.OutputDirectory, results);
            var report = MethodComparisonReport.Write(options.OutputDirectory, results);
            AnsiConsole.WriteLine($"  summary   {csv}");
            AnsiConsole.WriteLine($"  report    {report}");
        }
        else
        {
            var dir = results[0].RunDirectory;
            foreach (var (label, name) in new[] { ("metrics", "metrics.json"), ("per-class", "per_category_ap.csv"), ("report", RunReport.FileName) })
                AnsiConsole.WriteLine($"  {label,-9} {Path.Combine(dir, name)}");
        }
        AnsiConsole.WriteLine(string.Create(CultureInfo.InvariantCulture, $"demo finished in {total.Elapsed.TotalMinutes:0.0} min"));
        return 0;
    }

    /// <summary>configs/ beside the executable (the build copies the repository's configs there).</summary>
    private static string ShippedConfigs()
    {
        var beside = Path.Combine(AppContext.BaseDirectory, "configs");
        if (Directory.Exists(Path.Combine(beside, "synth"))) return beside;
        var local = Path.GetFullPath("configs");
        if (Directory.Exists(Path.Combine(local, "synth"))) return local;
        throw new DirectoryNotFoundException($"demo: no configs folder beside the engine ({beside}) or in the current folder; pass --configs DIR (the repository's configs/).");
    }

    private static void PrintMethod(DemoMethodResult r)
    {
        var inv = CultureInfo.InvariantCulture;
        AnsiConsole.WriteLine(string.Create(inv,
            $"{r.Method}: AP {DemoRunner.Get(r, "AP"):0.000}  AP50 {DemoRunner.Get(r, "AP50"):0.000}  APr {DemoRunner.Get(r, "APr"):0.000}  APc {DemoRunner.Get(r, "APc"):0.000}  APf {DemoRunner.Get(r, "APf"):0.000}  ({r.Iterations} iterations trained by this call; {Cost(r)}{(double.IsFinite(r.ImagesPerSecond) ? $", {r.ImagesPerSecond:0.0} images/s" : "")})"));
        var table = new Table().Border(TableBorder.Rounded).Title($"{r.Method}: box AP by frequency group")
            .AddColumn("group").AddColumn(new TableColumn("classes").RightAligned())
            .AddColumn(new TableColumn("training instances").RightAligned()).AddColumn(new TableColumn("AP").RightAligned());
        foreach (var row in DemoRunner.ByFrequency(r.Categories))
            table.AddRow(row.Frequency switch { 'r' => "rare (1–10 images)", 'c' => "common (11–100)", _ => "frequent (>100)" },
                         row.Categories.ToString(inv), row.TrainingInstances.ToString(inv), double.IsNaN(row.Ap) ? "-" : row.Ap.ToString("0.000", inv));
        AnsiConsole.Write(table);
    }

    /// <summary>"10.5 min" for one stage, "baseline 10.5 + logn 1.2 = 11.7 min" for a pipeline.</summary>
    private static string Cost(DemoMethodResult r) => r.Stages.Count == 1
        ? string.Create(CultureInfo.InvariantCulture, $"{r.TrainSeconds / 60:0.0} min")
        : string.Join(" + ", r.Stages.Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.Name} {s.Seconds / 60:0.0}"))) +
          string.Create(CultureInfo.InvariantCulture, $" = {r.TrainSeconds / 60:0.0} min");

    private static void PrintComparison(IReadOnlyList<DemoMethodResult> results)
    {
        var inv = CultureInfo.InvariantCulture;
        var table = new Table().Border(TableBorder.Rounded).Title("box AP on the synthetic long-tail set, same schedule per method")
            .AddColumn("method");
        foreach (var k in new[] { "AP", "AP50", "APr", "APc", "APf" }) table.AddColumn(new TableColumn(k).RightAligned());
        table.AddColumn(new TableColumn("minutes").RightAligned());
        foreach (var r in results)
            table.AddRow([r.Method, .. new[] { "AP", "AP50", "APr", "APc", "APf" }.Select(k => DemoRunner.Get(r, k).ToString("0.000", inv)), (r.TrainSeconds / 60).ToString("0.0", inv)]);
        AnsiConsole.Write(table);
    }
}
