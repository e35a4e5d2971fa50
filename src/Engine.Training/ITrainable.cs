// The contract the trainer drives. A trainable model is a Module that turns one batch into named scalar
// losses (the total is their sum), generic over the batch type so a detector (images + targets) and a
// small test classifier fit alike. Anything else whose state must survive a resume — random generators
// the model draws from, running statistics of long-tail losses, replay memories — is exposed by name and
// written into the checkpoint next to the optimizer state.
using System.Text.Json.Nodes;
using Engine.Nn;

namespace Engine.Training;

public interface ITrainable<in TBatch>
{
    /// <summary>The module whose parameters are trained and saved as the checkpoint's weights.</summary>
    Module Module { get; }

    /// <summary>Scalar losses by name ("loss_cls", "loss_box_reg", …), each connected to the parameters. The
    /// trainer owns the returned tensors (disposes them after the step).</summary>
    IReadOnlyDictionary<string, Tensor> Losses(TBatch batch);

    /// <summary>Random generators the model draws from during training, by stable name; their positions are
    /// checkpointed so a resumed run draws the same numbers.</summary>
    IReadOnlyDictionary<string, Generator> Generators => new Dictionary<string, Generator>();

    /// <summary>Components with state outside the module's parameters and buffers, by stable name.</summary>
    IReadOnlyDictionary<string, IStatefulComponent> StatefulComponents => new Dictionary<string, IStatefulComponent>();
}

/// <summary>Extra checkpointed state of a component: named tensors (saved in safetensors) and JSON values
/// (counters, flags, small lists). The tensors are owned by whoever holds the record.</summary>
public sealed record ComponentState(IReadOnlyDictionary<string, Tensor> Tensors, IReadOnlyDictionary<string, JsonNode?> Values)
{
    public static ComponentState Empty { get; } = new(new Dictionary<string, Tensor>(), new Dictionary<string, JsonNode?>());
}

public interface IStatefulComponent
{
    /// <summary>A snapshot of the state. The trainer disposes the returned tensors after writing them, so return
    /// copies or aliases (never the live tensors themselves if disposing them would free the component's memory
    /// — an alias from Tensor.Alias() is safe).</summary>
    ComponentState SaveState();

    /// <summary>Restores a snapshot written by SaveState. The tensors belong to the caller: copy what you keep.</summary>
    void LoadState(ComponentState state);
}

/// <summary>Where the training batches come from. Batch k of a source opened at position p is batch p + k of
/// the stream, so a resumed run opens the source at the saved position and sees the same batches.</summary>
public interface IBatchSource<out TBatch> : IDisposable
{
    /// <summary>The next batch (owned by the trainer, disposed after the step when it is IDisposable).</summary>
    TBatch Next();

    /// <summary>Batches handed out since the start of the stream (not since this source was opened).</summary>
    long Position { get; }
}
