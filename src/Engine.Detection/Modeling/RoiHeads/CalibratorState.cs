// The post-hoc logit calibrator's statistics as module buffers, so they are part of the model's weights file
// (long-tail-methods.md 2.4: "saved with the model", like batch-normalization running statistics) and every
// checkpoint, `engine calibrate` output and `engine infer` load carries them. The calibrator object keeps its own
// working copy; the predictor pushes the buffers into it before each use and pulls them back after a training step
// that may have moved them (LogN's repo-mode head updates its running statistics in the loss), so the buffers are the
// persisted truth. The working copy follows the buffers' device, so on a GPU neither direction waits for the host.
// Neither direction copies when nothing changed since the two last agreed (the buffers' tensors and storage versions,
// the calibrator's revision): inference pushes once per loaded model, not once per batch, and the calibrator keeps what
// it derived from its statistics (LogN's shift and sd) across batches.
// Names are the calibrator's state names ("running_mean", "running_var").
using Engine.LongTail;
using Engine.Nn;

namespace Engine.Detection.Modeling.RoiHeads;

public sealed class CalibratorState : Module
{
    private readonly List<(string Name, ModuleBuffer Buffer)> _buffers = [];

    // what the buffers and the calibrator were when they last agreed (after a push or a pull)
    private (Tensor[] Values, long[] Versions, long Revision)? _agreed;

    public CalibratorState(ILogitCalibrator calibrator)
    {
        ArgumentNullException.ThrowIfNull(calibrator);
        Calibrator = calibrator;
        using var initial = calibrator.StateDict();
        foreach (var (name, value) in initial)
        {
            Tensor copy;
            using (GradMode.NoGrad())
            using (DisposeScope.Suspend())
                copy = value.Clone();
            _buffers.Add((name, RegisterBuffer(name, copy)));
        }
    }

    public ILogitCalibrator Calibrator { get; }

    /// <summary>Buffers → calibrator (before the calibrator is used); the calibrator first follows the buffers to their
    /// device (the model's), so its updates run there.</summary>
    public void Push()
    {
        if (_buffers.Count > 0 && _buffers[0].Buffer.Value.Device is var device && Calibrator.Device != device) Calibrator.To(device);
        if (Agree()) return;
        var state = _buffers.ToDictionary(b => b.Name, b => b.Buffer.Value, StringComparer.Ordinal);
        Calibrator.LoadStateDict(state);
        Remember();
    }

    /// <summary>Calibrator → buffers (after the calibrator's statistics changed).</summary>
    public void Pull()
    {
        if (Agree()) return;
        using var state = Calibrator.StateDict();
        using (GradMode.NoGrad())
            foreach (var (name, buffer) in _buffers)
            {
                var source = state[name];
                if (source.Device == buffer.Value.Device) buffer.Value.CopyFrom(source);
                else
                    using (var moved = source.To(buffer.Value.Device))
                        buffer.Value.CopyFrom(moved);
            }
        Remember();
    }

    /// <summary>Whether neither side changed since they last agreed: the same buffer tensors at the same storage versions
    /// (a load or a device move replaces or writes them) and the calibrator at the same revision.</summary>
    private bool Agree()
    {
        if (_agreed is not { } agreed || agreed.Revision != Calibrator.Revision) return false;
        for (var i = 0; i < _buffers.Count; i++)
        {
            var value = _buffers[i].Buffer.Value;
            if (!ReferenceEquals(value, agreed.Values[i]) || value.Storage.Version != agreed.Versions[i]) return false;
        }
        return true;
    }

    private void Remember() =>
        _agreed = (_buffers.Select(b => b.Buffer.Value).ToArray(), _buffers.Select(b => b.Buffer.Value.Storage.Version).ToArray(), Calibrator.Revision);
}
