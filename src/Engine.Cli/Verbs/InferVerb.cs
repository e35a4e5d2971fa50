// `engine infer`: runs a trained detector (config + checkpoint weights). Without --input, over an evaluation set:
// writes the LVIS results file and, unless --no-eval, evaluates it with the LVIS evaluator (metrics.json,
// per_category_ap.csv) and prints the official metrics. With --input IMG|DIR, over a JPEG or every .jpg/.jpeg
// of a folder: each image with its detections drawn (boxes, class names, scores) is written to --out as
// <name>.jpg, and all detections to --out/detections.json, in the images' own pixel coordinates.
using System.Globalization;
using CommandLine;
using Engine.Config;
using Engine.Data.Imaging;
using Engine.Data.Imaging.Drawing;
using Engine.Evaluation;
using Engine.Training.Detection;
using Spectre.Console;

namespace Engine.Cli.Verbs;

[Verb("infer", HelpText = "Run a trained detector over a dataset (LVIS results JSON and its evaluation), or with --input over images (drawn detections and detections.json).")]
public sealed class InferVerb : DeviceVerb, IVerb
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

    [Option("batch", Default = 4, HelpText = "Images per inference batch.")]
    public int Batch { get; set; } = 4;

    [Option("input", HelpText = "A JPEG image, or a folder whose .jpg/.jpeg files (not its subfolders) are run, instead of a dataset.")]
    public string? Input { get; set; }

    [Option("out", HelpText = "With --input: folder for the drawn images (<name>.jpg) and detections.json.")]
    public string? Out { get; set; }

    [Option("score-thresh", Default = 0.5, HelpText = "With --input: draw and list detections scoring at least this.")]
    public double ScoreThresh { get; set; } = 0.5;

    [Option("max-dets", Default = 100, HelpText = "With --input: at most this many detections per image (the highest scored).")]
    public int MaxDets { get; set; } = 100;

    [Option("classes", HelpText = "With --input: an LVIS/COCO json whose categories name the classes (default: the DATASETS.TEST annotation file).")]
    public string? Classes { get; set; }

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
        config = ApplyDevice("infer", config);
        if (Input is not null) return RunImages(config);
        if (Out is not null)
            throw new ArgumentException("infer: --out is the folder for --input images; without --input use --output for the dataset results.");
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

    private int RunImages(EngineConfig config)
    {
        if (Out is null)
            throw new ArgumentException("infer: --input needs --out DIR, the folder for the drawn images and detections.json.");
        if (double.IsNaN(ScoreThresh))
            throw new ArgumentException("infer: --score-thresh is NaN; give a number such as 0.5 (0 keeps every detection).");
        if (MaxDets < 1)
            throw new ArgumentException($"infer: --max-dets must be ≥ 1, got {MaxDets}.");
        var inputs = ImageInference.ListImages(Input!);
        var output = Path.GetFullPath(Out);
        var classes = DetectionClasses.Resolve(config, Classes);
        if (classes.CategoryIds is null) AnsiConsole.WriteLine($"note: {classes.Source}.");
        using var inference = ImageInference.Load(config, Weights);
        Directory.CreateDirectory(output);

        var results = new List<ImageDetections>(inputs.Count);
        var written = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var path in inputs)
        {
            var image = Jpeg.Decode(path, PixelOrder.Rgb);
            var detections = inference.Run(image, Path.GetFileName(path)).Top(ScoreThresh, MaxDets);
            // The selection is made; the overlay draws all of it.
            detections.Draw(image, classes.Names, OverlayOptions.ForImage(image.Width, image.Height, double.NegativeInfinity, int.MaxValue));
            // a.jpg and a.jpeg in one folder would both become a.jpg: the second keeps its whole name.
            var name = Path.GetFileNameWithoutExtension(path) + ".jpg";
            if (!written.Add(name)) written.Add(name = Path.GetFileName(path) + ".jpg");
            var target = Path.Combine(output, name);
            if (string.Equals(Path.GetFullPath(path), target, StringComparison.Ordinal))
                throw new ArgumentException($"infer: writing {name} into --out {output} would overwrite the input image {path}; choose another --out folder.");
            File.WriteAllBytes(target, Jpeg.Encode(image, 92));
            results.Add(detections);
            AnsiConsole.WriteLine($"{Path.GetFileName(path)}: {detections.Count} detection{(detections.Count == 1 ? "" : "s")} → {target}");
        }
        var json = Path.Combine(output, "detections.json");
        ImageInference.WriteJson(json, results, classes, ScoreThresh, MaxDets);
        AnsiConsole.WriteLine($"{inputs.Count} image{(inputs.Count == 1 ? "" : "s")} with detections of score ≥ {ScoreThresh.ToString(CultureInfo.InvariantCulture)} in {output}; all detections in {json}");
        return 0;
    }
}
