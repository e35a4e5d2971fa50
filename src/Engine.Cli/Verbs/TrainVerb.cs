// `engine train`: trains the detector a config describes (plus any --set overrides), writing the run's files
// (config.yaml, log.jsonl, checkpoints, metrics.json, per_category_ap.csv, report.html) to OUTPUT_DIR, and
// evaluates on DATASETS.TEST at the end (and every TEST.EVAL_PERIOD iterations). Progress is a live bar on a
// terminal and one line every --log-period iterations when the output is redirected.
using System.Globalization;
using CommandLine;
using Engine.Config;
using Engine.Training;
using Engine.Training.Detection;
using Spectre.Console;

namespace Engine.Cli.Verbs;

[Verb("train", HelpText = "Train a detector from a config file: checkpoints, log.jsonl, metrics.json and report.html in OUTPUT_DIR.")]
public sealed class TrainVerb : DeviceVerb, IVerb
{
    [Option("config", Required = true, HelpText = "Config YAML (e.g. configs/synth/faster_rcnn_r18_fpn.yaml).")]
    public string ConfigPath { get; set; } = "";

    [Option("set", HelpText = "Override a config key: --set SOLVER.MAX_ITER=100 (repeatable).")]
    public IEnumerable<string> Overrides { get; set; } = [];

    [Option("output", HelpText = "Output folder (overrides OUTPUT_DIR).")]
    public string? Output { get; set; }

    [Option("resume", HelpText = "Continue from the last complete checkpoint in the output folder.")]
    public bool Resume { get; set; }

    [Option("log-period", Default = 20, HelpText = "Write a log.jsonl line (and a progress line when redirected) every this many iterations.")]
    public int LogPeriod { get; set; } = 20;

    [Option("no-progress", HelpText = "Print progress lines instead of drawing a progress bar.")]
    public bool NoProgress { get; set; }

    public int Run()
    {
        if (!File.Exists(ConfigPath))
            throw new FileNotFoundException($"train: config file {ConfigPath} does not exist.", ConfigPath);
        if (LogPeriod < 1)
            throw new ArgumentException($"train: --log-period must be ≥ 1, got {LogPeriod}.");
        EngineConfig config;
        try
        {
            config = ConfigLoader.Load(ConfigPath, Overrides);
        }
        catch (ConfigException e)
        {
            throw new ArgumentException($"train: {e.Message}", e);
        }
        config = ApplyDevice("train", config);
        if (Output is not null) config = config with { OutputDir = Output };

        var interactive = !NoProgress && AnsiConsole.Profile.Capabilities.Interactive && !Console.IsOutputRedirected;
        TrainingSummary summary;
        string outputDir;
        if (interactive)
        {
            TrainingSummary? result = null;
            string? dir = null;
            AnsiConsole.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    using var run = DetectorTraining.Build(config, new DetectorTrainingOptions { LogPeriod = LogPeriod, Progress = new SpectreProgressReporter(ctx) });
                    dir = run.OutputDir;
                    result = run.Run(Resume);
                });
            summary = result!;
            outputDir = dir!;
        }
        else
        {
            using var run = DetectorTraining.Build(config, new DetectorTrainingOptions { LogPeriod = LogPeriod, Progress = new ConsoleProgressReporter(Console.Out, LogPeriod) });
            outputDir = run.OutputDir;
            summary = run.Run(Resume);
        }

        var full = Path.GetFullPath(outputDir);
        AnsiConsole.WriteLine($"trained iterations {summary.StartIteration}..{summary.LastIteration}; outputs in {full}");
        if (summary.FinalWeights is { } weights) AnsiConsole.WriteLine($"  weights   {Path.Combine(full, weights)}");
        foreach (var (label, file) in new[] { ("log", TrainingLog.FileName), ("metrics", "metrics.json"), ("per-class", "per_category_ap.csv"), ("results", DetectorTraining.ResultsFile), ("report", "report.html") })
            if (File.Exists(Path.Combine(full, file)))
                AnsiConsole.WriteLine($"  {label,-9} {Path.Combine(full, file)}");
        var metricsPath = Path.Combine(full, "metrics.json");
        if (File.Exists(metricsPath))
        {
            using var metrics = System.Text.Json.JsonDocument.Parse(File.ReadAllText(metricsPath));
            var shown = metrics.RootElement.EnumerateObject()
                .Where(p => p.Name is "AP" or "AP50" or "APr" or "APc" or "APf" or "AR@300" && p.Value.ValueKind == System.Text.Json.JsonValueKind.Number)
                .Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Name} {p.Value.GetDouble():0.0000}"));
            AnsiConsole.WriteLine("last evaluation: " + string.Join("  ", shown));
        }
        return 0;
    }

    /// <summary>One Spectre progress task for the run: iterations done of MAX_ITER, with loss and learning rate in its label.</summary>
    internal sealed class SpectreProgressReporter(ProgressContext context) : IProgressReporter
    {
        private ProgressTask? _task;

        public void Start(long startIteration, long maxIter)
        {
            _task = context.AddTask(startIteration == 0 ? "training" : $"resumed at {startIteration}", maxValue: Math.Max(1, maxIter));
            _task.Value = startIteration;
        }

        public void Report(TrainingProgress p)
        {
            if (_task is null) return;
            _task.Value = p.Iteration + 1;
            _task.Description = string.Create(CultureInfo.InvariantCulture, $"iter {p.Iteration + 1}/{p.MaxIter}  loss {p.TotalLoss:F4}  lr {p.Lr:G4}");
        }

        public void Finish()
        {
            if (_task is not null) _task.Value = _task.MaxValue;
        }
    }
}
