// The embedded long-tail demo as a library, so tests run it without the CLI: make the synthetic long-tailed set
// when the output folder has none, train one detector per requested method on it with the same schedule, evaluate
// each with the LVIS evaluator, and summarise AP, APr, APc, APf and the per-frequency breakdown. A method is a
// config file of configs/synth (baseline = faster_rcnn_r18_fpn.yaml, rfs = faster_rcnn_r18_fpn_rfs.yaml, any
// other name = <name>.yaml). Every run writes into its own folder and resumes from its last checkpoint when the
// folder already holds a run of the same effective config, so an interrupted demo loses no work; a folder holding a
// different config is refused rather than overwritten.
using System.Diagnostics;
using Engine.Config;
using Engine.Data.Transforms;
using Engine.Data.Synthetic;
using Engine.Evaluation;
using Engine.Training.Detection;

namespace Engine.Training.Demo;

/// <summary>What to run. <see cref="ConfigsDirectory"/> holds the configs tree (its synth/ folder is read).</summary>
public sealed record DemoOptions
{
    public required string OutputDirectory { get; init; }

    public required string ConfigsDirectory { get; init; }

    /// <summary>Method names in the order they run (see <see cref="DemoRunner.ConfigFileFor"/>).</summary>
    public IReadOnlyList<string> Methods { get; init; } = [DemoRunner.Baseline];

    /// <summary>Config overrides applied to every method (`--set` syntax).</summary>
    public IReadOnlyList<string> Overrides { get; init; } = [];

    /// <summary>The synthetic set to generate when the output folder has none (its folder is set by the runner).</summary>
    public SyntheticOptions? Synthetic { get; init; }

    /// <summary>Start every method over instead of resuming a run of the same config.</summary>
    public bool Fresh { get; init; }

    public int LogPeriod { get; init; } = 20;
}

/// <summary>One method's outcome: the official metrics and the per-category rows of its final evaluation.</summary>
public sealed record DemoMethodResult(string Method, string ConfigFile, string RunDirectory, IReadOnlyDictionary<string, double> Metrics,
                                      IReadOnlyList<CategoryAp> Categories, double TrainSeconds, long Iterations, double ImagesPerSecond);

/// <summary>AP over the categories of one frequency group (ignoring categories without ground truth, as the evaluator does).</summary>
public sealed record FrequencyRow(char Frequency, int Categories, long TrainingInstances, double Ap);

public static class DemoRunner
{
    public const string Baseline = "baseline";
    public const string DatasetFolder = "synth_lt";
    public const string SummaryFile = "methods.csv";

    /// <summary>The methods of the long-tail benchmark table, in its order.</summary>
    public static IReadOnlyList<string> KnownMethods { get; } = ["baseline", "rfs", "eql", "eqlv2", "seesaw", "federated", "bags", "logn", "crat", "bacl", "rio"];

    /// <summary>configs/synth file of a method.</summary>
    public static string ConfigFileFor(string method) => method switch
    {
        Baseline => "faster_rcnn_r18_fpn.yaml",
        "rfs" => "faster_rcnn_r18_fpn_rfs.yaml",
        _ => method + ".yaml",
    };

    /// <summary>Folder of a method's run: the output folder itself for a single method, a sub-folder per method otherwise.</summary>
    public static string RunDirectory(DemoOptions options, string method) =>
        options.Methods.Count == 1 ? options.OutputDirectory : Path.Combine(options.OutputDirectory, method);

    /// <summary>The datasets root of the demo (DATASETS.ROOT), inside the output folder.</summary>
    public static string DatasetsRoot(DemoOptions options) => Path.Combine(options.OutputDirectory, "datasets");

    /// <summary>Checks the method list and resolves every config before anything runs, so a typo fails in the first second.</summary>
    public static IReadOnlyList<(string Method, string ConfigFile, EngineConfig Config)> Plan(DemoOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Methods.Count == 0)
            throw new ArgumentException($"demo: no method given; choose from {string.Join(",", KnownMethods)}.");
        var duplicate = options.Methods.GroupBy(m => m, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new ArgumentException($"demo: method '{duplicate.Key}' is listed twice.");
        var synthDir = Path.Combine(options.ConfigsDirectory, "synth");
        if (!Directory.Exists(synthDir))
            throw new DirectoryNotFoundException($"demo: the configs folder {Path.GetFullPath(synthDir)} does not exist; the demo reads its method configs there.");
        var plan = new List<(string, string, EngineConfig)>();
        foreach (var method in options.Methods)
        {
            var file = Path.Combine(synthDir, ConfigFileFor(method));
            if (!File.Exists(file))
                throw new ArgumentException($"demo: unknown method '{method}' (no {Path.GetFullPath(file)}); choose from {string.Join(",", KnownMethods.Where(m => File.Exists(Path.Combine(synthDir, ConfigFileFor(m)))))}.");
            EngineConfig config;
            try
            {
                config = ConfigLoader.Load(file, options.Overrides);
            }
            catch (ConfigException e)
            {
                throw new ArgumentException($"demo: method '{method}': {e.Message}", e);
            }
            config = config with
            {
                OutputDir = RunDirectory(options, method),
                Model = config.Model with { Device = "cpu" },
                Datasets = config.Datasets with { Root = DatasetsRoot(options) },
            };
            config.Validate();
            plan.Add((method, file, config));
        }
        return plan;
    }

    /// <summary>Generates the synthetic set under the output folder unless its train.json and val.json are there.
    /// Returns the generated dataset's summary, or null when an existing set was kept.</summary>
    public static SyntheticDataset? EnsureDataset(DemoOptions options)
    {
        var dir = Path.Combine(DatasetsRoot(options), DatasetFolder);
        if (File.Exists(Path.Combine(dir, "train.json")) && File.Exists(Path.Combine(dir, "val.json"))) return null;
        var synthetic = (options.Synthetic ?? new SyntheticOptions { OutputDirectory = dir }) with { OutputDirectory = Path.GetFullPath(dir) };
        return SyntheticDataset.Generate(synthetic);
    }

    /// <summary>Trains and evaluates one planned method. <paramref name="progress"/> receives the trainer's progress.</summary>
    public static DemoMethodResult RunMethod(string method, string configFile, EngineConfig config, DemoOptions options, IProgressReporter? progress = null)
    {
        var dir = config.OutputDir;
        config = SeedFor(dir, config);
        var resume = !options.Fresh && CanResume(dir, config, method);
        if (!resume && Directory.Exists(dir))
            ClearRunFiles(dir);
        var watch = Stopwatch.StartNew();
        TrainingSummary summary;
        using (var run = DetectorTraining.Build(config, new DetectorTrainingOptions { LogPeriod = options.LogPeriod, Progress = progress ?? NullProgressReporter.Instance }))
        {
            summary = run.Run(resume);
        }
        if (!File.Exists(Path.Combine(dir, ReportFiles.MetricsFile)))
        {
            // The run finished before its evaluation did: evaluate the final weights now.
            var final = Path.Combine(dir, Checkpointer.WeightsFile(Trainer<ImageBatch>.FinalName));
            DetectorInference.Run(config, final, dir);
            RunReport.Write(dir);
        }
        watch.Stop();
        var metrics = RunReport.ReadMetrics(Path.Combine(dir, ReportFiles.MetricsFile));
        var categories = RunReport.ReadPerCategoryCsv(Path.Combine(dir, ReportFiles.PerCategoryFile));
        var trained = summary.LastIteration - summary.StartIteration + 1;
        var imagesPerSecond = trained > 0 && summary.LastLog is { } last && last.Time > 0
            ? config.Solver.ImsPerBatch / last.Time : double.NaN;
        return new DemoMethodResult(method, configFile, dir, metrics, categories, watch.Elapsed.TotalSeconds, trained, imagesPerSecond);
    }

    /// <summary>AP by frequency group from the per-category rows.</summary>
    public static IReadOnlyList<FrequencyRow> ByFrequency(IReadOnlyList<CategoryAp> categories) =>
        new[] { 'r', 'c', 'f' }.Select(f =>
        {
            var rows = categories.Where(c => c.Frequency == f).ToArray();
            var evaluated = rows.Where(c => c.Ap >= 0).ToArray();
            return new FrequencyRow(f, rows.Length, rows.Sum(c => c.InstanceCount), evaluated.Length == 0 ? double.NaN : evaluated.Average(c => c.Ap));
        }).ToList();

    /// <summary>Writes methods.csv (one row per method: AP, APr, APc, APf, AP50, training seconds) atomically.</summary>
    public static string WriteSummary(string outputDirectory, IReadOnlyList<DemoMethodResult> results)
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        var lines = new List<string> { "method,config,AP,AP50,APr,APc,APf,train_seconds,images_per_second" };
        foreach (var r in results)
            lines.Add(string.Join(',', r.Method, Path.GetFileName(r.ConfigFile), Get(r, "AP").ToString("R", inv), Get(r, "AP50").ToString("R", inv),
                                  Get(r, "APr").ToString("R", inv), Get(r, "APc").ToString("R", inv), Get(r, "APf").ToString("R", inv),
                                  r.TrainSeconds.ToString("F1", inv), r.ImagesPerSecond.ToString("F2", inv)));
        var path = Path.Combine(outputDirectory, SummaryFile);
        Directory.CreateDirectory(outputDirectory);
        AtomicFile.WriteAllText(path, string.Join('\n', lines) + "\n");
        return path;
    }

    public static double Get(DemoMethodResult r, string key) => r.Metrics.TryGetValue(key, out var v) ? v : double.NaN;

    /// <summary>A config with SEED &lt; 0 takes the seed of the run already in <paramref name="dir"/> (so it can resume), or a fresh one.</summary>
    private static EngineConfig SeedFor(string dir, EngineConfig config)
    {
        if (config.Seed >= 0) return config;
        var saved = Path.Combine(dir, Trainer<ImageBatch>.ConfigFile);
        if (File.Exists(saved))
        {
            try
            {
                var previous = ConfigLoader.Load(saved, []);
                if (previous.Seed >= 0) return config with { Seed = previous.Seed };
            }
            catch (ConfigException)
            {
                // An unreadable config.yaml cannot be resumed from; CanResume reports the mismatch.
            }
        }
        return SolverSetup.ResolveSeed(config);
    }

    /// <summary>True when <paramref name="dir"/> holds a run whose config.yaml is the effective config of this one.</summary>
    private static bool CanResume(string dir, EngineConfig config, string method)
    {
        var saved = Path.Combine(dir, Trainer<ImageBatch>.ConfigFile);
        if (!File.Exists(saved)) return false;
        var effective = config.ToYaml();
        if (File.ReadAllText(saved) == effective) return true;
        throw new InvalidOperationException($"demo: {Path.GetFullPath(dir)} holds a run of method '{method}' with a different config (its config.yaml differs from this one's); choose another --output, or pass --fresh to start it over.");
    }

    /// <summary>Removes a previous run's checkpoints, log and metrics (not the dataset, not other methods' folders).</summary>
    private static void ClearRunFiles(string dir)
    {
        foreach (var file in Directory.EnumerateFiles(dir))
        {
            var name = Path.GetFileName(file);
            if (name.EndsWith(".safetensors", StringComparison.Ordinal) || name.EndsWith(".json", StringComparison.Ordinal) ||
                name.EndsWith(".jsonl", StringComparison.Ordinal) || name.EndsWith(".csv", StringComparison.Ordinal) || name.EndsWith(".html", StringComparison.Ordinal) ||
                name is "last_checkpoint" or "config.yaml")
                File.Delete(file);
        }
    }
}
