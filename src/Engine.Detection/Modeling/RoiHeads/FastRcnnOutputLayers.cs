// The box predictor of Fast R-CNN, as detectron2's FastRCNNOutputLayers: from RoI embeddings (R, D), class
// logits cls_score (R, L) with L = the classification loss's LogitCount (C+1 for softmax, background last) and
// class-specific box deltas bbox_pred (R, 4C) (or (R, 4) class-agnostic). The long-tail plug points of
// Engine.LongTail decide the rest, so the forward has no method-specific branch: the classifier layer (linear,
// normalized linear or cosine), the classification loss and its test-time score function, the gradient
// transfuser on the class-specific regression outputs of the training RoIs (its extra loss is logged as
// loss_box_trans; its gradient is already inside the transfused deltas' backward), and the post-hoc logit
// calibrator, whose statistics are buffers of the model (CalibratorState) and which replaces the score function
// at test. Box regression: smooth-L1 (L1 at β = 0) of the foreground rows' deltas of their ground-truth class
// only, summed and divided by the regression rows (the sampled RoIs, plus appended rows an augmenter lets
// regress). Inference: scores, background dropped, one decoded box per (RoI, class), clipped, thresholded, NMS
// per class, top-k per image. Initialization of the default linear classifier: N(0, 0.01²), bias 0 (or the
// sigmoid prior); bbox_pred ~ N(0, 0.001²), bias 0.
using Engine.LongTail;
using Engine.Nn;

namespace Engine.Detection.Modeling.RoiHeads;

public sealed class FastRcnnOutputLayers : Module<Tensor, (Tensor Logits, Tensor Deltas)>
{
    /// <param name="classifier">builds the classifier layer from (input width, logit count); null: a linear layer
    /// N(0, 0.01²) with every bias <paramref name="classifierBias"/>.</param>
    /// <param name="calibrator">post-hoc logit calibrator; its statistics become buffers "calibrator.*".</param>
    /// <param name="transfuser">gradient transfuser on the class-specific regression outputs (needs 4C outputs).</param>
    public FastRcnnOutputLayers(int inputDim, int numClasses, Generator generator, Box2BoxTransform boxTransform, IClassificationLoss classificationLoss,
                                bool classAgnosticBoxReg = false, double smoothL1Beta = 0, double boxRegLossWeight = 1,
                                double scoreThreshold = 0.05, double nmsThreshold = 0.5, int detectionsPerImage = 100,
                                Func<int, int, Module<Tensor, Tensor>>? classifier = null, double classifierBias = 0,
                                ILogitCalibrator? calibrator = null, IGradientTransfuser? transfuser = null)
    {
        ArgumentNullException.ThrowIfNull(classificationLoss);
        if (numClasses <= 0) throw new ArgumentException($"FastRcnnOutputLayers: numClasses {numClasses} must be positive.");
        if (detectionsPerImage <= 0) throw new ArgumentException($"FastRcnnOutputLayers: detectionsPerImage {detectionsPerImage} must be positive.");
        if (classificationLoss.NumClasses != numClasses)
            throw new ArgumentException($"FastRcnnOutputLayers: the classification loss is for {classificationLoss.NumClasses} classes, the predictor for {numClasses}.");
        if (calibrator is not null && calibrator.NumClasses != numClasses)
            throw new ArgumentException($"FastRcnnOutputLayers: the calibrator is for {calibrator.NumClasses} classes, the predictor for {numClasses}.");
        if (calibrator is not null && classificationLoss.LogitCount != numClasses + 1)
            throw new ArgumentException($"FastRcnnOutputLayers: a logit calibrator needs C + 1 = {numClasses + 1} logits (a softmax head with a background column); {classificationLoss.GetType().Name} has {classificationLoss.LogitCount}.");
        if (transfuser is not null && (classAgnosticBoxReg || transfuser.NumClasses != numClasses || transfuser.EmbeddingDim != inputDim))
            throw new ArgumentException($"FastRcnnOutputLayers: the gradient transfuser (C = {transfuser.NumClasses}, D = {transfuser.EmbeddingDim}) needs class-specific regression of the same C = {numClasses} " +
                                        $"classes over D = {inputDim} embeddings{(classAgnosticBoxReg ? "; MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG is true" : "")}.");
        NumClasses = numClasses;
        ClassAgnosticBoxReg = classAgnosticBoxReg;
        var logitCount = classificationLoss.LogitCount;
        if (classifier is null)
        {
            // the order of the draws (both layers made, then initialized) is the plain detector's, so its weights do not change
            var linear = new Linear(inputDim, logitCount, generator);
            ClsScore = RegisterModule("cls_score", linear);
            BboxPred = RegisterModule("bbox_pred", new Linear(inputDim, 4 * (classAgnosticBoxReg ? 1 : numClasses), generator));
            Init.Normal(linear.Weight, generator, 0, 0.01);
            using (GradMode.NoGrad()) linear.Bias!.Value.Fill(classifierBias);
        }
        else
        {
            ClsScore = RegisterModule("cls_score", classifier(inputDim, logitCount));
            BboxPred = RegisterModule("bbox_pred", new Linear(inputDim, 4 * (classAgnosticBoxReg ? 1 : numClasses), generator));
        }
        Init.Normal(BboxPred.Weight, generator, 0, 0.001);
        Init.Zeros(BboxPred.Bias!);
        BoxTransform = boxTransform;
        ClassificationLoss = classificationLoss;
        if (calibrator is not null) Calibration = RegisterModule("calibrator", new CalibratorState(calibrator));
        Transfuser = transfuser;
        SmoothL1Beta = smoothL1Beta;
        BoxRegLossWeight = boxRegLossWeight;
        ScoreThreshold = scoreThreshold;
        NmsThreshold = nmsThreshold;
        DetectionsPerImage = detectionsPerImage;
    }

    public int NumClasses { get; }
    public bool ClassAgnosticBoxReg { get; }

    /// <summary>The classifier layer: (R, D) → (R, ClassificationLoss.LogitCount).</summary>
    public Module<Tensor, Tensor> ClsScore { get; }
    public Linear BboxPred { get; }
    public Box2BoxTransform BoxTransform { get; }
    public IClassificationLoss ClassificationLoss { get; }

    /// <summary>The calibrator and its statistics as buffers, or null.</summary>
    public CalibratorState? Calibration { get; }
    public ILogitCalibrator? Calibrator => Calibration?.Calibrator;
    public IGradientTransfuser? Transfuser { get; }
    public double SmoothL1Beta { get; }
    public double BoxRegLossWeight { get; }
    public double ScoreThreshold { get; }
    public double NmsThreshold { get; }
    public int DetectionsPerImage { get; }

    /// <param name="x">(R, D) RoI embeddings.</param>
    /// <returns>logits (R, L) and deltas (R, 4K) (or (R, 4) class-agnostic).</returns>
    public override (Tensor Logits, Tensor Deltas) Forward(Tensor x) => (ClsScore.Forward(x), BboxPred.Forward(x));

    /// <summary>The losses of the rows an embedding augmenter handed on: all rows reach the classification loss; the
    /// current rows, whose boxes are <paramref name="proposalBoxes"/> and <paramref name="gtBoxes"/> (R, 4), reach box
    /// regression, and the appended ones too when the augmenter lets them regress (then it gives the boxes of all rows).</summary>
    public Dictionary<string, Tensor> Losses(RoiAugmentation rows, Tensor proposalBoxes, Tensor gtBoxes)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (proposalBoxes.Size(0) != rows.CurrentRows || gtBoxes.Size(0) != rows.CurrentRows)
            throw new ArgumentException($"FastRcnnOutputLayers.Losses: the {rows.CurrentRows} current rows need as many proposal and ground-truth boxes, got {ShapeUtil.Format(proposalBoxes.Shape)} and {ShapeUtil.Format(gtBoxes.Shape)}.");
        if (rows.AppendedRowsRegress && (rows.Proposals is null || rows.GtBoxes is null || rows.Proposals.Size(0) != rows.Rows || rows.GtBoxes.Size(0) != rows.Rows))
            throw new ArgumentException($"FastRcnnOutputLayers.Losses: appended rows that regress need the boxes of all {rows.Rows} rows, got " +
                                        $"{(rows.Proposals is null ? "none" : ShapeUtil.Format(rows.Proposals.Shape))} and {(rows.GtBoxes is null ? "none" : ShapeUtil.Format(rows.GtBoxes.Shape))}.");
        using var scope = DisposeScope.Begin();
        var (logits, deltas) = Forward(rows.Embeddings);
        var losses = rows.AppendedRowsRegress
            ? Losses(logits, deltas, rows.Labels, rows.Proposals!, rows.GtBoxes!, rows.Embeddings)
            : Losses(logits, deltas, rows.Labels, proposalBoxes, gtBoxes, rows.Embeddings);
        foreach (var loss in losses.Values) scope.Keep(loss);
        return losses;
    }

    /// <summary>loss_cls over all R' rows of logits and labels; loss_box_reg over the first R rows of deltas (those
    /// whose proposal and matched ground-truth boxes are given, (R, 4)), normalized by R; with a gradient transfuser,
    /// loss_box_trans (its extra loss, a constant for logging: the transfused deltas carry its gradient), which needs
    /// the <paramref name="embeddings"/> (R' or R rows) the deltas came from.</summary>
    public Dictionary<string, Tensor> Losses(Tensor logits, Tensor deltas, Tensor labels, Tensor proposalBoxes, Tensor gtBoxes, Tensor? embeddings = null)
    {
        var r = proposalBoxes.Size(0);
        if (labels.DType != DType.Int64 || labels.Rank != 1 || labels.Size(0) != logits.Size(0) || deltas.Size(0) < r || gtBoxes.Size(0) != r)
            throw new ArgumentException($"FastRcnnOutputLayers.Losses: labels int64 (R') = {labels.DType.Name()}{ShapeUtil.Format(labels.Shape)} must match logits {ShapeUtil.Format(logits.Shape)}, " +
                                        $"and deltas {ShapeUtil.Format(deltas.Shape)} must have at least the R = {r} rows of proposals {ShapeUtil.Format(proposalBoxes.Shape)} / gt boxes {ShapeUtil.Format(gtBoxes.Shape)}.");
        if (Transfuser is not null && (embeddings is null || embeddings.Size(0) < r))
            throw new ArgumentException($"FastRcnnOutputLayers.Losses: the gradient transfuser reads the embeddings of the {r} regression rows; pass them (got {(embeddings is null ? "none" : ShapeUtil.Format(embeddings.Shape))}).");
        using var scope = DisposeScope.Begin();
        // the calibrator's working copy follows the model's buffers (a resumed run loaded them), and they follow it back
        // after a loss that moves its statistics (LogN's repo-mode head)
        // The labels are read to the host once (on a GPU, the one wait of these losses): the classification loss checks
        // and uses them, and the regression picks its foreground rows from them.
        var hostLabels = labels.ToInt64Array();
        Calibration?.Push();
        var lossCls = ClassificationLoss.Loss(logits, labels, hostLabels);
        Calibration?.Pull();
        var result = new Dictionary<string, Tensor> { ["loss_cls"] = scope.Keep(lossCls) };
        var regressionDeltas = deltas.Narrow(0, 0, r);
        var regressionLabels = labels.Narrow(0, 0, r);
        if (Transfuser is not null)
        {
            var targets = RegressionTargets(hostLabels.AsSpan(0, r), proposalBoxes, gtBoxes);
            var transfusion = Transfuser.Transfuse(regressionDeltas, embeddings!.Narrow(0, 0, r), targets, regressionLabels, Math.Max(r, 1));
            regressionDeltas = transfusion.BoxDeltas;
            result["loss_box_trans"] = scope.Keep(Tensor.Scalar((float)transfusion.ExtraLoss, logits.Device));
        }
        result["loss_box_reg"] = scope.Keep(BoxRegressionLoss(regressionDeltas, hostLabels.AsSpan(0, r), proposalBoxes, gtBoxes));
        return result;
    }

    /// <summary>Regression targets (R, 4) of the foreground rows, 0 on background rows (their matched ground truth is an
    /// arbitrary box, so no target exists); <paramref name="labels"/> are the R rows' labels on the host. Scattered into
    /// zeros on the device, so nothing is read back.</summary>
    private Tensor RegressionTargets(ReadOnlySpan<long> labels, Tensor proposalBoxes, Tensor gtBoxes)
    {
        using var noGrad = GradMode.NoGrad();
        using var scope = DisposeScope.Begin();
        var r = proposalBoxes.Size(0);
        var foreground = new List<long>();
        for (var i = 0; i < r; i++)
            if (labels[i] < NumClasses) foreground.Add(i);
        var device = proposalBoxes.Device;
        var fg = Tensor.From<long>(foreground.ToArray(), [foreground.Count], device);
        var targets = BoxTransform.GetDeltas(proposalBoxes.IndexSelect(0, fg), gtBoxes.IndexSelect(0, fg));  // (F, 4)
        var rows = fg.Unsqueeze(1).Expand(foreground.Count, 4).Contiguous();                                  // (F, 4): row of each target
        return scope.Keep(Tensor.Zeros([r, 4], DType.Float32, device).ScatterAdd(0, rows, targets));
    }

    /// <summary>Σ over foreground RoIs of the smooth-L1 between their ground-truth class's 4 deltas (R, 4K) and the
    /// regression targets, divided by the R sampled RoIs, times the loss weight.</summary>
    private Tensor BoxRegressionLoss(Tensor deltas, ReadOnlySpan<long> l, Tensor proposalBoxes, Tensor gtBoxes)
    {
        var r = proposalBoxes.Size(0);
        var classes = ClassAgnosticBoxReg ? 1 : NumClasses;
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
        // one score function: the calibrator's when the model has one, else the classification loss's
        Calibration?.Push();
        var scores = Calibrator?.Scores(logits) ?? ClassificationLoss.Scores(logits);    // (ΣR, K+1)
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
        // the candidates are chosen on the boxes' device: column K (background) is never one; a non-finite box (a
        // diverged model) is dropped, as detectron2 does (x − x is 0 exactly when x is finite)
        var foreground = scores.Narrow(1, 0, k).Contiguous();                                // (R, K)
        var above = foreground.Gt(ScoreThreshold);
        var extent = clipped.View(r, k, 4).Sum(2);                                          // (R, K): NaN or ±∞ if any coordinate is
        var finite = extent.Sub(extent).Eq(0);
        var pairs = above.Mul(finite).Nonzero();                                            // (N, 2): (i, c) in row-major order
        var candidateClasses = pairs.Select(1, 1).Contiguous();
        var index = pairs.Select(1, 0).Mul(k).Add(candidateClasses);                         // flat positions i·K + c, increasing
        var candidateBoxes = clipped.IndexSelect(0, index);
        var candidateScores = foreground.Reshape(r * k).IndexSelect(0, index);
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
