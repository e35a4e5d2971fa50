// Plug point "class-specific regression / mask gradients" (ARCHITECTURE.md): a transfuser sits on the
// class-specific box regressor outputs (R, 4C) of the training RoIs. Its forward is the identity; in backward it
// replaces the incoming gradient by the transfused one (the base gradient plus the gradient of its extra loss),
// so the regressor weights of other classes, and the shared box head through the embeddings, receive the signal.
// Its running statistics are checkpointed.
using Engine.Nn;

namespace Engine.LongTail;

/// <summary>The result of one transfusion: <see cref="BoxDeltas"/> equals the input deltas in value and carries the
/// transfusing backward; <see cref="ExtraLoss"/> is the value of the extra loss whose gradient backward adds (for
/// logging: its gradient is already in the transform, do not add it to the total loss again).</summary>
public sealed record GradientTransfusion(Tensor BoxDeltas, double ExtraLoss) : IDisposable
{
    public void Dispose() => BoxDeltas.Dispose();
}

public interface IGradientTransfuser : IDisposable
{
    /// <summary>C, the number of foreground classes (labels use C for background).</summary>
    int NumClasses { get; }

    /// <summary>D, the width of the RoI embeddings feeding the regressor.</summary>
    int EmbeddingDim { get; }

    /// <summary>Training step on the regressor outputs: updates the running statistics from this batch, then returns
    /// the gradient transform of <paramref name="boxDeltas"/>.</summary>
    /// <param name="boxDeltas">(R, 4C) float32, class-major: column 4c+k is coordinate k of class c.</param>
    /// <param name="embeddings">(R, D) float32, the embeddings the regressor was applied to (read, not differentiated).</param>
    /// <param name="targets">(R, 4) float32 regression targets (only positive rows are read).</param>
    /// <param name="labels">(R) int64 in 0..C, C = background.</param>
    /// <param name="normalizer">N, the row count the base box loss is divided by (≥ R when rows were appended).</param>
    GradientTransfusion Transfuse(Tensor boxDeltas, Tensor embeddings, Tensor targets, Tensor labels, int normalizer);

    StateDict StateDict();

    void LoadStateDict(IReadOnlyDictionary<string, Tensor> state);
}
