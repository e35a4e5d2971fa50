// The training loop. One iteration: set the learning rate for this iteration, fetch a batch (timed as data
// time), zero the gradients, compute the losses, check that every loss is finite, backward, clip, step.
// Hooks after the step: a log line every LogPeriod iterations, a checkpoint every CheckpointPeriod, an
// evaluation every EvalPeriod (and at the end), progress after every iteration, and model_final at the end;
// report.html is refreshed after each evaluation and at the end.
//
// A non-finite loss stops the run before the step, so the weights saved in model_nonfinite_iter{N} are the
// last good ones, and the exception names the loss term, its value and the iteration.
//
// Resume: the last checkpoint restores weights, momentum buffers, the model's generators, the components'
// state and the batch-source position; the schedule is a function of the iteration, so continuing at
// iteration + 1 reproduces an uninterrupted run bit for bit.
using System.Diagnostics;
using Engine.Config;
using Engine.Evaluation;
using Engine.Optim;

namespace Engine.Training;

public sealed record TrainerOptions
{
    public required string OutputDir { get; init; }
    public required long MaxIter { get; init; }

    /// <summary>Save a resumable checkpoint every this many iterations (0: only model_final).</summary>
    public long CheckpointPeriod { get; init; }

    /// <summary>Evaluate every this many iterations (0: only at the end); evaluation needs Trainer.Evaluate.</summary>
    public long EvalPeriod { get; init; }

    /// <summary>Write a log.jsonl line every this many iterations (and on the last).</summary>
    public int LogPeriod { get; init; } = 20;

    public ClipGradientsConfig ClipGradients { get; init; } = new();

    /// <summary>Rewrite report.html after each evaluation and at the end of the run.</summary>
    public bool WriteReport { get; init; } = true;

    /// <summary>The effective configuration as YAML, written as config.yaml at the start of a run (null: none).</summary>
    public string? ConfigYaml { get; init; }

    /// <summary>The options detectron2's config implies: MAX_ITER, CHECKPOINT_PERIOD, TEST.EVAL_PERIOD, OUTPUT_DIR, clipping.</summary>
    public static TrainerOptions FromConfig(EngineConfig config, int logPeriod = 20) => new()
    {
        OutputDir = config.OutputDir,
        MaxIter = config.Solver.MaxIter,
        CheckpointPeriod = config.Solver.CheckpointPeriod,
        EvalPeriod = config.Test.EvalPeriod,
        LogPeriod = logPeriod,
        ClipGradients = config.Solver.ClipGradients,
        ConfigYaml = config.ToYaml(),
    };
}

/// <summary>The outcome of one evaluation: the metrics to save, and the full LVIS result when the evaluator ran
/// (then metrics.json has the official keys and per_category_ap.csv is written too).</summary>
public sealed record EvaluationResult(IReadOnlyDictionary<string, double> Metrics, LvisEvalResult? Lvis = null);

public sealed record TrainingSummary(long StartIteration, long LastIteration, string? FinalWeights, LogEntry? LastLog);

/// <summary>A loss was NaN or infinite; the run stopped before the step and saved the last good weights.</summary>
public sealed class NonFiniteLossException : Exception
{
    public NonFiniteLossException(string lossName, double value, long iteration, string checkpoint)
        : base($"Training stopped: loss '{lossName}' is {value} at iteration {iteration}. The weights before this iteration were saved to " +
               $"'{checkpoint}'. Lower SOLVER.BASE_LR, lengthen SOLVER.WARMUP_ITERS, enable SOLVER.CLIP_GRADIENTS, or check the data of this iteration.")
    {
        LossName = lossName;
        Value = value;
        Iteration = iteration;
        Checkpoint = checkpoint;
    }

    public string LossName { get; }
    public double Value { get; }
    public long Iteration { get; }
    public string Checkpoint { get; }
}

public sealed class Trainer<TBatch>
{
    public const string FinalName = "model_final";
    public const string ConfigFile = "config.yaml";

    private readonly ITrainable<TBatch> _model;
    private readonly Sgd _optimizer;
    private readonly ILrSchedule _schedule;
    private readonly Func<long, IBatchSource<TBatch>> _openSource;

    /// <param name="openSource">Opens the batch stream at a batch position (0 for a fresh run, the saved position on resume).</param>
    public Trainer(ITrainable<TBatch> model, Sgd optimizer, ILrSchedule schedule, Func<long, IBatchSource<TBatch>> openSource, TrainerOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(schedule);
        ArgumentNullException.ThrowIfNull(openSource);
        ArgumentNullException.ThrowIfNull(options);
        if (options.MaxIter < 0) throw new ArgumentException($"Trainer: MaxIter must be ≥ 0, got {options.MaxIter}.");
        if (options.CheckpointPeriod < 0) throw new ArgumentException($"Trainer: CheckpointPeriod must be ≥ 0 (0 = only the final checkpoint), got {options.CheckpointPeriod}.");
        if (options.EvalPeriod < 0) throw new ArgumentException($"Trainer: EvalPeriod must be ≥ 0 (0 = only at the end), got {options.EvalPeriod}.");
        if (options.LogPeriod < 1) throw new ArgumentException($"Trainer: LogPeriod must be ≥ 1, got {options.LogPeriod}.");
        if (options.ClipGradients.Enabled && !(options.ClipGradients.ClipValue > 0))
            throw new ArgumentException($"Trainer: SOLVER.CLIP_GRADIENTS.CLIP_VALUE must be > 0 when clipping is enabled, got {options.ClipGradients.ClipValue}.");
        _model = model;
        _optimizer = optimizer;
        _schedule = schedule;
        _openSource = openSource;
        Options = options;
        Checkpointer = new Checkpointer(options.OutputDir);
    }

    public TrainerOptions Options { get; }
    public Checkpointer Checkpointer { get; }

    /// <summary>Runs an evaluation after iteration i (the argument); the module is in eval mode and gradients are off.</summary>
    public Func<long, EvaluationResult>? Evaluate { get; init; }

    public IProgressReporter Progress { get; init; } = NullProgressReporter.Instance;

    /// <summary>Trains from iteration 0, or with <paramref name="resume"/> from the checkpoint last_checkpoint names
    /// (from 0 when there is none yet, as detectron2's --resume does).</summary>
    public TrainingSummary Run(bool resume = false)
    {
        Directory.CreateDirectory(Options.OutputDir);
        long start = 0, sourcePosition = 0;
        if (resume && Checkpointer.FindLast() is { } lastCheckpoint)
        {
            var state = Checkpointer.Load(lastCheckpoint, _model.Module, _optimizer, _model.StatefulComponents, _model.Generators);
            start = state.Iteration + 1;
            sourcePosition = state.SourcePosition;
        }
        if (Options.ConfigYaml is { } yaml) AtomicFile.WriteAllText(Path.Combine(Options.OutputDir, ConfigFile), yaml);
        using var log = start > 0 ? TrainingLog.Resume(Options.OutputDir, start - 1) : TrainingLog.Create(Options.OutputDir);
        if (start >= Options.MaxIter) return new TrainingSummary(start, start - 1, null, null);

        _model.Module.Train();
        Progress.Start(start, Options.MaxIter);
        using var source = _openSource(sourcePosition);
        if (source.Position != sourcePosition)
            throw new InvalidOperationException($"Trainer: the batch source was asked to open at position {sourcePosition} but reports {source.Position}.");

        var window = new Window();
        LogEntry? lastLog = null;
        for (var iter = start; iter < Options.MaxIter; iter++)
        {
            var iterWatch = Stopwatch.StartNew();
            var lr = _schedule.LrAt(iter);
            _optimizer.Lr = lr;
            var values = Step(iter, source, out var dataSeconds);
            var total = values.Values.Sum();
            var seconds = iterWatch.Elapsed.TotalSeconds;
            window.Add(values, total, seconds, dataSeconds);

            var last = iter + 1 == Options.MaxIter;
            var eta = window.SecondsPerIter * (Options.MaxIter - iter - 1);
            if ((iter + 1) % Options.LogPeriod == 0 || last)
            {
                lastLog = window.ToEntry(iter, lr, eta);
                log.Write(lastLog);
                window = new Window();
            }
            if (Options.CheckpointPeriod > 0 && (iter + 1) % Options.CheckpointPeriod == 0 && !last)
                SaveCheckpoint(Checkpointer.PeriodicName(iter), iter, source.Position, updatePointer: true);
            if (Evaluate is not null && ((Options.EvalPeriod > 0 && (iter + 1) % Options.EvalPeriod == 0) || last))
                RunEvaluation(iter);
            Progress.Report(new TrainingProgress(iter, Options.MaxIter, total, lr, seconds, eta));
        }
        var final = SaveCheckpoint(FinalName, Options.MaxIter - 1, source.Position, updatePointer: true);
        if (Options.WriteReport) RunReport.Write(Options.OutputDir);
        Progress.Finish();
        return new TrainingSummary(start, Options.MaxIter - 1, final, lastLog);
    }

    /// <summary>One optimizer step; returns the loss values (in the model's order).</summary>
    private Dictionary<string, double> Step(long iter, IBatchSource<TBatch> source, out double dataSeconds)
    {
        using var scope = DisposeScope.Begin();
        var positionBefore = source.Position;
        var dataWatch = Stopwatch.StartNew();
        var batch = source.Next();
        dataSeconds = dataWatch.Elapsed.TotalSeconds;
        try
        {
            _optimizer.ZeroGrad();
            var losses = _model.Losses(batch);
            if (losses.Count == 0) throw new InvalidOperationException($"Trainer: the model returned no losses at iteration {iter}; Losses must return at least one scalar.");
            var values = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var (name, loss) in losses)
                if (loss.Numel != 1)
                    throw new InvalidOperationException($"Trainer: loss '{name}' has shape {ShapeUtil.Format(loss.Shape)} at iteration {iter}; every loss must be a scalar (reduce it with Sum or Mean).");
            // One read of all the terms (on a GPU, the step's one wait for the losses, not one per term).
            foreach (var ((name, _), v) in losses.Zip(Tensor.Items(losses.Values.ToList())))
            {
                if (!double.IsFinite(v))
                {
                    var saved = SaveCheckpoint($"model_nonfinite_iter{iter}", iter - 1, positionBefore, updatePointer: false);
                    throw new NonFiniteLossException(name, v, iter, saved);
                }
                values[name] = v;
            }
            Tensor? total = null;
            foreach (var loss in losses.Values) total = total is null ? loss : total.Add(loss);
            if (!total!.RequiresGrad)
                throw new InvalidOperationException($"Trainer: at iteration {iter} none of the losses ({string.Join(", ", losses.Keys)}) depends on a trainable parameter, " +
                                                    "so there is nothing to train; check that the model's parameters are not all frozen and that Losses runs with gradients enabled.");
            total.Backward();
            Clip();
            _optimizer.Step();
            return values;
        }
        finally
        {
            (batch as IDisposable)?.Dispose();
        }
    }

    private void Clip()
    {
        var clip = Options.ClipGradients;
        if (!clip.Enabled) return;
        var parameters = _optimizer.Groups.SelectMany(g => g.Parameters).ToList();
        switch (clip.ClipType)
        {
            case ClipType.FullModel:
                GradientClipping.ClipByGlobalNorm(parameters, clip.ClipValue, clip.NormType);
                break;
            case ClipType.Norm:
                GradientClipping.ClipEachByNorm(parameters, clip.ClipValue, clip.NormType);
                break;
            case ClipType.Value:
                using (GradMode.NoGrad())
                using (DisposeScope.Suspend())
                    foreach (var p in parameters)
                        if (p.Grad is { } g)
                        {
                            using var clamped = g.Clamp(-clip.ClipValue, clip.ClipValue);
                            g.CopyFrom(clamped);
                        }
                break;
            default:
                throw new InvalidOperationException($"Trainer: unknown clip type {clip.ClipType}.");
        }
    }

    private string SaveCheckpoint(string name, long iteration, long sourcePosition, bool updatePointer)
    {
        var state = new TrainerState(iteration, sourcePosition,
                                     _model.Generators.ToDictionary(kv => kv.Key, kv => (kv.Value.Seed, kv.Value.Position), StringComparer.Ordinal),
                                     new Dictionary<string, IReadOnlyDictionary<string, System.Text.Json.Nodes.JsonNode?>>());
        return Checkpointer.Save(name, _model.Module, _optimizer, _model.StatefulComponents, state, updatePointer);
    }

    private void RunEvaluation(long iter)
    {
        EvaluationResult result;
        _model.Module.Eval();
        try
        {
            using (GradMode.NoGrad())
                result = Evaluate!(iter);
        }
        finally
        {
            _model.Module.Train();
        }
        MetricsFiles.Write(Options.OutputDir, iter, result);
        if (Options.WriteReport) RunReport.Write(Options.OutputDir);
    }

    /// <summary>Means over the iterations since the last log line (detectron2 logs windowed medians; means keep the
    /// line's time × iterations equal to the wall time spent).</summary>
    private sealed class Window
    {
        private readonly Dictionary<string, double> _losses = new(StringComparer.Ordinal);
        private double _total, _seconds, _dataSeconds;
        private int _count;

        public double SecondsPerIter => _count == 0 ? 0 : _seconds / _count;

        public void Add(Dictionary<string, double> losses, double total, double seconds, double dataSeconds)
        {
            foreach (var (k, v) in losses) _losses[k] = _losses.GetValueOrDefault(k) + v;
            _total += total;
            _seconds += seconds;
            _dataSeconds += dataSeconds;
            _count++;
        }

        public LogEntry ToEntry(long iter, double lr, double eta) =>
            new(iter, _losses.ToDictionary(kv => kv.Key, kv => kv.Value / _count, StringComparer.Ordinal), _total / _count, lr,
                _seconds / _count, _dataSeconds / _count, eta);
    }
}
