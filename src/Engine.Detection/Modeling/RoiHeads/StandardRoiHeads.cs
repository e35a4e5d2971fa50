// The second stage of the FPN Faster R-CNN, as detectron2's StandardROIHeads (box branch): in training the
// proposals of each image, with its ground-truth boxes appended, are matched to the ground truth (IoU ≥ 0.5
// foreground, else background = class K) and 512 are sampled at most 25 % foreground; the sampled boxes are
// pooled (7×7 ROIAlign over p2–p5), passed through the box head to RoI embeddings, through the embedding
// augmenter (Engine.LongTail's IRoiEmbeddingAugmenter: it may append rows, and may first observe the embeddings of
// boxes it derives from the ground truth, pooled and embedded here without gradient), and to the predictor, whose
// losses are returned. A statistics pass (LogN) sets TrainingLogitsObserver: training then stops at the logits of
// the sampled RoIs and hands them over, touching no loss or component state. At inference every proposal is pooled
// and the predictor's detections are returned.
using Engine.LongTail;
using Engine.Nn;

namespace Engine.Detection.Modeling.RoiHeads;

/// <summary>The RoIs of one image chosen for the loss: boxes (S, 4), labels int64 (S) in [0, K] (K = background),
/// and the matched ground-truth boxes (S, 4) (meaningful for foreground rows only).</summary>
public sealed record SampledRois(Tensor Boxes, Tensor Labels, Tensor GtBoxes) : IDisposable
{
    public void Dispose()
    {
        Boxes.Dispose();
        Labels.Dispose();
        GtBoxes.Dispose();
    }
}

public sealed class StandardRoiHeads : Module
{
    public StandardRoiHeads(IReadOnlyList<string> inFeatures, RoiPooler pooler, FastRcnnConvFcHead boxHead, FastRcnnOutputLayers boxPredictor,
                            Matcher proposalMatcher, BalancedPositiveNegativeSampler sampler, Generator generator,
                            IRoiEmbeddingAugmenter? embeddingAugmenter = null, bool proposalAppendGt = true)
    {
        if (inFeatures.Count != pooler.Scales.Count)
            throw new ArgumentException($"StandardRoiHeads: {inFeatures.Count} input features [{string.Join(", ", inFeatures)}] for a pooler over {pooler.Scales.Count} levels.");
        InFeatures = inFeatures.ToArray();
        Pooler = pooler;
        BoxHead = RegisterModule("box_head", boxHead);
        EmbeddingAugmenter = embeddingAugmenter;
        // an augmenter with parameters (a hallucination network) is part of the model and its checkpoint
        if (EmbeddingAugmenter is Module augmenterModule) RegisterModule("embedding_augmenter", augmenterModule);
        if (embeddingAugmenter is not null && embeddingAugmenter.EmbeddingDim != boxHead.OutputDim)
            throw new ArgumentException($"StandardRoiHeads: the embedding augmenter takes D = {embeddingAugmenter.EmbeddingDim} embeddings, the box head gives {boxHead.OutputDim}.");
        BoxPredictor = RegisterModule("box_predictor", boxPredictor);
        ProposalMatcher = proposalMatcher;
        Sampler = sampler;
        Generator = generator;
        ProposalAppendGt = proposalAppendGt;
    }

    public IReadOnlyList<string> InFeatures { get; }
    public RoiPooler Pooler { get; }
    public FastRcnnConvFcHead BoxHead { get; }
    /// <summary>The embedding augmenter, or null (the rows pass unchanged).</summary>
    public IRoiEmbeddingAugmenter? EmbeddingAugmenter { get; }

    /// <summary>When set, a training forward only hands the logits (R, L) of the sampled RoIs to this observer and
    /// returns no losses (a statistics pass; no augmenter, loss or transfuser runs, so no state changes).</summary>
    public Action<Tensor>? TrainingLogitsObserver { get; set; }
    public FastRcnnOutputLayers BoxPredictor { get; }
    public Matcher ProposalMatcher { get; }
    public BalancedPositiveNegativeSampler Sampler { get; }
    public Generator Generator { get; }
    public bool ProposalAppendGt { get; }
    public int NumClasses => BoxPredictor.NumClasses;

    /// <summary>Training: the losses loss_cls and loss_box_reg. Inference: detections per image (in the ImageList's
    /// resized coordinates).</summary>
    public (Dictionary<string, Tensor> Losses, List<Instances> Detections) Forward(ImageList images, IReadOnlyDictionary<string, Tensor> features,
                                                                                  IReadOnlyList<Instances> proposals, IReadOnlyList<Instances>? targets)
    {
        var maps = InFeatures.Select(f => features.TryGetValue(f, out var t) ? t
            : throw new ArgumentException($"StandardRoiHeads: feature '{f}' is missing; the backbone gave [{string.Join(", ", features.Keys)}].")).ToList();
        return IsTraining ? (ForwardTraining(images, maps, proposals, targets), []) : ([], Inference(images, maps, proposals));
    }

    private Dictionary<string, Tensor> ForwardTraining(ImageList images, IReadOnlyList<Tensor> maps, IReadOnlyList<Instances> proposals, IReadOnlyList<Instances>? targets)
    {
        if (targets is null || targets.Count != proposals.Count)
            throw new ArgumentException($"StandardRoiHeads: training needs one ground-truth Instances per image ({proposals.Count}), got {targets?.Count.ToString() ?? "none"}.");
        using var scope = DisposeScope.Begin();
        var sampled = proposals.Select((p, i) => LabelAndSampleProposals(p.PredBoxes!, targets[i])).ToList();
        var boxes = sampled.Select(s => s.Boxes).ToList();
        var roiFeatures = Pooler.Forward(maps, boxes);                                   // (R, C, 7, 7)
        var embeddings = BoxHead.Forward(roiFeatures);                                   // (R, D)
        var labels = Tensor.Cat(sampled.Select(s => s.Labels).ToList(), 0);              // (R)
        if (TrainingLogitsObserver is { } observer)
        {
            using (GradMode.NoGrad()) observer(BoxPredictor.ClsScore.Forward(embeddings));
            return [];
        }
        var proposalBoxes = Tensor.Cat(boxes, 0);                                       // (R, 4)
        var gtBoxes = Tensor.Cat(sampled.Select(s => s.GtBoxes).ToList(), 0);            // (R, 4)
        var rows = EmbeddingAugmenter is { } augmenter
            ? Augment(augmenter, maps, embeddings, labels, proposalBoxes, gtBoxes, images, targets)
            : new RoiAugmentation(embeddings, labels, proposalBoxes, gtBoxes, embeddings.Size(0), AppendedRowsRegress: false);
        var losses = BoxPredictor.Losses(rows, proposalBoxes, gtBoxes);                  // rows (R', D): all classify, R (or R') regress
        foreach (var loss in losses.Values) scope.Keep(loss);
        return losses;
    }

    /// <summary>The augmenter first observes the embeddings of the boxes it asks for (per image, without gradient), then
    /// appends its rows to the sampled RoIs'.</summary>
    private RoiAugmentation Augment(IRoiEmbeddingAugmenter augmenter, IReadOnlyList<Tensor> maps, Tensor embeddings, Tensor labels, Tensor proposalBoxes,
                                    Tensor gtBoxes, ImageList images, IReadOnlyList<Instances> targets)
    {
        var observed = new List<(Tensor Boxes, Tensor Labels)>();
        for (var i = 0; i < targets.Count; i++)
            if (augmenter.BoxesToObserve(targets[i].GtBoxes!, targets[i].GtClasses!, images.ImageSizes[i], Generator) is { } request)
                observed.Add(request);
            else
                observed.Add((Tensor.Zeros([0, 4], DType.Float32, embeddings.Device), Tensor.Zeros([0], DType.Int64, embeddings.Device)));
        if (observed.Any(o => o.Boxes.Size(0) > 0))
            using (GradMode.NoGrad())
            {
                var observedFeatures = Pooler.Forward(maps, observed.Select(o => o.Boxes).ToList());
                augmenter.Observe(BoxHead.Forward(observedFeatures), Tensor.Cat(observed.Select(o => o.Labels).ToList(), 0));
            }
        return augmenter.Augment(new RoiBatch(embeddings, labels, proposalBoxes, gtBoxes), Generator);
    }

    private List<Instances> Inference(ImageList images, IReadOnlyList<Tensor> maps, IReadOnlyList<Instances> proposals)
    {
        using var scope = DisposeScope.Begin();
        var boxes = proposals.Select(p => p.PredBoxes!).ToList();
        var roiFeatures = Pooler.Forward(maps, boxes);                                   // (R, C, 7, 7)
        var embeddings = BoxHead.Forward(roiFeatures);                                   // (R, 1024)
        var (logits, deltas) = BoxPredictor.Forward(embeddings);                         // (R, K+1), (R, 4K)
        var detections = BoxPredictor.Inference(logits, deltas, boxes, images.ImageSizes);
        foreach (var d in detections)
        {
            scope.Keep(d.PredBoxes!);
            scope.Keep(d.Scores!);
            scope.Keep(d.PredClasses!);
        }
        return detections;
    }

    /// <summary>detectron2's label_and_sample_proposals for one image: proposals (P, 4) plus the ground truth (when
    /// ProposalAppendGt), matched by IoU, labelled with the matched class (background K below the threshold) and
    /// sampled; positives first, then negatives.</summary>
    public SampledRois LabelAndSampleProposals(Tensor proposalBoxes, Instances target)
    {
        using var noGrad = GradMode.NoGrad();
        using var scope = DisposeScope.Begin();
        var gt = target.GtBoxes ?? throw new ArgumentException("StandardRoiHeads: a training target has no GtBoxes; give (0, 4) boxes for an image without objects.");
        var gtClasses = target.GtClasses ?? throw new ArgumentException("StandardRoiHeads: a training target has no GtClasses.");
        var candidates = ProposalAppendGt ? Tensor.Cat([proposalBoxes, gt], 0) : proposalBoxes;   // (P + M, 4)
        var p = candidates.Size(0);
        Tensor classes, matchedBoxes;
        if (gt.Size(0) == 0)
        {
            classes = Tensor.Full([p], NumClasses, DType.Int64, candidates.Device);
            matchedBoxes = Tensor.Zeros([p, 4], DType.Float32, candidates.Device);
        }
        else
        {
            var (matches, matchLabels) = ProposalMatcher.Match(Boxes.PairwiseIou(gt, candidates));   // (P + M), {-1, 0, 1}
            // matched class, background K where the match label is 0, ignored (-1) where it is -1: on the device, so
            // the sampler's read of the classes is the one wait of this image's labelling
            var matched = gtClasses.IndexSelect(0, matches);
            var ignored = Tensor.Where(matchLabels.Eq(-1), Tensor.Full([p], -1, DType.Int64, candidates.Device), matched);
            classes = Tensor.Where(matchLabels.Eq(0), Tensor.Full([p], NumClasses, DType.Int64, candidates.Device), ignored);
            matchedBoxes = gt.IndexSelect(0, matches);
        }
        var (pos, neg) = Sampler.Sample(classes, NumClasses, Generator);
        var chosen = Tensor.Cat([pos, neg], 0);
        return new SampledRois(scope.Keep(candidates.IndexSelect(0, chosen)), scope.Keep(classes.IndexSelect(0, chosen)),
                               scope.Keep(matchedBoxes.IndexSelect(0, chosen)));
    }
}
