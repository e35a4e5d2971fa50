// `engine calibrate`: LogN's statistics pass (long-tail-methods.md section 2) over the training set with a trained
// checkpoint, forward only; writes model_calibrated.safetensors (the checkpoint plus the calibrator's statistics),
// which `engine infer` with the same config then uses for calibrated scores.
using CommandLine;
using Engine.Config;
using Engine.Training.Detection;
using Spectre.Console;

namespace Engine.Cli.Verbs;

[Verb("calibrate", HelpText = "LogN statistics pass over the training set: writes a calibrated checkpoint for `engine infer`.")]
public sealed class CalibrateVerb : DeviceVerb, IVerb
{
    [Option("config", Required = true, HelpText = "Config with MODEL.LONG_TAIL.CALIBRATOR: logn (e.g. configs/synth/logn.yaml).")]
    public string ConfigPath { get; set; } = "";

    [Option("weights", HelpText = "Trained checkpoint to calibrate (default: MODEL.WEIGHTS of the config).")]
    public string? Weights { get; set; }

    [Option("set", HelpText = "Override a config key: --set MODEL.LONG_TAIL.LOGN.STATISTICS=ema (repeatable).")]
    public IEnumerable<string> Overrides { get; set; } = [];

    [Option("output", HelpText = "Folder for model_calibrated.safetensors (default: OUTPUT_DIR).")]
    public string? Output { get; set; }

    public int Run()
    {
        if (!File.Exists(ConfigPath))
            throw new FileNotFoundException($"calibrate: config file {ConfigPath} does not exist.", ConfigPath);
        EngineConfig config;
        try
        {
            config = ConfigLoader.Load(ConfigPath, Overrides);
        }
        catch (ConfigException e)
        {
            throw new ArgumentException($"calibrate: {e.Message}", e);
        }
        config = ApplyDevice("calibrate", config);
        var weights = Weights ?? config.Model.Weights;
        if (weights.Length == 0)
            throw new ArgumentException("calibrate: no checkpoint to calibrate; pass --weights FILE or set MODEL.WEIGHTS.");
        if (!File.Exists(weights))
            throw new FileNotFoundException($"calibrate: weights file {weights} does not exist.", weights);
        var output = Path.GetFullPath(Output ?? config.OutputDir);

        var summary = DetectorCalibration.Run(config, weights, output, (done, total) =>
        {
            if (done == total || done % 50 == 0) AnsiConsole.WriteLine($"statistics pass: batch {done}/{total}");
        });
        AnsiConsole.WriteLine($"LogN statistics ({KeyNames.ValueOf(config.Model.LongTail.Logn.Statistics)}) over {summary.Images} images, {summary.Rows} RoIs");
        if (summary.DegenerateClasses.Count > 0)
            AnsiConsole.WriteLine($"classes with logit variance below 1e-6 (degenerate): {string.Join(", ", summary.DegenerateClasses)}");
        AnsiConsole.WriteLine($"calibrated checkpoint: {summary.WeightsPath}");
        AnsiConsole.WriteLine($"use it with: engine infer --config {ConfigPath} --weights {summary.WeightsPath}");
        return 0;
    }
}
