// Plug point "post-hoc logit calibration" (ARCHITECTURE.md): a statistics pass feeds the logits of the
// training sampler's RoIs to Accumulate (no parameter changes), then inference asks for calibrated logits
// or scores. A calibrator is a pure function of (logits, state) at test time; its state is checkpointed.
using Engine.Nn;

namespace Engine.LongTail;

public interface ILogitCalibrator : IDisposable
{
    /// <summary>C, the number of foreground classes; logits have C+1 columns, background last.</summary>
    int NumClasses { get; }

    /// <summary>Adds a batch of logits (N, C+1) of the statistics pass to the running statistics.</summary>
    void Accumulate(Tensor logits);

    /// <summary>Calibrated logits (N, C+1); not recorded, state untouched.</summary>
    Tensor Calibrate(Tensor logits);

    /// <summary>Test-time probabilities (N, C+1) from the calibrated logits, background column last.</summary>
    Tensor Scores(Tensor logits);

    /// <summary>Advances whenever the state changes (updates, loads, moves); equal revisions mean the same state.</summary>
    long Revision { get; }

    /// <summary>Where the state lives; updates run there.</summary>
    Device Device { get; }

    /// <summary>Moves the state to <paramref name="device"/> (the model's device, so updates need no host copy).</summary>
    void To(Device device);

    StateDict StateDict();

    void LoadStateDict(IReadOnlyDictionary<string, Tensor> state);
}
