// Per-stage wall times of the detector's forward, for benchmarks and profiling: GeneralizedRcnn reports the end of
// each stage (backbone, RPN, ROI heads) to an optional IStageTimer. With no timer attached (the default) a stage
// costs one null check and nothing is read from the clock. Data loading and the backward pass happen outside the
// forward, so their callers time them.
using System.Diagnostics;

namespace Engine.Detection.Modeling.MetaArch;

/// <summary>The stages of <see cref="GeneralizedRcnn"/>'s forward, in order.</summary>
public enum DetectorStage
{
    /// <summary>Pixel normalization and the backbone (ResNet + FPN).</summary>
    Backbone,

    /// <summary>The proposal generator: RPN head, anchors, proposal selection and (training) the RPN losses.</summary>
    Rpn,

    /// <summary>The ROI heads: box pooling, box head and predictor, and their losses (training) or the per-class
    /// selection and the rescale to the original image size (inference).</summary>
    RoiHeads,
}

/// <summary>Receives the stage boundaries of a forward. <see cref="Start"/> is called as a forward begins and
/// <see cref="Lap"/> as each stage ends, on the calling thread; the time since the previous call belongs to the stage.
/// The implementation reads the clock itself, so one for an asynchronous device can synchronize first.</summary>
public interface IStageTimer
{
    void Start();

    void Lap(DetectorStage stage);
}

/// <summary>Sums the wall time and counts the calls of each stage until <see cref="Reset"/>. Not thread-safe: one
/// forward at a time.</summary>
public sealed class StageTimes : IStageTimer
{
    private static readonly int StageCount = Enum.GetValues<DetectorStage>().Length;
    private readonly long[] _ticks = new long[StageCount];
    private readonly int[] _counts = new int[StageCount];
    private long _last;
    private bool _started;

    public void Start()
    {
        _last = Stopwatch.GetTimestamp();
        _started = true;
    }

    public void Lap(DetectorStage stage)
    {
        var now = Stopwatch.GetTimestamp();
        if (!_started)
            throw new InvalidOperationException($"StageTimes.Lap({stage}): no stage is running; call Start() when the forward begins.");
        _ticks[(int)stage] += now - _last;
        _counts[(int)stage]++;
        _last = now;
    }

    /// <summary>The summed wall time of <paramref name="stage"/> since the last reset.</summary>
    public TimeSpan this[DetectorStage stage] => Stopwatch.GetElapsedTime(0, _ticks[(int)stage]);

    /// <summary>How many times <paramref name="stage"/> ended since the last reset.</summary>
    public int Count(DetectorStage stage) => _counts[(int)stage];

    /// <summary>The summed time of every stage.</summary>
    public TimeSpan Total => Stopwatch.GetElapsedTime(0, _ticks.Sum());

    public void Reset()
    {
        Array.Clear(_ticks);
        Array.Clear(_counts);
        _started = false;
    }
}
