// Plug point "classification loss and test-time scores" (ARCHITECTURE.md): the detector hands the box
// predictor's logits and the sampled RoIs' labels to one IClassificationLoss per iteration, and at test time
// asks the same object for the class probabilities. The method decides how many logits it needs
// (LogitCount), keeps its running statistics as named tensors for checkpoints, and updates them inside Loss
// (each method's section of long-tail-methods.md fixes whether before or after the loss value is formed).
// No method needs the gradient of the logits after backward: EQLv2's statistics are w·|σ(z) − y|, a function of the
// logits and weights (section 1.5, the per-element gradient magnitude of the unweighted BCE), so they are gathered in
// the same fused pass as the loss, and the interface has no gradient hook.
using Engine.Nn;

namespace Engine.LongTail;

/// <summary>What one call of <see cref="IClassificationLoss.Loss"/> may do besides computing the loss.</summary>
/// <param name="UpdateState">true in training: running statistics (EQLv2 gradient sums, Seesaw counts, FCBL confusion)
/// advance. false evaluates the loss of the current state without changing statistics (random draws of Federated
/// and BAGS still advance their generators).</param>
public sealed record LossContext(bool UpdateState = true)
{
    public static LossContext Training { get; } = new();

    public static LossContext Frozen { get; } = new(UpdateState: false);
}

public interface IClassificationLoss : IDisposable
{
    /// <summary>C, the number of foreground classes; labels are 0..C-1 for foreground and C for background.</summary>
    int NumClasses { get; }

    /// <summary>How many logits per RoI the classifier must produce for this loss (C+1 for most, C for EQL,
    /// C+2 for Seesaw, C+6 for BAGS).</summary>
    int LogitCount { get; }

    /// <summary>The scalar loss of logits (N, LogitCount) against labels (N, int64, background = C), normalized by
    /// N (all sampled RoIs). Autograd-connected to the logits. N = 0 gives 0 with a zero gradient.</summary>
    Tensor Loss(Tensor logits, Tensor labels, LossContext? context = null);

    /// <summary>The same loss where the caller has read the labels to the host already (<paramref name="hostLabels"/>: the
    /// values of <paramref name="labels"/>), so an implementation that needs them there need not read them again (on a
    /// GPU, a wait). By default the host copy is not used.</summary>
    Tensor Loss(Tensor logits, Tensor labels, long[] hostLabels, LossContext? context = null) => Loss(logits, labels, context);

    /// <summary>Test-time probabilities (N, C+1): column c &lt; C is the score of class c, column C the background
    /// score where the method defines one (0 otherwise). Computed without recording and without touching state.</summary>
    Tensor Scores(Tensor logits);

    /// <summary>A copy of the persistent state under stable names (empty for stateless losses).</summary>
    StateDict StateDict();

    /// <summary>Restores the state written by StateDict; every key, shape and dtype is checked before anything is written.</summary>
    void LoadStateDict(IReadOnlyDictionary<string, Tensor> state);
}
