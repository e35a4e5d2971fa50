// The hook between the box head and the predictor — one of the long-tail plug points (ARCHITECTURE.md: RIO
// object-level memory replay, BACL feature hallucination). During training it sees the sampled RoIs' embeddings
// and labels and may append rows (replayed or synthesized embeddings with their labels); the box-regression loss
// keeps to the original rows, which always come first. It is not called at inference.
namespace Engine.Detection.Modeling.RoiHeads;

public interface IRoiEmbeddingAugmenter
{
    /// <param name="embeddings">(R, D) RoI embeddings of the sampled RoIs.</param>
    /// <param name="labels">(R) int64 class labels, background = K.</param>
    /// <returns>(R', D) embeddings and (R') labels, R' ≥ R, whose first R rows are the inputs' (the caller owns both).</returns>
    (Tensor Embeddings, Tensor Labels) Augment(Tensor embeddings, Tensor labels);
}

/// <summary>The default: embeddings and labels pass through unchanged.</summary>
public sealed class IdentityEmbeddingAugmenter : IRoiEmbeddingAugmenter
{
    public (Tensor Embeddings, Tensor Labels) Augment(Tensor embeddings, Tensor labels) =>
        (embeddings.Narrow(0, 0, embeddings.Size(0)), labels.Narrow(0, 0, labels.Size(0))); // views: the gradient flows through
}
