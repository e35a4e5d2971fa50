// Plug point "which RoI embeddings reach the predictor" (ARCHITECTURE.md, long-tail-methods.md section 7): an
// augmenter sits between the box head's shared FCs and the classifier/regressor. It receives the embeddings x (R, D)
// of the sampled RoIs with their labels (and boxes where it needs them) and returns the rows the predictor sees: the
// current rows unchanged (their gradient path intact) followed by appended rows that are constants (no gradient into
// the box head). The losses then normalize by the grown row count. State is checkpointed. An augmenter that keeps
// statistics of boxes derived from the ground truth (FHM's jittered GT boxes) names those boxes per image; the
// detector runs them through the same pooler and box head without gradient and hands the embeddings back.
using Engine.Nn;

namespace Engine.LongTail;

/// <summary>The sampled RoIs of one training step after the box head.</summary>
/// <param name="Embeddings">(R, D) float32 box-head embeddings (may require grad).</param>
/// <param name="Labels">(R) int64 in 0..C, C = background.</param>
/// <param name="Proposals">(R, 4) float32 proposal boxes (x1, y1, x2, y2), or null when the augmenter needs none.</param>
/// <param name="GtBoxes">(R, 4) float32 matched ground-truth boxes (read on positive rows), or null.</param>
public sealed record RoiBatch(Tensor Embeddings, Tensor Labels, Tensor? Proposals = null, Tensor? GtBoxes = null);

/// <summary>The rows reaching the predictor: the <see cref="CurrentRows"/> input rows first, then the appended rows.
/// Proposals and GtBoxes are present when the augmenter stores boxes (the appended rows' regression targets follow
/// from them); <see cref="AppendedRowsRegress"/> says whether the appended rows take part in box regression.</summary>
public sealed record RoiAugmentation(Tensor Embeddings, Tensor Labels, Tensor? Proposals, Tensor? GtBoxes, int CurrentRows, bool AppendedRowsRegress) : IDisposable
{
    /// <summary>Total rows N (the normalizer of the classification loss).</summary>
    public int Rows => Embeddings.Size(0);

    public int AppendedRows => Rows - CurrentRows;

    public void Dispose()
    {
        Embeddings.Dispose();
        Labels.Dispose();
        Proposals?.Dispose();
        GtBoxes?.Dispose();
    }
}

public interface IRoiEmbeddingAugmenter : IDisposable
{
    /// <summary>C, the number of foreground classes.</summary>
    int NumClasses { get; }

    /// <summary>D, the embedding width.</summary>
    int EmbeddingDim { get; }

    /// <summary>One training step: returns the rows for the predictor and updates the state from this batch.
    /// <paramref name="generator"/> drives every random choice, so a resumed run repeats them.</summary>
    RoiAugmentation Augment(RoiBatch batch, Generator generator);

    /// <summary>Boxes of one training image (with their labels 0..C-1) whose embeddings the augmenter wants to observe
    /// before <see cref="Augment"/>; null (the default) when it observes none.</summary>
    /// <param name="gtBoxes">(G, 4) float32 ground-truth boxes (x1, y1, x2, y2) in the image's input coordinates.</param>
    /// <param name="gtClasses">(G) int64 classes.</param>
    (Tensor Boxes, Tensor Labels)? BoxesToObserve(Tensor gtBoxes, Tensor gtClasses, (int Height, int Width) imageSize, Generator generator) => null;

    /// <summary>The embeddings (M, D) of the boxes BoxesToObserve named (all images of the batch, in order), with
    /// their labels (M); computed without gradient.</summary>
    void Observe(Tensor embeddings, Tensor labels) { }

    StateDict StateDict();

    void LoadStateDict(IReadOnlyDictionary<string, Tensor> state);
}
