// LogN, logit normalization (section 2): per-column statistics of the logits over the RoIs the training sampler
// produces, then at test z'_c = (z_c − (μ_c − β)) / sd_c for foreground columns, with sd_c = sqrt(max(v_c, 1e-11))
// and β = min over foreground of μ, and the background logit untouched; scores = softmax(z'). Statistics either
// follow the code's EMA (μ ← (1 − m)·μ + m·batch mean, v ← (1 − m)·v + m·unbiased batch variance) or are exact
// (mean and unbiased variance over every row of the pass). `repo` mode's training-time batch standardization is
// LogitNormSoftmaxLoss, which shares this calibrator's running statistics.
using Engine.Nn;

namespace Engine.LongTail;

public enum LogitStatisticsMode
{
    /// <summary>Exponential moving average with a fixed momentum per update (the code).</summary>
    Ema,
    /// <summary>Plain mean and unbiased variance over all rows seen (what the EMA approximates).</summary>
    Exact,
}

public sealed class LogitNormCalibrator : ILogitCalibrator
{
    /// <summary>Variance floor of the calibration (code).</summary>
    public const double DefaultVarianceFloor = 1e-11;

    /// <summary>Variance below which a class is reported as degenerate (section 2.4).</summary>
    public const double DegenerateVariance = 1e-6;

    private Tensor _mean;
    private Tensor _variance;
    private Tensor _count;
    private Tensor _m2;
    private bool _disposed;

    // Every change of the statistics advances the revision; (shift, sd) are derived on the host once per revision and
    // device and kept, so calibrated inference reads the statistics back once, not once per batch.
    private long _revision;
    private (Device Device, long Revision, Tensor Shift, Tensor Sd)? _calibration;
    private readonly Lock _calibrationLock = new();

    /// <param name="momentum">EMA momentum per update: 5e-5 in the statistics pass per one-image update; use
    /// BatchMomentum to match that with batches of several images.</param>
    /// <param name="varianceFloor">v is floored here before the square root at test (1e-11).</param>
    public LogitNormCalibrator(int numClasses, LogitStatisticsMode mode = LogitStatisticsMode.Ema, double momentum = 5e-5, double varianceFloor = DefaultVarianceFloor)
    {
        if (numClasses < 1) throw new ArgumentException($"LogitNormCalibrator: C must be ≥ 1, got {numClasses}.");
        if (!(momentum > 0 && momentum <= 1)) throw new ArgumentException($"LogitNormCalibrator: momentum must be in (0, 1], got {momentum}.");
        if (!(varianceFloor > 0) || double.IsInfinity(varianceFloor)) throw new ArgumentException($"LogitNormCalibrator: the variance floor must be finite and > 0, got {varianceFloor}.");
        (NumClasses, Mode, Momentum, VarianceFloor) = (numClasses, mode, momentum, varianceFloor);
        using (DisposeScope.Suspend())
        {
            // no checkpoint statistics: μ = 0, v = 1 (section 2.1)
            _mean = Tensor.Zeros([numClasses + 1]);
            _variance = Tensor.Ones([numClasses + 1]);
            _count = Tensor.Zeros([1], DType.Int64);
            _m2 = Tensor.Zeros([numClasses + 1]);
        }
    }

    public int NumClasses { get; }
    public LogitStatisticsMode Mode { get; }
    public double Momentum { get; set; }

    /// <summary>The floor of v_c before the square root of the calibration.</summary>
    public double VarianceFloor { get; }

    public long Revision => Interlocked.Read(ref _revision);

    /// <summary>Where the statistics live (the CPU until <see cref="To"/>); updates run there.</summary>
    public Device Device => _mean.Device;

    /// <summary>Moves the statistics to <paramref name="device"/>, so updates from logits on that device run there
    /// without a copy to the host (a CUDA training step or statistics pass keeps them on the GPU).</summary>
    public void To(Device device)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (device == Device) return;
        using (GradMode.NoGrad())
        using (DisposeScope.Suspend())
        {
            var moved = new[] { _mean, _variance, _count, _m2 }.Select(t => t.To(device)).ToArray();
            _mean.Dispose();
            _variance.Dispose();
            _count.Dispose();
            _m2.Dispose();
            (_mean, _variance, _count, _m2) = (moved[0], moved[1], moved[2], moved[3]);
        }
        Interlocked.Increment(ref _revision);
    }

    /// <summary>The momentum m_B = 1 − (1 − m)^B of one update over B images that matches B per-image updates of m.</summary>
    public static double BatchMomentum(double perImageMomentum, int imagesPerBatch) => 1 - Math.Pow(1 - perImageMomentum, imagesPerBatch);

    /// <summary>Rows merged so far in exact mode.</summary>
    public long Count => _count.ToArray<long>()[0];

    /// <summary>μ (C+1): the running mean (EMA) or the exact mean.</summary>
    public Tensor Mean()
    {
        using (GradMode.NoGrad()) return _mean.Clone();
    }

    /// <summary>v (C+1): the running variance (EMA) or the exact unbiased variance (M2 / (count − 1); 1 before two rows).</summary>
    public Tensor Variance()
    {
        using (GradMode.NoGrad())
        {
            if (Mode == LogitStatisticsMode.Ema) return _variance.Clone();
            var n = Count;
            return n < 2 ? Tensor.Ones([NumClasses + 1], DType.Float32, _m2.Device) : _m2.Div(n - 1);
        }
    }

    public void Accumulate(Tensor logits)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Check(logits, "Accumulate");
        using (GradMode.NoGrad())
        {
            if (Mode == LogitStatisticsMode.Ema)
            {
                // a batch of one RoI has no unbiased variance: skip it (section 2.4)
                if (logits.Size(0) < 2) return;
                UpdateRunning(logits, Momentum);
                return;
            }
            using var x = LongTailOps.Raw(logits);
            using var here = SigmoidWeights.OnDevice(x, _mean.Device);
            LongTailBackends.For(_mean.Device).MergeStatistics(here, _count, _mean, _m2);
            Bump(_count, _mean, _m2);
        }
    }

    /// <summary>One EMA update of μ and v with the given momentum (the fused kernel); also used by `repo` training.</summary>
    internal void UpdateRunning(Tensor logits, double momentum)
    {
        using var x = LongTailOps.Raw(logits);
        using var here = SigmoidWeights.OnDevice(x, _mean.Device);
        LongTailBackends.For(_mean.Device).UpdateRunningStatistics(here, momentum, _mean, _variance);
        Bump(_mean, _variance);
    }

    /// <summary>`repo` mode's batch standardization of the logits (LongTailOps.StandardizeLogits), with the EMA update
    /// of μ and v by <paramref name="momentum"/> when it is given: in the same pass when the logits are on this
    /// calibrator's device, else by a separate update on a copy of the logits.</summary>
    internal Tensor Standardize(Tensor logits, double eps, double? momentum)
    {
        if (momentum is not { } m) return LongTailOps.StandardizeLogits(logits, eps);
        if (logits.Device != Device)
        {
            var y = LongTailOps.StandardizeLogits(logits, eps);
            UpdateRunning(logits, m);
            return y;
        }
        var standardized = LongTailOps.StandardizeLogits(logits, eps, (_mean, _variance, m));
        Bump(_mean, _variance);
        return standardized;
    }

    private void Bump(params Tensor[] ts)
    {
        foreach (var t in ts) t.Storage.BumpVersion();
        Interlocked.Increment(ref _revision);
    }

    /// <summary>(shift, sd) of the calibration, each (C+1): shift_c = μ_c − β and sd_c = sqrt(max(v_c, 1e-11)) for
    /// foreground columns, 0 and 1 for the background.</summary>
    public (Tensor Shift, Tensor Sd) Calibration(Device device)
    {
        using (GradMode.NoGrad())
        {
            var mu = _mean.ToDoubleArray();
            using var varianceTensor = Variance();
            var v = varianceTensor.ToDoubleArray();
            var beta = double.PositiveInfinity;
            for (var c = 0; c < NumClasses; c++) beta = Math.Min(beta, (float)mu[c]);
            var shift = new double[NumClasses + 1];
            var sd = new double[NumClasses + 1];
            for (var c = 0; c < NumClasses; c++)
            {
                shift[c] = (float)mu[c] - (float)beta;
                sd[c] = MathF.Sqrt(MathF.Max((float)v[c], (float)VarianceFloor));
            }
            sd[NumClasses] = 1;
            return (Tensor.FromDoubles(shift, [NumClasses + 1], DType.Float32, device), Tensor.FromDoubles(sd, [NumClasses + 1], DType.Float32, device));
        }
    }

    public Tensor Calibrate(Tensor logits)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Check(logits, "Calibrate");
        return CalibrateCore(logits, softmax: false);
    }

    public Tensor Scores(Tensor logits)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Check(logits, "Scores");
        return CalibrateCore(logits, softmax: true);
    }

    private Tensor CalibrateCore(Tensor logits, bool softmax)
    {
        // the lock keeps the kept (shift, sd) alive until the op has them
        lock (_calibrationLock)
        {
            var (shift, sd) = CachedCalibration(logits.Device);
            using (GradMode.NoGrad())
                // background: (z − 0) / 1, bit-identical to z
                return LongTailOps.Calibrate(logits, shift, sd, softmax);
        }
    }

    /// <summary><see cref="Calibration"/> of the current statistics on <paramref name="device"/>, derived once per
    /// change of the statistics and owned by the calibrator; called under the calibration lock.</summary>
    private (Tensor Shift, Tensor Sd) CachedCalibration(Device device)
    {
        var revision = Revision;
        if (_calibration is { } cached && cached.Device == device && cached.Revision == revision) return (cached.Shift, cached.Sd);
        DropCalibration();
        Tensor shift, sd;
        using (DisposeScope.Suspend()) (shift, sd) = Calibration(device);
        _calibration = (device, revision, shift, sd);
        return (shift, sd);
    }

    private void DropCalibration()
    {
        if (_calibration is not { } cached) return;
        cached.Shift.Dispose();
        cached.Sd.Dispose();
        _calibration = null;
    }

    /// <summary>Sets μ and v (each C+1) of an EMA-mode calibrator directly, e.g. to the exact statistics of a pass
    /// gathered by an exact-mode calibrator.</summary>
    public void SetStatistics(Tensor mean, Tensor variance)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Mode != LogitStatisticsMode.Ema)
            throw new InvalidOperationException("LogitNormCalibrator.SetStatistics: only an EMA-mode calibrator holds μ and v directly; an exact-mode one derives v from its running sums.");
        foreach (var (name, t) in new[] { ("mean", mean), ("variance", variance) })
            if (t.DType != DType.Float32 || t.Rank != 1 || t.Size(0) != NumClasses + 1)
                throw new ArgumentException($"LogitNormCalibrator.SetStatistics: {name} must be float32 [{NumClasses + 1}] (C + 1), got {t.DType.Name()} {ShapeUtil.Format(t.Shape)}.");
        using (GradMode.NoGrad())
        {
            using var m = SigmoidWeights.OnDevice(mean, _mean.Device);
            using var v = SigmoidWeights.OnDevice(variance, _variance.Device);
            _mean.CopyFrom(m);
            _variance.CopyFrom(v);
        }
        Bump(_mean, _variance);
    }

    /// <summary>Foreground classes whose variance is below 1e-6 (section 2.4).</summary>
    public int[] DegenerateClasses()
    {
        using var v = Variance();
        var values = v.ToDoubleArray();
        return Enumerable.Range(0, NumClasses).Where(c => values[c] < DegenerateVariance).ToArray();
    }

    public StateDict StateDict()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var dict = new StateDict();
        using (GradMode.NoGrad())
        using (DisposeScope.Suspend())
        {
            dict.Add("running_mean", _mean.Clone());
            dict.Add("running_var", _variance.Clone());
            if (Mode == LogitStatisticsMode.Exact)
            {
                dict.Add("count", _count.Clone());
                dict.Add("m2", _m2.Clone());
            }
        }
        return dict;
    }

    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(state);
        var targets = new List<(string, Tensor)> { ("running_mean", _mean), ("running_var", _variance) };
        if (Mode == LogitStatisticsMode.Exact)
        {
            targets.Add(("count", _count));
            targets.Add(("m2", _m2));
        }
        var errors = StateCheck.Problems(state, StateCheck.Of(targets));
        if (errors.Count > 0)
            throw new InvalidOperationException($"LogitNormCalibrator.LoadStateDict ({Mode}, C = {NumClasses}): nothing was loaded: {string.Join("; ", errors)}.");
        StateCheck.CopyInto(state, targets);
        Interlocked.Increment(ref _revision);
    }

    private void Check(Tensor logits, string call)
    {
        if (logits.DType != DType.Float32 || logits.Rank != 2 || logits.Size(1) != NumClasses + 1)
            throw new ArgumentException($"LogitNormCalibrator.{call}: logits must be float32 [N, {NumClasses + 1}] (C + 1, background last), got " +
                                        $"{logits.DType.Name()} {ShapeUtil.Format(logits.Shape)}. LogN applies only to softmax heads with a background column.");
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        lock (_calibrationLock) DropCalibration();
        _mean.Dispose();
        _variance.Dispose();
        _count.Dispose();
        _m2.Dispose();
    }
}

/// <summary>LogN's `repo` mode training head (section 2.3): the logits pass through an affine-free batch normalization
/// (per column, batch mean and biased batch variance, eps 1e-5) before softmax CE, and the calibrator's running
/// statistics follow with the training momentum (1e-4) and the unbiased variance, as torch's BatchNorm1d does, in the
/// same fused pass (LongTailOps.StandardizeLogits). Scores are the calibrator's calibrated scores.</summary>
public sealed class LogitNormSoftmaxLoss : ClassificationLoss
{
    public LogitNormSoftmaxLoss(LogitNormCalibrator calibrator, double momentum = 1e-4, double eps = 1e-5)
        : base(calibrator.NumClasses, calibrator.NumClasses + 1)
    {
        if (calibrator.Mode != LogitStatisticsMode.Ema)
            throw new ArgumentException("LogitNormSoftmaxLoss: the repo-mode head keeps EMA statistics; pass a calibrator in LogitStatisticsMode.Ema.");
        (Calibrator, TrainingMomentum, Eps) = (calibrator, momentum, eps);
    }

    public LogitNormCalibrator Calibrator { get; }
    public double TrainingMomentum { get; }
    public double Eps { get; }

    protected override Tensor ComputeLoss(Tensor logits, Tensor labels, long[] hostLabels, LossContext context)
    {
        if (logits.Size(0) < 2)
            throw new ArgumentException($"LogitNormSoftmaxLoss: batch normalization needs at least 2 RoIs per batch, got {logits.Size(0)}.");
        // (z − batch mean) / sqrt(biased batch variance + eps) per column, whose batch statistics feed the calibrator's
        // running statistics in the same pass
        using var standardized = Calibrator.Standardize(logits, Eps, context.UpdateState ? TrainingMomentum : null);
        return Losses.CrossEntropy(standardized, labels);
    }

    protected override Tensor ComputeScores(Tensor logits) => Calibrator.Scores(logits);
}
