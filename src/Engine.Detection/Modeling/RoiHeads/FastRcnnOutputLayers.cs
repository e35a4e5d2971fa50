// The box predictor of Fast R-CNN, as detectron2's FastRCNNOutputLayers: from RoI embeddings (R, D), class
// logits cls_score (R, K+1) with background last (index K), and class-specific box deltas bbox_pred (R, 4K)
// (or (R, 4) class-agnostic). Training losses: the classification loss behind IClassificationLoss (softmax
// cross-entropy by default) and the box regression — smooth-L1 (L1 at β = 0) of the foreground RoIs' deltas of
// their ground-truth class only, summed and divided by the number of sampled RoIs (detectron2's normalization,
// which keeps the foreground fraction's weight). Inference: scores from the loss's score function, background
// dropped, one decoded box per (RoI, class), clipped, thresholded, NMS per class, top-k per image.
// Initialization: cls_score ~ N(0, 0.01²), bbox_pred ~ N(0, 0.001²), biases 0.
using Engine.Nn;

namespace Engine.Detection.Modeling.RoiHeads;

public sealed class FastRcnnOutputLayers : Module<Tensor, (Tensor Logits, Tensor Deltas)>
{
    public FastRcnnOutputLayers(int inputDim, int numClasses, Generator generator, Box2BoxTransform boxTransform, IClassificationLoss classificationLoss,
                                bool classAgnosticBoxReg = false, double smoothL1Beta = 0, double boxRegLossWeight = 1,
                                double scoreThreshold = 0.05, double nmsThreshold = 0.5, int detectionsPerImage = 100)
    {
        if (numClasses <= 0) throw new ArgumentException($"FastRcnnOutputLayers: numClasses {numClasses} must be positive.");
        if (detectionsPerImage <= 0) throw new ArgumentException($"FastRcnnOutputLayers: detectionsPerImage {detectionsPerImage} must be positive.");
        NumClasses = numClasses;
        ClassAgnosticBoxReg = classAgnosticBoxReg;
        ClsScore = RegisterModule("cls_score", new Linear(inputDim, numClasses + 1, generator));
        BboxPred = RegisterModule("bbox_pred", new Linear(inputDim, 4 * (classAgnosticBoxReg ? 1 : numClasses), generator));
        Init.Normal(ClsScore.Weight, generator, 0, 0.01);
        Init.Zeros(ClsScore.Bias!);
        Init.Normal(BboxPred.Weight, generator, 0, 0.001);
        Init.Zeros(BboxPred.Bias!);
        BoxTransform = boxTransform;
        ClassificationLoss = classificationLoss;
        SmoothL1Beta = smoothL1Beta;
        BoxRegLossWeight = boxRegLossWeight;
        ScoreThreshold = scoreThreshold;
        NmsThreshold = nmsThreshold;
        DetectionsPerImage = detectionsPerImage;
    }

    public int NumClasses { get; }
    public bool ClassAgnosticBoxReg { get; }
    public Linear ClsScore { get; }
    public Linear BboxPred { get; }
    public Box2BoxTransform BoxTransform { get; }
    public IClassificationLoss ClassificationLoss { get; }
    public double SmoothL1Beta { get; }
    public double BoxRegLossWeight { get; }
    public double ScoreThreshold { get; }
    public double NmsThreshold { get; }
    public int DetectionsPerImage { get; }

    /// <param name="x">(R, D) RoI embeddings.</param>
    /// <returns>logits (R, K+1) and deltas (R, 4K) (or (R, 4) class-agnostic).</returns>
    public override (Tensor Logits, Tensor Deltas) Forward(Tensor x) => (ClsScore.Forward(x), BboxPred.Forward(x));

    /// <summary>loss_cls over all R' rows of logits and labels; loss_box_reg over the first R rows of deltas (the sampled
    /// RoIs, whose proposal and matched ground-truth boxes are (R, 4)), normalized by R.</summary>
    public Dictionary<string, Tensor> Losses(Tensor logits, Tensor deltas, Tensor labels, Tensor proposalBoxes, Tensor gtBoxes)
    {
        var r = proposalBoxes.Size(0);
        if (labels.DType != DType.Int64 || labels.Rank != 1 || labels.Size(0) != logits.Size(0) || deltas.Size(0) < r || gtBoxes.Size(0) != r)
            throw new ArgumentException($"FastRcnnOutputLayers.Losses: labels int64 (R') = {labels.DType.Name()}{ShapeUtil.Format(labels.Shape)} must match logits {ShapeUtil.Format(logits.Shape)}, " +
                                        $"and deltas {ShapeUtil.Format(deltas.Shape)} must have at least the R = {r} rows of proposals {ShapeUtil.Format(proposalBoxes.Shape)} / gt boxes {ShapeUtil.Format(gtBoxes.Shape)}.");
        using var scope = DisposeScope.Begin();
        var lossCls = ClassificationLoss.Loss(logits, labels);
        var lossBox = BoxRegressionLoss(deltas.Narrow(0, 0, r), labels.Narrow(0, 0, r), proposalBoxes, gtBoxes);
        return new Dictionary<string, Tensor> { ["loss_cls"] = scope.Keep(lossCls), ["loss_box_reg"] = scope.Keep(lossBox) };
    }

    /// <summary>Σ over foreground RoIs of the smooth-L1 between their ground-truth class's 4 deltas (R, 4K) and the
    /// regression targets, divided by the R sampled RoIs, times the loss weight.</summary>
    private Tensor BoxRegressionLoss(Tensor deltas, Tensor labels, Tensor proposalBoxes, Tensor gtBoxes)
    {
        var r = proposalBoxes.Size(0);
        var classes = ClassAgnosticBoxReg ? 1 : NumClasses;
        var l = labels.ToInt64Array();
        var foreground = new List<long>();
        var rows = new List<long>();
        for (var i = 0; i < r; i++)
            if (l[i] >= 0 && l[i] < NumClasses)
            {
                foreground.Add(i);
                rows.Add((long)i * classes + (ClassAgnosticBoxReg ? 0 : l[i]));   // row of (R·K, 4) holding class l[i]'s deltas of RoI i
            }
        var device = deltas.Device;
        using var fg = Tensor.From<long>(foreground.ToArray(), [foreground.Count], device);
        using var rowIndex = Tensor.From<long>(rows.ToArray(), [rows.Count], device);
        Tensor targets;
        using (GradMode.NoGrad())
        {
            using var src = proposalBoxes.IndexSelect(0, fg);
            using var dst = gtBoxes.IndexSelect(0, fg);
            targets = BoxTransform.GetDeltas(src, dst);                                  // (F, 4)
        }
        using (targets)
        using (var perClass = deltas.Reshape(r * classes, 4))
        using (var predicted = perClass.IndexSelect(0, rowIndex))                        // (F, 4)
        using (var sum = Engine.Losses.SmoothL1(predicted, targets, SmoothL1Beta, Reduction.Sum))
            return sum.Mul(BoxRegLossWeight / Math.Max(r, 1));
    }

    /// <summary>Detections of each image from the logits (ΣR_i, K+1) and deltas of its proposals (proposalBoxes[i]: (R_i, 4)),
    /// in image coordinates (boxes clipped to imageSizes[i]).</summary>
    public List<Instances> Inference(Tensor logits, Tensor deltas, IReadOnlyList<Tensor> proposalBoxes, IReadOnlyList<(int Height, int Width)> imageSizes)
    {
        using var noGrad = GradMode.NoGrad();
        using var scope = DisposeScope.Begin();
        var scores = ClassificationLoss.Scores(logits);                                  // (ΣR, K+1)
        var result = new List<Instances>();
        var start = 0;
        for (var i = 0; i < proposalBoxes.Count; i++)
        {
            var r = proposalBoxes[i].Size(0);
            var boxes = BoxTransform.ApplyDeltas(deltas.Narrow(0, start, r), proposalBoxes[i]);   // (R, 4K) or (R, 4)
            var perClass = ClassAgnosticBoxReg ? boxes.Unsqueeze(1).Expand(r, NumClasses, 4) : boxes.View(r, NumClasses, 4);
            var detections = PostProcess(perClass, scores.Narrow(0, start, r), imageSizes[i]);
            scope.Keep(detections.PredBoxes!);
            scope.Keep(detections.Scores!);
            scope.Keep(detections.PredClasses!);
            result.Add(detections);
            start += r;
        }
        return result;
    }

    /// <summary>detectron2's fast_rcnn_inference_single_image: boxes (R, K, 4) and scores (R, K+1) → at most
    /// DetectionsPerImage detections with score &gt; ScoreThreshold, after NMS within each class, by decreasing score.</summary>
    internal Instances PostProcess(Tensor boxes, Tensor scores, (int Height, int Width) imageSize)
    {
        using var scope = DisposeScope.Begin();
        var r = boxes.Size(0);
        var k = NumClasses;
        var clipped = Boxes.Clip(boxes.Reshape(r * k, 4), imageSize.Height, imageSize.Width);   // (R·K, 4), row i·K + c
        var s = scores.Contiguous().ToFloatArray();
        var b = clipped.ToFloatArray();
        var candidates = new List<long>();
        for (var i = 0; i < r; i++)
            for (var c = 0; c < k; c++)
            {
                var j = (long)i * k + c;
                // column K (background) is never a candidate; a non-finite box (a diverged model) is dropped, as detectron2 does
                if (s[i * (k + 1) + c] > ScoreThreshold && float.IsFinite(b[4 * j] + b[4 * j + 1] + b[4 * j + 2] + b[4 * j + 3])) candidates.Add(j);
            }
        var index = Tensor.From<long>(candidates.ToArray(), [candidates.Count], boxes.Device);
        var candidateBoxes = clipped.IndexSelect(0, index);
        var candidateScores = Tensor.From<float>(candidates.Select(j => s[j / k * (k + 1) + j % k]).ToArray(), [candidates.Count], boxes.Device);
        var candidateClasses = Tensor.From<long>(candidates.Select(j => j % k).ToArray(), [candidates.Count], boxes.Device);
        var keep = DetectionOps.BatchedNms(candidateBoxes, candidateScores, candidateClasses, NmsThreshold);
        var top = keep.Narrow(0, 0, Math.Min(DetectionsPerImage, keep.Size(0)));
        return new Instances(imageSize)
        {
            PredBoxes = scope.Keep(candidateBoxes.IndexSelect(0, top)),
            Scores = scope.Keep(candidateScores.IndexSelect(0, top)),
            PredClasses = scope.Keep(candidateClasses.IndexSelect(0, top)),
        };
    }
}
