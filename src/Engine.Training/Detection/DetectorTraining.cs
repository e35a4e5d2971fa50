// Everything a detector training run is built from, read off the config: the training records (DATASETS.TRAIN
// through DATASETS.CATALOG), the transforms (INPUT: ResizeShortestEdge and the horizontal flip), the sampler
// (DATALOADER.SAMPLER_TRAIN, REPEAT_THRESHOLD), the DataLoader, the detector (DetectorBuilder, with the long-tail
// components of MODEL.LONG_TAIL and the training set's class statistics), its starting weights and frozen parts
// (MODEL.WEIGHTS, REINIT_MODULES, TRAINABLE_MODULES), the solver and the Trainer, plus the evaluation the trainer calls: inference over DATASETS.TEST in eval mode, the detections
// written as an LVIS results file (category ids mapped back from class indices, boxes XYWH in original image
// pixels) and scored by the LVIS evaluator against the test annotation file.
// The data layer delivers raw pixels in INPUT.FORMAT order; the detector subtracts PIXEL_MEAN and divides by
// PIXEL_STD itself (as detectron2's GeneralizedRCNN does), so the loader's normalization is the identity.
using Engine.Config;
using Engine.Data.Imaging;
using Engine.Data.Loading;
using Engine.Data.Records;
using Engine.Data.Samplers;
using Engine.Data.Transforms;
using Engine.Detection;
using Engine.Detection.Modeling;
using Engine.Detection.Modeling.MetaArch;
using Engine.Evaluation;
using Engine.Lvis;
using Engine.Optim;

namespace Engine.Training.Detection;

/// <summary>Settings of a run that are not part of the config.</summary>
public sealed record DetectorTrainingOptions
{
    /// <summary>Write a log.jsonl line every this many iterations.</summary>
    public int LogPeriod { get; init; } = 20;

    public IProgressReporter Progress { get; init; } = NullProgressReporter.Instance;

    /// <summary>Images per inference batch during evaluation.</summary>
    public int EvalBatchSize { get; init; } = 4;
}

/// <summary>A built run: the detector, its optimizer and the trainer. Dispose frees the detector and optimizer.</summary>
public sealed class DetectorTrainingRun : IDisposable
{
    internal DetectorTrainingRun(EngineConfig config, GeneralizedRcnn detector, Sgd optimizer, Trainer<ImageBatch> trainer, LvisRecordSet train, LvisRecordSet? test)
    {
        Config = config;
        Detector = detector;
        Optimizer = optimizer;
        Trainer = trainer;
        TrainSet = train;
        TestSet = test;
    }

    /// <summary>The effective config (SEED resolved, OUTPUT_DIR as written to config.yaml).</summary>
    public EngineConfig Config { get; }
    public GeneralizedRcnn Detector { get; }
    public Sgd Optimizer { get; }
    public Trainer<ImageBatch> Trainer { get; }
    public LvisRecordSet TrainSet { get; }

    /// <summary>The evaluation set (null when DATASETS.TEST is empty: no evaluation).</summary>
    public LvisRecordSet? TestSet { get; }

    public string OutputDir => Config.OutputDir;

    public TrainingSummary Run(bool resume = false) => Trainer.Run(resume);

    public void Dispose()
    {
        Optimizer.Dispose();
        Detector.Dispose();
    }
}

public static class DetectorTraining
{
    /// <summary>The LVIS results file the evaluation writes into OUTPUT_DIR.</summary>
    public const string ResultsFile = "lvis_results.json";

    public static DetectorTrainingRun Build(EngineConfig config, DetectorTrainingOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        options ??= new DetectorTrainingOptions();
        if (options.EvalBatchSize < 1)
            throw new ArgumentException($"DetectorTraining.Build: EvalBatchSize {options.EvalBatchSize} must be ≥ 1.");
        config.Validate();
        config = SolverSetup.ResolveSeed(config);
        var seed = (ulong)config.Seed;
        var device = ResolveDevice(config);

        var train = LoadSet(config, config.Datasets.Train, "DATASETS.TRAIN", forTraining: true)
                    ?? throw new ArgumentException("DetectorTraining.Build: DATASETS.TRAIN is empty; name one dataset of DATASETS.CATALOG to train on.");
        if (train.Records.Count == 0)
            throw new ArgumentException($"DetectorTraining.Build: the training set {config.Datasets.Train[0]} has no image with annotations.");
        CheckClasses(config, train, "DATASETS.TRAIN");
        var test = LoadSet(config, config.Datasets.Test, "DATASETS.TEST", forTraining: false);
        if (test is not null) CheckClasses(config, test, "DATASETS.TEST");

        var pipeline = TrainingTransforms(config.Input);
        var loaderOptions = LoaderOptions(config, config.Solver.ImsPerBatch, seed);
        var records = train.Records;
        var sampler = config.Dataloader;
        // The loader is made when the run starts; building its sampler now rejects an unsupported one before any file is written.
        _ = Sampler(sampler, records, seed);
        DataLoader MakeLoader() => new(records, Sampler(sampler, records, seed), pipeline, loaderOptions);

        var detector = DetectorBuilder.FromConfig(config, new Generator(seed), DetectorWeights.Statistics(records, config.Model.RoiHeads.NumClasses));
        Sgd? optimizer = null;
        try
        {
            DetectorWeights.Prepare(detector, config.Model);
            // Built and loaded on the host, then moved: the optimizer's momentum buffers are made beside the parameters.
            detector.To(device);
            optimizer = SolverSetup.BuildOptimizer(detector, config.Solver);
            var model = new DetectorTrainable(detector);
            var resultsPath = Path.Combine(config.OutputDir, ResultsFile);
            var evalConfig = config;
            var trainer = new Trainer<ImageBatch>(model, optimizer, SolverSetup.BuildSchedule(config.Solver),
                                                  position => DataLoaderBatchSource.Open(MakeLoader, position),
                                                  TrainerOptions.FromConfig(config, options.LogPeriod))
            {
                Evaluate = test is null ? null : _ =>
                {
                    var result = Evaluate(detector, evalConfig, test, resultsPath, options.EvalBatchSize);
                    // Example images for report.html, which the trainer rewrites right after this evaluation.
                    ReportDetections.WriteForTestSet(evalConfig.OutputDir, detector, evalConfig, test);
                    return result;
                },
                Progress = options.Progress,
            };
            return new DetectorTrainingRun(config, detector, optimizer, trainer, train, test);
        }
        catch
        {
            optimizer?.Dispose();
            detector.Dispose();
            throw;
        }
    }

    /// <summary>Inference over <paramref name="test"/> in eval mode (the detector is put back in training mode after),
    /// the detections written to <paramref name="resultsPath"/> in the LVIS results format, and the LVIS evaluation of
    /// that file against the test set's annotations.</summary>
    public static EvaluationResult Evaluate(GeneralizedRcnn detector, EngineConfig config, LvisRecordSet test, string resultsPath, int batchSize = 4)
    {
        ArgumentNullException.ThrowIfNull(detector);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(test);
        WriteResults(detector, config, test, resultsPath, batchSize);
        var results = LvisResultsReader.Read(resultsPath);
        var lvis = LvisEvaluator.Evaluate(new GroundTruthIndex(test.Dataset), results, new LvisEvalOptions { IouType = IouType.Bbox });
        var metrics = lvis.Summary.ToOfficialKeys().ToDictionary(kv => kv.Key, kv => kv.Value);
        return new EvaluationResult(metrics, lvis);
    }

    /// <summary>Runs the detector over every image of <paramref name="test"/> and writes its detections as a JSON list of
    /// {image_id, category_id, bbox [x, y, w, h] in original pixels, score}.</summary>
    public static void WriteResults(GeneralizedRcnn detector, EngineConfig config, LvisRecordSet test, string resultsPath, int batchSize = 4)
    {
        if (batchSize < 1) throw new ArgumentException($"DetectorTraining.WriteResults: batch size {batchSize} must be ≥ 1.");
        var categoryIds = test.CategoryIds;
        var wasTraining = detector.IsTraining;
        detector.Eval();
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(resultsPath))!);
            var temp = resultsPath + ".tmp";
            using (var writer = new LvisResultsWriter(temp))
            {
                if (test.Records.Count > 0)
                {
                    using var loader = new DataLoader(test.Records, new InferenceSampler(test.Records.Count), InferenceTransforms(config.Input),
                                                      LoaderOptions(config, batchSize, 0));
                    Span<double> xywh = stackalloc double[4];
                    while (loader.Next() is { } batch)
                        using (batch)
                        using (GradMode.NoGrad())
                        {
                            using var images = new ImageList(batch.Images.To(detector.Device), batch.ImageSizes, batch.OriginalSizes);
                            var detections = detector.Inference(images);
                            try
                            {
                                for (var i = 0; i < detections.Count; i++)
                                {
                                    var d = detections[i];
                                    var boxes = d.PredBoxes!.ToFloatArray();
                                    var scores = d.Scores!.ToFloatArray();
                                    var classes = d.PredClasses!.ToInt64Array();
                                    for (var k = 0; k < scores.Length; k++)
                                    {
                                        if (classes[k] < 0 || classes[k] >= categoryIds.Length)
                                            throw new InvalidOperationException($"DetectorTraining.WriteResults: the detector predicted class {classes[k]} for image {batch.ImageIds[i]}, but the test set has {categoryIds.Length} categories; MODEL.ROI_HEADS.NUM_CLASSES must match it.");
                                        xywh[0] = boxes[4 * k];
                                        xywh[1] = boxes[4 * k + 1];
                                        xywh[2] = boxes[4 * k + 2] - boxes[4 * k];
                                        xywh[3] = boxes[4 * k + 3] - boxes[4 * k + 1];
                                        writer.Write(batch.ImageIds[i], categoryIds[classes[k]], xywh, scores[k]);
                                    }
                                }
                            }
                            finally
                            {
                                foreach (var d in detections) d.Dispose();
                            }
                        }
                }
                writer.Finish();
            }
            File.Move(temp, resultsPath, overwrite: true);
        }
        finally
        {
            detector.Train(wasTraining);
        }
    }

    /// <summary>MODEL.DEVICE, checked to have a backend in this process: a program registers the CUDA backends itself
    /// (`engine train --device cuda` does), so a cuda device without them is refused before anything is built or written.</summary>
    public static Device ResolveDevice(EngineConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var device = Device.Parse(config.Model.Device);
        if (device.Kind == DeviceKind.Cuda && !Backends.IsCudaRegistered)
            throw new NotSupportedException($"DetectorTraining: MODEL.DEVICE is {device}, but no CUDA backend is registered in this process " +
                                            "(`engine train --device cuda` registers it; a program calls CudaOpsRegistration.TryRegister of Engine.Cuda.Ops first); " +
                                            "or set MODEL.DEVICE=cpu.");
        return device;
    }

    /// <summary>The training set DATASETS.TRAIN names (its records as the training loader reads them).</summary>
    public static LvisRecordSet LoadTrainSet(EngineConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var train = LoadSet(config, config.Datasets.Train, "DATASETS.TRAIN", forTraining: true)
                    ?? throw new ArgumentException("DetectorTraining: DATASETS.TRAIN is empty; name one dataset of DATASETS.CATALOG to train on.");
        CheckClasses(config, train, "DATASETS.TRAIN");
        return train;
    }

    /// <summary>A loader over the training records with the training transforms and DATALOADER.SAMPLER_TRAIN, batches of
    /// <paramref name="batchSize"/> images (a statistics pass sees what training saw).</summary>
    public static DataLoader TrainingLoader(EngineConfig config, IReadOnlyList<DatasetRecord> records, int batchSize, ulong seed) =>
        new(records, Sampler(config.Dataloader, records, seed), TrainingTransforms(config.Input), LoaderOptions(config, batchSize, seed));

    /// <summary>Images in <paramref name="epochs"/> epochs of DATALOADER.SAMPLER_TRAIN over the records (RFS epochs are longer).</summary>
    public static long EpochImages(EngineConfig config, IReadOnlyList<DatasetRecord> records, int epochs, ulong seed) => Sampler(config.Dataloader, records, seed) switch
    {
        TrainingSampler => (long)records.Count * epochs,
        RepeatFactorTrainingSampler rfs => Enumerable.Range(0, epochs).Sum(e => (long)rfs.Epoch(e).Length),
        var other => throw new ArgumentException($"DetectorTraining: the epoch length of sampler {other.GetType().Name} is unknown."),
    };

    /// <summary>ResizeShortestEdge(MIN_SIZE_TRAIN, MAX_SIZE_TRAIN) then the horizontal flip of INPUT.RANDOM_FLIP.</summary>
    public static TransformPipeline TrainingTransforms(InputConfig input)
    {
        if (input.MinSizeTrainSampling != MinSizeSampling.Choice)
            throw new ArgumentException($"DetectorTraining: INPUT.MIN_SIZE_TRAIN_SAMPLING '{input.MinSizeTrainSampling}' is not supported by the data layer; use 'choice' (one of MIN_SIZE_TRAIN per image).");
        var flip = input.RandomFlip switch
        {
            RandomFlip.Horizontal => 0.5,
            RandomFlip.None => 0.0,
            _ => throw new ArgumentException($"DetectorTraining: INPUT.RANDOM_FLIP '{input.RandomFlip}' is not supported; use 'horizontal' or 'none'."),
        };
        return TransformPipeline.Training(input.MinSizeTrain.ToArray(), input.MaxSizeTrain, flip);
    }

    /// <summary>ResizeShortestEdge(MIN_SIZE_TEST, MAX_SIZE_TEST); MIN_SIZE_TEST = 0 keeps the stored size.</summary>
    public static TransformPipeline InferenceTransforms(InputConfig input) =>
        input.MinSizeTest == 0 ? new TransformPipeline([]) : TransformPipeline.Inference(input.MinSizeTest, input.MaxSizeTest);

    private static DataLoaderOptions LoaderOptions(EngineConfig config, int batchSize, ulong seed)
    {
        var order = config.Input.Format == PixelFormat.BGR ? PixelOrder.Bgr : PixelOrder.Rgb;
        return new DataLoaderOptions
        {
            BatchSize = batchSize,
            // NUM_WORKERS 0 means "load on the training thread"; the loader always uses at least one thread.
            Workers = Math.Max(1, config.Dataloader.NumWorkers),
            Seed = seed,
            DecodeOrder = order,
            Normalize = new Normalize(order, [0, 0, 0], [1, 1, 1]),
            SizeDivisibility = 32,
        };
    }

    private static IImageSampler Sampler(DataloaderConfig d, IReadOnlyList<DatasetRecord> records, ulong seed) => d.SamplerTrain switch
    {
        TrainSampler.TrainingSampler => new TrainingSampler(records.Count, seed),
        TrainSampler.RepeatFactorTrainingSampler when !d.RepeatSqrt =>
            throw new ArgumentException("DetectorTraining: DATALOADER.REPEAT_SQRT false is not supported by RepeatFactorTrainingSampler (it uses r = max(1, sqrt(t / f))); set it to true."),
        TrainSampler.RepeatFactorTrainingSampler => RepeatFactorTrainingSampler.FromRecords(records, d.RepeatThreshold, seed,
            d.RepeatRounding == Engine.Config.RepeatRounding.Ceiling ? Engine.Data.Samplers.RepeatRounding.Ceiling : Engine.Data.Samplers.RepeatRounding.Stochastic),
        _ => throw new ArgumentException($"DetectorTraining: DATALOADER.SAMPLER_TRAIN {d.SamplerTrain} has no data-layer sampler; use TrainingSampler or RepeatFactorTrainingSampler."),
    };

    /// <summary>The evaluation set: <paramref name="datasetName"/> from DATASETS.CATALOG, or the one DATASETS.TEST names.</summary>
    public static LvisRecordSet LoadTestSet(EngineConfig config, string? datasetName = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var set = LoadSet(config, datasetName is null ? config.Datasets.Test : [datasetName], datasetName is null ? "DATASETS.TEST" : "the dataset", forTraining: false)
                  ?? throw new ArgumentException("DetectorTraining: DATASETS.TEST is empty; name the dataset to run on.");
        CheckClasses(config, set, datasetName ?? "DATASETS.TEST");
        return set;
    }

    private static LvisRecordSet? LoadSet(EngineConfig config, IReadOnlyList<string> names, string key, bool forTraining)
    {
        if (names.Count == 0) return null;
        if (names.Count > 1)
            throw new ArgumentException($"DetectorTraining: {key} names {names.Count} datasets ({string.Join(", ", names)}); one dataset per run is supported, so merge them into one annotation file.");
        var entry = config.Datasets.Resolve(names[0]);
        if (!File.Exists(entry.Json))
            throw new FileNotFoundException($"DetectorTraining: {key} dataset '{names[0]}': annotation file {Path.GetFullPath(entry.Json)} does not exist (DATASETS.ROOT is '{config.Datasets.Root}'; `engine synth --out {Path.Combine(config.Datasets.Root, "synth_lt")}` makes the synthetic set).", entry.Json);
        return LvisRecords.Load(entry.Json, entry.ImageRoot, forTraining && config.Dataloader.FilterEmptyAnnotations, readPolygons: false);
    }

    private static void CheckClasses(EngineConfig config, LvisRecordSet set, string key)
    {
        if (set.Categories.Count != config.Model.RoiHeads.NumClasses)
            throw new ArgumentException($"DetectorTraining: {key} has {set.Categories.Count} categories but MODEL.ROI_HEADS.NUM_CLASSES is {config.Model.RoiHeads.NumClasses}; set --set MODEL.ROI_HEADS.NUM_CLASSES={set.Categories.Count}.");
    }
}
