// LogN's statistics pass (long-tail-methods.md 2.1): a trained detector runs forward only, in training mode, over
// MODEL.LONG_TAIL.LOGN.STATISTICS_EPOCHS epochs of the training set with the training transforms, the training
// sampler (RFS when the model was trained with it), training-time proposals and the training RoI sampler; the
// logits of every sampled RoI feed the calibrator. EMA statistics continue from the checkpoint's running statistics
// when it has them (else μ = 0, v = 1) with the per-update momentum m_B = 1 − (1 − m)^B for batches of B images;
// exact statistics are the plain mean and unbiased variance over the whole pass. No parameter changes; the
// calibrated checkpoint is the input checkpoint with the calibrator's buffers
// (roi_heads.box_predictor.calibrator.running_mean / running_var) filled, which `engine infer` then uses.
using Engine.Config;
using Engine.Detection.Modeling;
using Engine.LongTail;

namespace Engine.Training.Detection;

/// <summary>What a statistics pass did: the calibrated weights file, the images and RoI rows it saw, and the classes
/// whose logit variance stayed below 1e-6 (section 2.4).</summary>
public sealed record CalibrationSummary(string WeightsPath, long Images, long Rows, IReadOnlyList<int> DegenerateClasses);

public static class DetectorCalibration
{
    /// <summary>The calibrated checkpoint's file name in the output folder.</summary>
    public const string CalibratedFile = "model_calibrated.safetensors";

    /// <param name="progress">called after each batch with (batches done, batches in all).</param>
    public static CalibrationSummary Run(EngineConfig config, string weightsPath, string outputDir, Action<long, long>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        var lt = config.Model.LongTail;
        if (lt.Calibrator != Calibrator.Logn)
            throw new ArgumentException($"DetectorCalibration: MODEL.LONG_TAIL.CALIBRATOR is \"{KeyNames.ValueOf(lt.Calibrator)}\"; a statistics pass calibrates with \"logn\" (e.g. configs/synth/logn.yaml).");
        var train = DetectorTraining.LoadTrainSet(config);
        var c = config.Model.RoiHeads.NumClasses;
        var seed = config.Seed >= 0 ? (ulong)config.Seed : 0;
        var device = DetectorTraining.ResolveDevice(config);
        using var detector = DetectorBuilder.FromConfig(config, new Generator(seed), DetectorWeights.Statistics(train.Records, c));
        DetectorWeights.LoadInitial(detector, weightsPath, []);
        detector.To(device);
        var calibration = detector.RoiHeads.BoxPredictor.Calibration
                          ?? throw new InvalidOperationException("DetectorCalibration: the detector was built without a calibrator.");
        var model = calibration.Calibrator as LogitNormCalibrator
                    ?? throw new InvalidOperationException($"DetectorCalibration: the calibrator is a {calibration.Calibrator.GetType().Name}; the statistics pass fills a LogitNormCalibrator.");
        calibration.Push();

        var batch = config.Solver.ImsPerBatch;
        var exact = lt.Logn.Statistics == LognStatistics.Exact;
        using var exactPass = exact ? new LogitNormCalibrator(c, LogitStatisticsMode.Exact, varianceFloor: lt.Logn.VarianceFloor) : null;
        exactPass?.To(device);   // the pass's statistics on the model's device, like the model's own (Push moved those)
        ILogitCalibrator pass = exactPass ?? model;
        model.Momentum = LogitNormCalibrator.BatchMomentum(lt.Logn.StatisticsMomentum, batch);
        var images = DetectorTraining.EpochImages(config, train.Records, lt.Logn.StatisticsEpochs, seed);
        var batches = (images + batch - 1) / batch;
        long rows = 0;
        var trainable = new DetectorTrainable(detector);
        detector.Train();
        detector.RoiHeads.TrainingLogitsObserver = logits =>
        {
            rows += logits.Size(0);
            pass.Accumulate(logits);
        };
        try
        {
            using var loader = DetectorTraining.TrainingLoader(config, train.Records, batch, seed);
            for (long b = 0; b < batches; b++)
            {
                using var imageBatch = loader.Next() ?? throw new InvalidOperationException($"DetectorCalibration: the training loader ended after {b} of {batches} batches.");
                using (GradMode.NoGrad())
                    foreach (var loss in trainable.Losses(imageBatch).Values) loss.Dispose();
                progress?.Invoke(b + 1, batches);
            }
        }
        finally
        {
            detector.RoiHeads.TrainingLogitsObserver = null;
        }
        if (exactPass is not null)
        {
            using var mean = exactPass.Mean();
            using var variance = exactPass.Variance();
            model.SetStatistics(mean, variance);
        }
        calibration.Pull();

        Directory.CreateDirectory(outputDir);
        var path = Path.Combine(outputDir, CalibratedFile);
        detector.Save(path, new Dictionary<string, string>
        {
            ["calibrated_from"] = Path.GetFullPath(weightsPath),
            ["statistics"] = KeyNames.ValueOf(lt.Logn.Statistics),
            ["images"] = (batches * batch).ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        return new CalibrationSummary(path, batches * batch, rows, model.DegenerateClasses());
    }
}
