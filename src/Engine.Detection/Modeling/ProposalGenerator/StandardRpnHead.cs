// The RPN's prediction head, as detectron2's StandardRPNHead: one 3×3 convolution (+ ReLU) shared by every
// pyramid level, then two sibling 1×1 convolutions: objectness logits (A per location) and anchor deltas
// (4·A per location, (dx, dy, dw, dh) of each anchor in turn). Weights ~ N(0, 0.01²), biases 0 (Faster R-CNN,
// Sec. 3.1.3), as detectron2 initializes them.
using Engine.Nn;

namespace Engine.Detection.Modeling.ProposalGenerator;

public sealed class StandardRpnHead : Module<IReadOnlyList<Tensor>, (List<Tensor> Logits, List<Tensor> Deltas)>
{
    /// <param name="inChannels">channels of every input level (FPN outputs share one count).</param>
    /// <param name="numAnchors">anchors per location A (same on every level).</param>
    public StandardRpnHead(int inChannels, int numAnchors, Generator generator, int boxDim = 4)
    {
        if (numAnchors <= 0) throw new ArgumentException($"StandardRpnHead: numAnchors {numAnchors} must be positive.");
        NumAnchors = numAnchors;
        Conv = RegisterModule("conv", Normal(new Conv2d(inChannels, inChannels, 3, generator, padding: 1, relu: true), generator));
        ObjectnessLogits = RegisterModule("objectness_logits", Normal(new Conv2d(inChannels, numAnchors, 1, generator), generator));
        AnchorDeltas = RegisterModule("anchor_deltas", Normal(new Conv2d(inChannels, numAnchors * boxDim, 1, generator), generator));
    }

    public int NumAnchors { get; }
    public Conv2d Conv { get; }
    public Conv2d ObjectnessLogits { get; }
    public Conv2d AnchorDeltas { get; }

    /// <summary>Per level: objectness logits (N, A, H, W) and anchor deltas (N, 4A, H, W).</summary>
    public override (List<Tensor> Logits, List<Tensor> Deltas) Forward(IReadOnlyList<Tensor> features)
    {
        var logits = new List<Tensor>();
        var deltas = new List<Tensor>();
        foreach (var x in features)
        {
            using var t = Conv.Forward(x);
            logits.Add(ObjectnessLogits.Forward(t));
            deltas.Add(AnchorDeltas.Forward(t));
        }
        return (logits, deltas);
    }

    private static Conv2d Normal(Conv2d conv, Generator generator)
    {
        Init.Normal(conv.Weight, generator, 0, 0.01);
        if (conv.Bias is { } b) Init.Zeros(b);
        return conv;
    }
}
