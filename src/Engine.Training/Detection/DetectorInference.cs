// Inference and evaluation of a trained detector outside a training run: the detector the config describes,
// the weights of a checkpoint (model_final.safetensors or a periodic one), and the evaluation set run through
// the same code path as the trainer's evaluation, so the results file and metrics equal those the run wrote.
using Engine.Config;
using Engine.Detection.Modeling;
using Engine.Detection.Modeling.MetaArch;
using Engine.Serialization;

namespace Engine.Training.Detection;

public static class DetectorInference
{
    /// <summary>Writes lvis_results.json into <paramref name="outputDir"/> and, with <paramref name="evaluate"/>,
    /// metrics.json and per_category_ap.csv; returns the evaluation (null without it).</summary>
    public static EvaluationResult? Run(EngineConfig config, string weightsPath, string outputDir, string? datasetName = null, bool evaluate = true, int batchSize = 4)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (!File.Exists(weightsPath))
            throw new FileNotFoundException($"DetectorInference: weights file {weightsPath} does not exist (a run writes model_final.safetensors into its OUTPUT_DIR).", weightsPath);
        var test = DetectorTraining.LoadTestSet(config, datasetName);
        using var detector = Load(config, weightsPath);
        Directory.CreateDirectory(outputDir);
        var resultsPath = Path.Combine(outputDir, DetectorTraining.ResultsFile);
        if (!evaluate)
        {
            DetectorTraining.WriteResults(detector, config, test, resultsPath, batchSize);
            return null;
        }
        var result = DetectorTraining.Evaluate(detector, config, test, resultsPath, batchSize);
        MetricsFiles.Write(outputDir, -1, result);
        return result;
    }

    /// <summary>The detector the config describes with the checkpoint's weights (every key must match). Components
    /// whose layout follows the training set's class counts (BAGS groups) get the statistics of DATASETS.TRAIN.</summary>
    public static GeneralizedRcnn Load(EngineConfig config, string weightsPath)
    {
        ArgumentNullException.ThrowIfNull(config);
        var statistics = LongTailComponents.NeedsClassStatistics(config.Model.LongTail)
            ? DetectorWeights.Statistics(DetectorTraining.LoadTrainSet(config).Records, config.Model.RoiHeads.NumClasses)
            : null;
        var device = DetectorTraining.ResolveDevice(config);
        // The initial values are replaced by the checkpoint; the seed only has to be a valid one.
        var detector = DetectorBuilder.FromConfig(config, new Generator(config.Seed >= 0 ? (ulong)config.Seed : 0), statistics);
        try
        {
            if (detector.RoiHeads.BoxPredictor.Calibration is not null)
            {
                using var file = SafeTensorsFile.Open(weightsPath);
                if (!file.Entries.Any(e => e.Name.StartsWith(DetectorWeights.CalibratorPrefix, StringComparison.Ordinal)))
                    throw new InvalidOperationException($"DetectorInference: MODEL.LONG_TAIL.CALIBRATOR is set, but {weightsPath} holds no calibrator statistics ({DetectorWeights.CalibratorPrefix}*); " +
                                                        "run `engine calibrate --config <this config> --weights <that checkpoint>` and use the calibrated checkpoint it writes.");
            }
            detector.Load(weightsPath);
            detector.To(device);
            return detector;
        }
        catch
        {
            detector.Dispose();
            throw;
        }
    }
}
