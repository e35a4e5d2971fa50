// The Region Proposal Network (Ren et al., Faster R-CNN, 2015), as detectron2's RPN with its default
// settings: anchors on every pyramid level, a shared StandardRpnHead, and
//   training — each image's anchors matched to its ground truth (IoU < 0.3 negative, ≥ 0.7 positive, plus each
//   ground truth's best anchors), 256 anchors sampled at most half positive; objectness loss = binary
//   cross-entropy summed over the sampled anchors, box loss = smooth-L1 (L1 at β = 0) of the positive anchors'
//   deltas, both divided by N·256 (detectron2 normalizes by the sampling budget, not by the sampled count);
//   proposals — per image and level the top-k anchors by objectness (pre-NMS top-k), decoded, clipped to the
//   image, empty boxes dropped, NMS per level at 0.7, then the post-NMS top-k over all levels of the image.
// Proposals are constants for the stages after it: no gradient flows through them (Faster R-CNN's
// approximate joint training).
using Engine.Nn;

namespace Engine.Detection.Modeling.ProposalGenerator;

public sealed class Rpn : Module
{
    public Rpn(IReadOnlyList<string> inFeatures, StandardRpnHead head, DefaultAnchorGenerator anchorGenerator, Matcher anchorMatcher,
               Box2BoxTransform boxTransform, BalancedPositiveNegativeSampler sampler, Generator generator,
               (int Train, int Test) preNmsTopk, (int Train, int Test) postNmsTopk, double nmsThreshold = 0.7, double minBoxSize = 0,
               double smoothL1Beta = 0, double lossWeight = 1, double boxRegLossWeight = 1)
    {
        if (inFeatures.Count != anchorGenerator.Strides.Count)
            throw new ArgumentException($"Rpn: {inFeatures.Count} input features [{string.Join(", ", inFeatures)}] but anchors for {anchorGenerator.Strides.Count} levels; give one anchor level per feature.");
        if (anchorGenerator.NumCellAnchors.Any(a => a != head.NumAnchors))
            throw new ArgumentException($"Rpn: the head predicts {head.NumAnchors} anchors per location, the anchor generator makes [{string.Join(", ", anchorGenerator.NumCellAnchors)}]; they must agree on every level.");
        if (preNmsTopk.Train <= 0 || preNmsTopk.Test <= 0 || postNmsTopk.Train <= 0 || postNmsTopk.Test <= 0)
            throw new ArgumentException($"Rpn: top-k values pre-NMS {preNmsTopk} and post-NMS {postNmsTopk} must be positive.");
        InFeatures = inFeatures.ToArray();
        RpnHead = RegisterModule("rpn_head", head);
        AnchorGenerator = anchorGenerator;
        AnchorMatcher = anchorMatcher;
        BoxTransform = boxTransform;
        Sampler = sampler;
        Generator = generator;
        PreNmsTopk = preNmsTopk;
        PostNmsTopk = postNmsTopk;
        NmsThreshold = nmsThreshold;
        MinBoxSize = minBoxSize;
        SmoothL1Beta = smoothL1Beta;
        LossWeight = lossWeight;
        BoxRegLossWeight = boxRegLossWeight;
    }

    public IReadOnlyList<string> InFeatures { get; }
    public StandardRpnHead RpnHead { get; }
    public DefaultAnchorGenerator AnchorGenerator { get; }
    public Matcher AnchorMatcher { get; }
    public Box2BoxTransform BoxTransform { get; }
    public BalancedPositiveNegativeSampler Sampler { get; }
    public Generator Generator { get; }
    public (int Train, int Test) PreNmsTopk { get; }
    public (int Train, int Test) PostNmsTopk { get; }
    public double NmsThreshold { get; }
    public double MinBoxSize { get; }
    public double SmoothL1Beta { get; }
    public double LossWeight { get; }
    public double BoxRegLossWeight { get; }

    /// <summary>Proposals per image (PredBoxes (R, 4), Scores = objectness logits (R), detached) and, in training,
    /// the losses loss_rpn_cls and loss_rpn_loc.</summary>
    public (List<Instances> Proposals, Dictionary<string, Tensor> Losses) Forward(ImageList images, IReadOnlyDictionary<string, Tensor> features,
                                                                            IReadOnlyList<Instances>? targets)
    {
        using var scope = DisposeScope.Begin();
        var maps = InFeatures.Select(f => features.TryGetValue(f, out var t) ? t
            : throw new ArgumentException($"Rpn: feature '{f}' is missing; the backbone gave [{string.Join(", ", features.Keys)}].")).ToList();
        var anchors = AnchorGenerator.Forward(maps);                 // per level (H·W·A, 4)
        var (logits, deltas) = RpnHead.Forward(maps);                // per level (N, A, H, W), (N, 4A, H, W)
        var predLogits = logits.Select(FlattenLogits).ToList();      // per level (N, H·W·A)
        var predDeltas = deltas.Select(FlattenDeltas).ToList();      // per level (N, H·W·A, 4)
        var proposals = FindTopProposals(anchors, predLogits, predDeltas, images.ImageSizes);
        var losses = new Dictionary<string, Tensor>();
        if (IsTraining)
        {
            if (targets is null || targets.Count != images.Count)
                throw new ArgumentException($"Rpn: training needs one ground-truth Instances per image ({images.Count}), got {targets?.Count.ToString() ?? "none"}.");
            var (cls, loc) = Losses(anchors, predLogits, predDeltas, targets);
            losses["loss_rpn_cls"] = scope.Keep(cls);
            losses["loss_rpn_loc"] = scope.Keep(loc);
        }
        foreach (var p in proposals)
        {
            scope.Keep(p.PredBoxes!);
            scope.Keep(p.Scores!);
        }
        return (proposals, losses);
    }

    /// <summary>(N, A, H, W) → (N, H·W·A), in the anchors' order (location-major, then cell anchor).</summary>
    private static Tensor FlattenLogits(Tensor x)
    {
        using var p = x.Permute(0, 2, 3, 1);
        return p.Flatten(1);
    }

    /// <summary>(N, 4A, H, W) → (N, H·W·A, 4).</summary>
    private static Tensor FlattenDeltas(Tensor x)
    {
        int n = x.Size(0), a = x.Size(1) / 4, h = x.Size(2), w = x.Size(3);
        using var v = x.View(n, a, 4, h, w);
        using var p = v.Permute(0, 3, 4, 1, 2);
        return p.Reshape(n, h * w * a, 4);
    }

    /// <summary>detectron2's find_top_rpn_proposals, image by image, under no-grad.</summary>
    internal List<Instances> FindTopProposals(IReadOnlyList<Tensor> anchors, IReadOnlyList<Tensor> predLogits, IReadOnlyList<Tensor> predDeltas,
                                              IReadOnlyList<(int Height, int Width)> imageSizes)
    {
        using var noGrad = GradMode.NoGrad();
        var preTopk = IsTraining ? PreNmsTopk.Train : PreNmsTopk.Test;
        var postTopk = IsTraining ? PostNmsTopk.Train : PostNmsTopk.Test;
        var result = new List<Instances>();
        for (var i = 0; i < imageSizes.Count; i++)
        {
            using var scope = DisposeScope.Begin();
            var boxes = new List<Tensor>();
            var scores = new List<Tensor>();
            var levelIds = new List<Tensor>();
            for (var l = 0; l < anchors.Count; l++)
            {
                var logits = predLogits[l].Select(0, i);                         // (H·W·A)
                var k = Math.Min(preTopk, logits.Size(0));
                var (top, index) = logits.TopK(k);                               // (k), sorted descending
                var deltas = predDeltas[l].Select(0, i).IndexSelect(0, index);  // (k, 4)
                var levelAnchors = anchors[l].IndexSelect(0, index);            // (k, 4)
                boxes.Add(BoxTransform.ApplyDeltas(deltas, levelAnchors));
                scores.Add(top);
                levelIds.Add(Tensor.Full([k], l, DType.Int64, logits.Device));
            }
            var (h, w) = imageSizes[i];
            var clipped = Boxes.Clip(Tensor.Cat(boxes, 0), h, w);
            var keep = Tensor.IndexFromMask(Boxes.NonEmpty(clipped, MinBoxSize));
            var kept = clipped.IndexSelect(0, keep);
            var keptScores = Tensor.Cat(scores, 0).IndexSelect(0, keep);
            var nms = DetectionOps.BatchedNms(kept, keptScores, Tensor.Cat(levelIds, 0).IndexSelect(0, keep), NmsThreshold);
            var final = nms.Narrow(0, 0, Math.Min(postTopk, nms.Size(0)));
            result.Add(new Instances(imageSizes[i])
            {
                PredBoxes = scope.Keep(kept.IndexSelect(0, final)),
                Scores = scope.Keep(keptScores.IndexSelect(0, final)),
            });
        }
        return result;
    }

    /// <summary>loss_rpn_cls and loss_rpn_loc (detectron2's RPN.losses), each over N·batchSizePerImage.</summary>
    internal (Tensor Cls, Tensor Loc) Losses(IReadOnlyList<Tensor> anchors, IReadOnlyList<Tensor> predLogits, IReadOnlyList<Tensor> predDeltas,
                                             IReadOnlyList<Instances> targets)
    {
        using var scope = DisposeScope.Begin();
        var allAnchors = Tensor.Cat(anchors, 0);                        // (ΣHWA, 4)
        var total = allAnchors.Size(0);
        var validIndex = new List<long>();
        var validLabel = new List<float>();
        var positiveIndex = new List<long>();
        var targetDeltas = new List<Tensor>();
        for (var i = 0; i < targets.Count; i++)
        {
            var (labels, matchedBoxes) = LabelAndSampleAnchors(allAnchors, targets[i]);
            var pos = new List<long>();
            for (var j = 0; j < total; j++)
            {
                if (labels[j] < 0) continue;
                validIndex.Add((long)i * total + j);
                validLabel.Add(labels[j]);
                if (labels[j] == 1) pos.Add(j);
            }
            positiveIndex.AddRange(pos.Select(j => (long)i * total + j));
            using (GradMode.NoGrad())
            {
                var posIndex = Tensor.From<long>(pos.ToArray(), [pos.Count], allAnchors.Device);
                targetDeltas.Add(BoxTransform.GetDeltas(allAnchors.IndexSelect(0, posIndex), matchedBoxes.IndexSelect(0, posIndex)));
            }
        }
        var device = allAnchors.Device;
        var normalizer = (double)Sampler.BatchSizePerImage * targets.Count;
        var logits = Tensor.Cat(predLogits, 1).Reshape(-1);                             // (N·ΣHWA)
        var sampledLogits = logits.IndexSelect(0, Tensor.From<long>(validIndex.ToArray(), [validIndex.Count], device));
        var clsTargets = Tensor.From<float>(validLabel.ToArray(), [validLabel.Count], device);
        var cls = Engine.Losses.BinaryCrossEntropyWithLogits(sampledLogits, clsTargets, reduction: Reduction.Sum).Mul(LossWeight / normalizer);
        var deltas = Tensor.Cat(predDeltas, 1).Reshape(-1, 4);                          // (N·ΣHWA, 4)
        var posDeltas = deltas.IndexSelect(0, Tensor.From<long>(positiveIndex.ToArray(), [positiveIndex.Count], device));
        var loc = Engine.Losses.SmoothL1(posDeltas, Tensor.Cat(targetDeltas, 0), SmoothL1Beta, Reduction.Sum)
                        .Mul(LossWeight * BoxRegLossWeight / normalizer);
        return (scope.Keep(cls), scope.Keep(loc));
    }

    /// <summary>Per anchor: label 1 (sampled positive), 0 (sampled negative) or -1 (not sampled / ignored), and the
    /// box of its matched ground truth (zeros when the image has none) as (A, 4).</summary>
    internal (int[] Labels, Tensor MatchedBoxes) LabelAndSampleAnchors(Tensor anchors, Instances target)
    {
        using var noGrad = GradMode.NoGrad();
        using var scope = DisposeScope.Begin();
        var gt = target.GtBoxes ?? throw new ArgumentException("Rpn: a training target has no GtBoxes; give (0, 4) boxes for an image without objects.");
        var total = anchors.Size(0);
        Tensor matchedLabels, matchedBoxes;
        if (gt.Size(0) == 0)
        {
            // no objects: every anchor is background
            matchedLabels = Tensor.Zeros([total], DType.Int64, anchors.Device);
            matchedBoxes = Tensor.Zeros([total, 4], DType.Float32, anchors.Device);
        }
        else
        {
            var (matches, labels0) = AnchorMatcher.Match(Boxes.PairwiseIou(gt, anchors));   // (A), (A) in {-1, 0, 1}
            matchedLabels = labels0;
            matchedBoxes = gt.IndexSelect(0, matches);
        }
        // The sample sizes depend on the matches: one read of the labels, the sampled indices stay on the host.
        var (pos, neg) = Sampler.Sample(matchedLabels.ToInt64Array(), 0, Generator);
        var labels = new int[total];
        Array.Fill(labels, -1);
        foreach (var j in pos) labels[j] = 1;
        foreach (var j in neg) labels[j] = 0;
        return (labels, scope.Keep(matchedBoxes));
    }
}
