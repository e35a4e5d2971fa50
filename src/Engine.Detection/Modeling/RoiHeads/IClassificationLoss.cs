// The classification loss of the box predictor and the test-time score function that belongs with it — one of
// the long-tail plug points (ARCHITECTURE.md: softmax CE, sigmoid BCE, EQL, EQLv2, Seesaw, Federated, BAGS group
// softmax, BACL FCBL). The predictor calls these two members and nothing else, so a method is chosen by which
// implementation is built, never by a branch in the forward pass. Labels follow detectron2: foreground classes
// 0..K−1, background K (the last logit column).
namespace Engine.Detection.Modeling.RoiHeads;

public interface IClassificationLoss
{
    /// <summary>Scalar loss of <paramref name="logits"/> (R, K+1) against labels int64 (R) in [0, K] (K = background),
    /// averaged as the method defines (softmax CE: mean over the R sampled RoIs). Differentiable in the logits.</summary>
    Tensor Loss(Tensor logits, Tensor labels);

    /// <summary>Test-time class scores (R, K+1) in [0, 1] with background in the last column (the predictor drops it);
    /// a method without a background probability returns a column it never uses.</summary>
    Tensor Scores(Tensor logits);
}

/// <summary>Softmax cross-entropy over K+1 classes (Fast R-CNN), mean over the sampled RoIs; scores = softmax.</summary>
public sealed class SoftmaxCrossEntropyLoss : IClassificationLoss
{
    public Tensor Loss(Tensor logits, Tensor labels) => Engine.Losses.CrossEntropy(logits, labels);

    public Tensor Scores(Tensor logits) => logits.Softmax(1);
}
