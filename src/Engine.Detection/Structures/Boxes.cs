// Axis-aligned boxes as XYXY float32 tensors (R, 4): (x1, y1, x2, y2) in absolute pixels, x2 ≥ x1 for a
// non-empty box. The vectorized helpers of detectron2's Boxes structure: area, clipping to the image,
// non-empty mask, scaling, and the pairwise IoU matrix. Area, Clip and Scale are built from differentiable
// tensor ops; PairwiseIou and NonEmpty are discrete-use outputs (matching, filtering) with no gradient.
namespace Engine.Detection;

public static class Boxes
{
    internal static void Check(Tensor boxes, string op, string name = "boxes")
    {
        if (boxes.DType != DType.Float32 || boxes.Rank != 2 || boxes.Size(1) != 4)
            throw new ArgumentException($"{op}: {name} must be float32 XYXY of shape (R, 4), got {boxes.DType.Name()}{ShapeUtil.Format(boxes.Shape)}; " +
                                        "reshape to (-1, 4) and convert with To(DType.Float32).");
    }

    /// <summary>(R) = (x2 - x1)·(y2 - y1). Negative for inverted boxes, as in detectron2.</summary>
    public static Tensor Area(Tensor boxes)
    {
        Check(boxes, "Boxes.Area");
        using var x1 = boxes.Select(1, 0);
        using var y1 = boxes.Select(1, 1);
        using var x2 = boxes.Select(1, 2);
        using var y2 = boxes.Select(1, 3);
        using var w = x2.Sub(x1);
        using var h = y2.Sub(y1);
        return w.Mul(h);
    }

    /// <summary>(N, M) IoU of every box of <paramref name="a"/> (N, 4) with every box of <paramref name="b"/> (M, 4):
    /// intersection / union where the intersection is positive, else 0 (so empty and disjoint pairs give 0, never NaN).</summary>
    public static Tensor PairwiseIou(Tensor a, Tensor b)
    {
        Check(a, "Boxes.PairwiseIou", "a");
        Check(b, "Boxes.PairwiseIou", "b");
        if (a.Device != b.Device)
            throw new ArgumentException($"Boxes.PairwiseIou: a is on {a.Device} and b on {b.Device}; move both to one device.");
        using var ac = a.Contiguous();
        using var bc = b.Contiguous();
        var iou = Tensor.Empty([a.Size(0), b.Size(0)], DType.Float32, a.Device);
        try { DetectionBackends.For(a.Device).PairwiseIou(ac, bc, iou); }
        catch
        {
            iou.Dispose();
            throw;
        }
        return iou;
    }

    /// <summary>Clamps x to [0, width] and y to [0, height] (detectron2 Boxes.clip). Differentiable (gradient 0 where clamped).</summary>
    public static Tensor Clip(Tensor boxes, int height, int width)
    {
        Check(boxes, "Boxes.Clip");
        if (height < 0 || width < 0) throw new ArgumentException($"Boxes.Clip: image size {height}×{width} must not be negative.");
        // one clamp per coordinate (torch.clamp semantics: the gradient passes where 0 ≤ v ≤ limit)
        var columns = new Tensor[4];
        try
        {
            for (var k = 0; k < 4; k++)
            {
                using var column = boxes.Select(1, k);
                columns[k] = column.Clamp(0, k % 2 == 0 ? width : height);
            }
            return Tensor.Stack(columns, 1);
        }
        finally
        {
            foreach (var t in columns) t?.Dispose();
        }
    }

    /// <summary>uint8 (R): 1 where width > threshold and height > threshold.</summary>
    public static Tensor NonEmpty(Tensor boxes, double threshold = 0)
    {
        Check(boxes, "Boxes.NonEmpty");
        using var noGrad = GradMode.NoGrad();
        using var x1 = boxes.Select(1, 0);
        using var y1 = boxes.Select(1, 1);
        using var x2 = boxes.Select(1, 2);
        using var y2 = boxes.Select(1, 3);
        using var w = x2.Sub(x1);
        using var h = y2.Sub(y1);
        using var side = w.Minimum(h); // NaN in either side stays NaN and fails the comparison
        return side.Gt(threshold);
    }

    /// <summary>x coordinates times scaleX, y coordinates times scaleY. Differentiable.</summary>
    public static Tensor Scale(Tensor boxes, double scaleX, double scaleY)
    {
        Check(boxes, "Boxes.Scale");
        using var factors = Tensor.From<float>([(float)scaleX, (float)scaleY, (float)scaleX, (float)scaleY], [4], boxes.Device);
        return boxes.Mul(factors);
    }
}
