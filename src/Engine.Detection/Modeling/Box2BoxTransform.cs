// The R-CNN box parameterization (Girshick et al., Fast R-CNN; detectron2 Box2BoxTransform): deltas
// (dx, dy, dw, dh) move a box's center by (dx·w, dy·h) and scale its size by (e^dw, e^dh), each delta
// multiplied by a weight. GetDeltas builds regression targets; ApplyDeltas decodes predictions (per class:
// deltas (R, K·4) against boxes (R, 4)). Both are targets/decoding, not part of the differentiated graph: the
// losses act on the deltas themselves.
using Engine.Detection.Autograd;

namespace Engine.Detection;

public sealed class Box2BoxTransform
{
    /// <summary>log(1000/16): no predicted scale may turn a 16 px box into one larger than 1000 px.</summary>
    public static readonly double DefaultScaleClamp = Math.Log(1000.0 / 16);

    public Box2BoxTransform(BoxCoderWeights weights, double scaleClamp = double.NaN)
    {
        if (!(weights.X > 0 && weights.Y > 0 && weights.W > 0 && weights.H > 0))
            throw new ArgumentException($"Box2BoxTransform: weights {weights} must all be positive (e.g. (10, 10, 5, 5) for ROI heads, (1, 1, 1, 1) for the RPN).");
        Weights = weights;
        ScaleClamp = double.IsNaN(scaleClamp) ? DefaultScaleClamp : scaleClamp;
    }

    /// <summary>The RPN's coder: weights (1, 1, 1, 1).</summary>
    public static Box2BoxTransform ForRpn() => new(new BoxCoderWeights(1, 1, 1, 1));

    /// <summary>The Fast R-CNN box head's coder: weights (10, 10, 5, 5).</summary>
    public static Box2BoxTransform ForRoiHeads() => new(new BoxCoderWeights(10, 10, 5, 5));

    public BoxCoderWeights Weights { get; }
    public double ScaleClamp { get; }

    /// <summary>(R, 4) deltas such that ApplyDeltas(deltas, src) = target (unless a scale is clamped).
    /// src boxes must have positive width and height.</summary>
    public Tensor GetDeltas(Tensor src, Tensor target)
    {
        Boxes.Check(src, "GetDeltas", "src");
        Boxes.Check(target, "GetDeltas", "target");
        if (src.Size(0) != target.Size(0) || src.Device != target.Device)
            throw new ArgumentException($"GetDeltas: src {ShapeUtil.Format(src.Shape)} on {src.Device} and target {ShapeUtil.Format(target.Shape)} on {target.Device} must pair up one to one on one device.");
        RejectGraph("GetDeltas", src, target);
        using var s = src.Contiguous();
        using var t = target.Contiguous();
        var deltas = Tensor.Empty([src.Size(0), 4], DType.Float32, src.Device);
        try { DetectionBackends.For(src.Device).EncodeBoxes(s, t, Weights, deltas); }
        catch
        {
            deltas.Dispose();
            throw;
        }
        return deltas;
    }

    /// <summary>Decodes deltas (R, K·4) (K class-specific transforms per box, or K = 1) against boxes (R, 4) into (R, K·4) boxes.</summary>
    public Tensor ApplyDeltas(Tensor deltas, Tensor boxes)
    {
        Boxes.Check(boxes, "ApplyDeltas");
        if (deltas.DType != DType.Float32 || deltas.Rank != 2 || deltas.Size(0) != boxes.Size(0) || deltas.Size(1) % 4 != 0)
            throw new ArgumentException($"ApplyDeltas: deltas must be float32 (R, K·4) with R = {boxes.Size(0)} to match boxes {ShapeUtil.Format(boxes.Shape)}, got {deltas.DType.Name()}{ShapeUtil.Format(deltas.Shape)}.");
        if (deltas.Device != boxes.Device)
            throw new ArgumentException($"ApplyDeltas: deltas are on {deltas.Device} and boxes on {boxes.Device}; move them to one device.");
        RejectGraph("ApplyDeltas", deltas, boxes);
        using var d = deltas.Contiguous();
        using var b = boxes.Contiguous();
        var output = Tensor.Empty(deltas.Shape, DType.Float32, deltas.Device);
        try { DetectionBackends.For(deltas.Device).DecodeBoxes(d, b, Weights, ScaleClamp, output); }
        catch
        {
            output.Dispose();
            throw;
        }
        return output;
    }

    private static void RejectGraph(string op, Tensor a, Tensor b)
    {
        if (TapeBridge.IsNeeded(a, b))
            throw new InvalidOperationException($"{op}: an input requires grad, but the box coder is not differentiable (its results are regression " +
                                                "targets or decoded boxes). Pass Detach()ed tensors or call it inside GradMode.NoGrad().");
    }
}
