// `engine infer`: runs a trained detector (config + checkpoint weights) over an evaluation set, writes the LVIS
// results file and, unless --no-eval, evaluates it with the LVIS evaluator (metrics.json, per_category_ap.csv)
// and prints the official metrics.
using System.Globalization;
using CommandLine;
using Engine.Config;
using Engine.Evaluation;
using Engine.Training.Detection;
using Spectre.Console;

namespace Engine.Cli.Verbs;

[Verb("infer", HelpText = "Run a trained detector over a dataset: LVIS results JSON, and its evaluation (metrics.json, per_category_ap.csv).")]
public sealed class InferVerb : IVerb
{
    [Option("config", Required = true, HelpText = "The config the model was trained with (the run's config.yaml works).")]
    public string ConfigPath { get; set; } = "";

    [Option("weights", Required = true, HelpText = "Checkpoint weights (e.g. OUTPUT_DIR/model_final.safetensors).")]
    public string Weights { get; set; } = "";

    [Option("set", HelpText = "Override a config key: --set MODEL.ROI_HEADS.SCORE_THRESH_TEST=0.05 (repeatable).")]
    public IEnumerable<string> Overrides { get; set; } = [];

    [Option("dataset", HelpText = "Dataset of DATASETS.CATALOG to run on (default: the one DATASETS.TEST names).")]
    public string? Dataset { get; set; }

    [Option("output", HelpText = "Folder for lvis_results.json and the metrics (default: OUTPUT_DIR/inference).")]
    public string? Output { get; set; }

    [Option("no-eval", HelpText = "Only write the results file.")]
    public bool NoEval { get; set; }

    [Option("device", HelpText = "cpu or cuda (overrides MODEL.DEVICE).")]
    public string? Device { get; set; }

    [Option("batch", Default = 4, HelpText = "Images per inference batch.")]
    public int Batch { get; set; } = 4;

    public int Run()
    {
        if (!File.Exists(ConfigPath))
            throw new FileNotFoundException($"infer: config file {ConfigPath} does not exist.", ConfigPath);
        if (Batch < 1)
            throw new ArgumentException($"infer: --batch must be ≥ 1, got {Batch}.");
        EngineConfig config;
        try
        {
            config = ConfigLoader.Load(ConfigPath, Overrides);
        }
        catch (ConfigException e)
        {
            throw new ArgumentException($"infer: {e.Message}", e);
        }
        var device = (Device ?? config.Model.Device).Trim().ToLowerInvariant();
        if (device.StartsWith("cuda", StringComparison.Ordinal))
            throw new NotSupportedException($"infer: device '{device}' asked for, but the CUDA backend is not available yet; run on the CPU with --device cpu.");
        if (device != "cpu")
            throw new ArgumentException($"infer: unknown device '{device}'; use cpu (or cuda once its backend exists).");
        var output = Path.GetFullPath(Output ?? Path.Combine(config.OutputDir, "inference"));

        var result = DetectorInference.Run(config, Weights, output, Dataset, evaluate: !NoEval, batchSize: Batch);
        if (result?.Lvis is { } lvis)
        {
            var table = new Table().Title("LVIS bbox").AddColumns("metric", "value");
            foreach (var (key, value) in lvis.Summary.ToOfficialKeys())
                table.AddRow(key, value < 0 ? "-1" : value.ToString("0.0000", CultureInfo.InvariantCulture));
            AnsiConsole.Write(table);
        }
        AnsiConsole.WriteLine($"results in {Path.Combine(output, DetectorTraining.ResultsFile)}");
        if (!NoEval)
            AnsiConsole.WriteLine($"metrics in {Path.Combine(output, ReportFiles.MetricsFile)}, {Path.Combine(output, ReportFiles.PerCategoryFile)}");
        return 0;
    }
}
