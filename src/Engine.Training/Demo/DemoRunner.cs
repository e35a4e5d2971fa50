// The embedded long-tail demo as a library, so tests run it without the CLI: make the synthetic long-tailed set
// when the output folder has none, train one detector per requested method on it with the same schedule, evaluate
// each with the LVIS evaluator, and summarise AP, APr, APc, APf and the per-frequency breakdown. A method is a
// config file of configs/synth (baseline = faster_rcnn_r18_fpn.yaml, rfs = faster_rcnn_r18_fpn_rfs.yaml, any
// other name = <name>.yaml); a decoupled method (BAGS, BACL, LogN) is a pipeline of such files, found through
// MODEL.WEIGHTS, whose first stages are shared with the methods that need them. Every stage writes into its own
// folder and resumes from its last checkpoint when the folder already holds a run of the same effective config, so
// an interrupted demo loses no work; a folder holding a different config is refused rather than overwritten.
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

/// <summary>How a stage makes its model: training (from scratch or from an earlier stage's weights), or LogN's
/// statistics pass over an earlier stage's weights (no parameter changes).</summary>
public enum DemoStageKind
{
    Train,
    Calibrate,
}

/// <summary>One step of a method's pipeline: a configs/synth file run in its own folder. <see cref="From"/> names the
/// stage whose final weights it starts from (its MODEL.WEIGHTS is rewritten to that stage's folder), null when it
/// starts from scratch or from an existing file.</summary>
public sealed record DemoStage(string Name, string ConfigFile, EngineConfig Config, DemoStageKind Kind, string? From);

/// <summary>A method and the stages that make it, prerequisites first; the last stage's model is the method's.</summary>
public sealed record DemoMethodPlan(string Method, IReadOnlyList<DemoStage> Stages)
{
    public DemoStage Final => Stages[^1];
}

/// <summary>One stage's cost: wall-clock seconds over every demo call (training and its evaluation, or the statistics
/// pass and its evaluation), iterations trained by this call, and the last logged training speed.</summary>
public sealed record DemoStageResult(string Name, DemoStageKind Kind, string RunDirectory, double Seconds, long Iterations, double ImagesPerSecond);

/// <summary>One method's outcome: the official metrics and the per-category rows of its final stage's evaluation, and
/// what its whole pipeline cost (a prerequisite shared with another method counts in both).</summary>
public sealed record DemoMethodResult(string Method, string ConfigFile, string RunDirectory, IReadOnlyDictionary<string, double> Metrics,
                                      IReadOnlyList<CategoryAp> Categories, double TrainSeconds, long Iterations, double ImagesPerSecond,
                                      IReadOnlyList<DemoStageResult> Stages);

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

    /// <summary>Stage name of a configs/synth file: the method alias for the baseline configs, else the file's stem.</summary>
    public static string StageNameFor(string configFile)
    {
        var file = Path.GetFileName(configFile);
        foreach (var method in KnownMethods)
            if (ConfigFileFor(method) == file) return method;
        return Path.GetFileNameWithoutExtension(file);
    }

    /// <summary>The datasets root of the demo (DATASETS.ROOT), inside the output folder.</summary>
    public static string DatasetsRoot(DemoOptions options) => Path.Combine(options.OutputDirectory, "datasets");

    /// <summary>Checks the method list and resolves every config and prerequisite stage before anything runs, so a typo
    /// fails in the first second. A config whose MODEL.WEIGHTS is the final checkpoint of another configs/synth file's
    /// OUTPUT_DIR gets that config as an earlier stage (BAGS and LogN start from the baseline, BACL's second stage from
    /// its first), run in the demo's output folder rather than read from wherever OUTPUT_DIR points. A single method
    /// of one stage runs in the output folder itself; otherwise each stage has a sub-folder named after it, shared by
    /// every method that needs it.</summary>
    public static IReadOnlyList<DemoMethodPlan> Plan(DemoOptions options)
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
        var loaded = new Dictionary<string, EngineConfig>(StringComparer.Ordinal);
        var plans = new List<DemoMethodPlan>();
        foreach (var method in options.Methods)
        {
            var file = Path.Combine(synthDir, ConfigFileFor(method));
            if (!File.Exists(file))
                throw new ArgumentException($"demo: unknown method '{method}' (no {Path.GetFullPath(file)}); choose from {string.Join(",", KnownMethods.Where(m => File.Exists(Path.Combine(synthDir, ConfigFileFor(m)))))}.");
            var chain = new List<(string File, EngineConfig Config, string? From)>();
            Resolve(method, file, synthDir, options, loaded, chain);
            var single = options.Methods.Count == 1 && chain.Count == 1;
            var stages = new List<DemoStage>();
            foreach (var (stageFile, raw, from) in chain)
            {
                var name = StageNameFor(stageFile);
                var dir = single ? options.OutputDirectory : Path.Combine(options.OutputDirectory, name);
                var weights = from is null ? raw.Model.Weights : Path.Combine(Path.Combine(options.OutputDirectory, from), Checkpointer.WeightsFile(Trainer<ImageBatch>.FinalName));
                var config = raw with
                {
                    OutputDir = dir,
                    Model = raw.Model with { Device = "cpu", Weights = weights },
                    Datasets = raw.Datasets with { Root = DatasetsRoot(options) },
                };
                try
                {
                    config.Validate();
                }
                catch (ConfigException e)
                {
                    throw new ArgumentException($"demo: method '{method}', stage {Path.GetFileName(stageFile)}: {e.Message}", e);
                }
                var lt = config.Model.LongTail;
                var kind = from is not null && lt.Calibrator == Calibrator.Logn && lt.Logn.Mode == LognMode.Posthoc ? DemoStageKind.Calibrate : DemoStageKind.Train;
                stages.Add(new DemoStage(name, stageFile, config, kind, from));
            }
            plans.Add(new DemoMethodPlan(method, stages));
        }
        return plans;
    }

    /// <summary>Appends the stages of <paramref name="file"/> to <paramref name="chain"/>, prerequisites first.</summary>
    private static void Resolve(string method, string file, string synthDir, DemoOptions options, Dictionary<string, EngineConfig> loaded,
                                List<(string File, EngineConfig Config, string? From)> chain)
    {
        if (chain.Any(c => c.File == file))
            throw new ArgumentException($"demo: method '{method}': {Path.GetFileName(file)} starts, through MODEL.WEIGHTS, from its own output.");
        var config = Load(method, file, options, loaded);
        string? from = null;
        var weights = config.Model.Weights;
        if (weights.Length > 0)
        {
            var target = Path.GetFullPath(weights);
            var producer = Directory.EnumerateFiles(synthDir, "*.yaml").Order(StringComparer.Ordinal)
                .Where(f => f != file)
                .FirstOrDefault(f => Path.GetFullPath(Path.Combine(Load(method, f, options, loaded).OutputDir, Checkpointer.WeightsFile(Trainer<ImageBatch>.FinalName))) == target);
            if (producer is not null)
            {
                Resolve(method, producer, synthDir, options, loaded, chain);
                from = StageNameFor(chain[^1].File);
            }
            else if (!File.Exists(weights))
                throw new ArgumentException($"demo: method '{method}': {Path.GetFileName(file)} starts from MODEL.WEIGHTS {weights}, which does not exist and is the final checkpoint of no config in {Path.GetFullPath(synthDir)}.");
        }
        chain.Add((file, config, from));
    }

    private static EngineConfig Load(string method, string file, DemoOptions options, Dictionary<string, EngineConfig> loaded)
    {
        if (loaded.TryGetValue(file, out var config)) return config;
        try
        {
            config = ConfigLoader.Load(file, options.Overrides);
        }
        catch (ConfigException e)
        {
            throw new ArgumentException($"demo: method '{method}': {Path.GetFileName(file)}: {e.Message}", e);
        }
        loaded[file] = config;
        return config;
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

    /// <summary>Runs one planned method's stages and reads its final evaluation. A stage already in
    /// <paramref name="finished"/> (run for an earlier method of the same call) is not run again; stages run here are
    /// added to it. <paramref name="progress"/> receives the trainer's progress, <paramref name="status"/> one line per
    /// stage and the statistics pass's progress.</summary>
    public static DemoMethodResult RunMethod(DemoMethodPlan plan, DemoOptions options, IProgressReporter? progress = null,
                                             IDictionary<string, DemoStageResult>? finished = null, Action<string>? status = null)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(options);
        var stages = new List<DemoStageResult>();
        foreach (var stage in plan.Stages)
        {
            if (finished is not null && finished.TryGetValue(stage.Name, out var done))
            {
                stages.Add(done);
                continue;
            }
            if (plan.Stages.Count > 1)
                status?.Invoke($"stage {stage.Name} ({Path.GetFileName(stage.ConfigFile)}): " + (stage.Kind == DemoStageKind.Train
                    ? $"{stage.Config.Solver.MaxIter} iterations of {stage.Config.Solver.ImsPerBatch} images" : "LogN statistics pass") +
                    (stage.From is null ? "" : $" from {stage.From}") + $" → {stage.Config.OutputDir}");
            var result = stage.Kind == DemoStageKind.Train ? Train(stage, options, progress) : Calibrate(stage, options, status);
            if (finished is not null) finished[stage.Name] = result;
            stages.Add(result);
        }
        var dir = plan.Final.Config.OutputDir;
        var metrics = RunReport.ReadMetrics(Path.Combine(dir, ReportFiles.MetricsFile));
        var categories = RunReport.ReadPerCategoryCsv(Path.Combine(dir, ReportFiles.PerCategoryFile));
        var lastTrain = stages.LastOrDefault(s => s.Kind == DemoStageKind.Train);
        return new DemoMethodResult(plan.Method, plan.Final.ConfigFile, dir, metrics, categories, stages.Sum(s => s.Seconds),
                                    stages.Sum(s => s.Iterations), lastTrain?.ImagesPerSecond ?? double.NaN, stages);
    }

    private static DemoStageResult Train(DemoStage stage, DemoOptions options, IProgressReporter? progress)
    {
        var config = stage.Config;
        var dir = config.OutputDir;
        config = SeedFor(dir, config);
        var resume = !options.Fresh && CanResume(dir, config, stage.Name);
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
        var seconds = AccumulateSeconds(dir, watch.Elapsed.TotalSeconds);
        var trained = summary.LastIteration - summary.StartIteration + 1;
        // The speed of the last logged window: this call's, or for a run finished earlier, its log's last line.
        var last = trained > 0 ? summary.LastLog : LastLogged(dir);
        var imagesPerSecond = last is { Time: > 0 } ? config.Solver.ImsPerBatch / last.Time : double.NaN;
        return new DemoStageResult(stage.Name, stage.Kind, dir, seconds, trained, imagesPerSecond);
    }

    private static LogEntry? LastLogged(string dir)
    {
        var path = Path.Combine(dir, TrainingLog.FileName);
        return File.Exists(path) ? TrainingLog.Read(path).LastOrDefault() : null;
    }

    /// <summary>LogN's statistics pass over the earlier stage's final weights, then the evaluation of the calibrated
    /// checkpoint. A folder holding the same config's calibrated checkpoint and metrics is kept as it is.</summary>
    private static DemoStageResult Calibrate(DemoStage stage, DemoOptions options, Action<string>? status)
    {
        var config = stage.Config;
        var dir = config.OutputDir;
        config = SeedFor(dir, config);
        var calibrated = Path.Combine(dir, DetectorCalibration.CalibratedFile);
        var done = !options.Fresh && CanResume(dir, config, stage.Name) &&
                   File.Exists(calibrated) && File.Exists(Path.Combine(dir, ReportFiles.MetricsFile));
        var watch = Stopwatch.StartNew();
        if (!done)
        {
            if (Directory.Exists(dir))
                ClearRunFiles(dir);
            if (!File.Exists(config.Model.Weights))
                throw new FileNotFoundException($"demo: stage {stage.Name} calibrates {config.Model.Weights}, which does not exist (stage {stage.From} did not finish).", config.Model.Weights);
            var summary = DetectorCalibration.Run(config, config.Model.Weights, dir, (batch, batches) =>
            {
                if (batch == batches || batch % Math.Max(1, options.LogPeriod) == 0) status?.Invoke($"statistics pass: batch {batch}/{batches}");
            });
            AtomicFile.WriteAllText(Path.Combine(dir, Trainer<ImageBatch>.ConfigFile), config.ToYaml());
            DetectorInference.Run(config, summary.WeightsPath, dir);
            RunReport.Write(dir);
        }
        watch.Stop();
        return new DemoStageResult(stage.Name, stage.Kind, dir, AccumulateSeconds(dir, watch.Elapsed.TotalSeconds), 0, double.NaN);
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

    /// <summary>The run folder's file of wall-clock seconds spent on it by every demo call, so a resumed or already
    /// finished run reports its whole cost rather than the last call's.</summary>
    public const string TimeFile = "demo_time.json";

    /// <summary>Adds <paramref name="seconds"/> to the run folder's <see cref="TimeFile"/> and returns the total.</summary>
    private static double AccumulateSeconds(string dir, double seconds)
    {
        var path = Path.Combine(dir, TimeFile);
        double before = 0;
        if (File.Exists(path))
        {
            try
            {
                using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(path));
                before = doc.RootElement.GetProperty("seconds").GetDouble();
            }
            catch (Exception e) when (e is System.Text.Json.JsonException or KeyNotFoundException or InvalidOperationException)
            {
                throw new InvalidDataException($"demo: {Path.GetFullPath(path)} is not a {{\"seconds\": N}} file ({e.Message}); delete it or pass --fresh.", e);
            }
        }
        var total = before + seconds;
        AtomicFile.WriteAllText(path, string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{{\"seconds\": {total:R}}}\n"));
        return total;
    }

    /// <summary>True when <paramref name="dir"/> holds a run whose config.yaml is the effective config of this one.</summary>
    private static bool CanResume(string dir, EngineConfig config, string stage)
    {
        var saved = Path.Combine(dir, Trainer<ImageBatch>.ConfigFile);
        if (!File.Exists(saved)) return false;
        var effective = config.ToYaml();
        if (File.ReadAllText(saved) == effective) return true;
        throw new InvalidOperationException($"demo: {Path.GetFullPath(dir)} holds a run of stage '{stage}' with a different config (its config.yaml differs from this one's); choose another --output, or pass --fresh to start it over.");
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
