// Records the long-tail ops (fused losses, group softmax) on Engine.Core's autograd tape through its public
// custom-op entry point: tensors needed by backward are saved through the node, so callers may dispose the
// forward tensors, and backward returns fresh gradients.
namespace Engine.LongTail.Autograd;

/// <summary>Saves a tensor on the node being recorded and returns the alias the backward closure must use.</summary>
public delegate Tensor SaveForBackward(Tensor t);

public static class CustomOp
{
    /// <summary>True when grad mode is on and some input requires grad.</summary>
    public static bool IsNeeded(params ReadOnlySpan<Tensor> inputs) => Engine.Autograd.Tape.IsNeededFor(inputs);

    public static void Record(Tensor output, string op, Tensor[] inputs, Func<SaveForBackward, Func<Tensor, Tensor?[]>> build) =>
        Engine.Autograd.Tape.RecordCustom(output, op, inputs, saved => build(saved.Save));
}
