// Tests of the ROI heads on hand-worked cases: proposal labelling (ground truth appended and positive, IoU 0.5
// boundary, background = K), sampling counts, the box loss reading only the ground-truth class's deltas, and
// inference post-processing (background dropped, score threshold, NMS within a class only, top-k, clipping).
using Engine.Detection.Modeling.RoiHeads;
using Engine.LongTail;
using Engine.Nn;
using Engine.Tests;

namespace Engine.Detection.Tests.Modeling.RoiHeads;

public class RoiHeadsTests
{
    private static StandardRoiHeads Heads(Generator g, int numClasses, int batch, double positiveFraction, int detections = 100,
                                          IRoiEmbeddingAugmenter? augmenter = null)
    {
        var pooler = new RoiPooler((7, 7), [1.0 / 4, 1.0 / 8]);
        var head = new FastRcnnConvFcHead((4, 7, 7), 2, 16, g);
        var predictor = new FastRcnnOutputLayers(16, numClasses, g, Box2BoxTransform.ForRoiHeads(), new SoftmaxCrossEntropyLoss(numClasses), detectionsPerImage: detections);
        return new StandardRoiHeads(["p2", "p3"], pooler, head, predictor, Matcher.ForRoiHeads(), new BalancedPositiveNegativeSampler(batch, positiveFraction), g, augmenter);
    }

    /// <summary>Appends a copy of every embedding (rows that do not regress), labelled as the original (a stand-in for
    /// memory replay) or as background.</summary>
    private sealed class DuplicatingAugmenter(long? relabel = null) : IRoiEmbeddingAugmenter
    {
        public int NumClasses => 3;
        public int EmbeddingDim => 16;

        public RoiAugmentation Augment(RoiBatch batch, Generator generator)
        {
            var (embeddings, labels) = (batch.Embeddings, batch.Labels);
            using var copyLabels = relabel is { } c ? Tensor.Full([labels.Size(0)], c, DType.Int64) : labels.Clone();
            return new RoiAugmentation(Tensor.Cat([embeddings, embeddings], 0), Tensor.Cat([labels, copyLabels], 0), batch.Proposals!.Clone(), batch.GtBoxes!.Clone(),
                                       embeddings.Size(0), AppendedRowsRegress: false);
        }

        public StateDict StateDict() => new();

        public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state) { }

        public void Dispose() { }
    }

    [Fact]
    public void LabelsEveryCandidateWithGroundTruthAppended()
    {
        var g = TestUtil.Fresh(out var seed);
        using var heads = Heads(g, numClasses: 5, batch: 1000, positiveFraction: 1.0);
        // GT: A [0,0,20,20] class 3, B [40,40,60,60] class 1. Proposals:
        //   [0,0,20,10]: IoU with A = 200/400 = 0.5 exactly → foreground 3 (threshold inclusive)
        //   [0,0,20,9]:  IoU 180/400 = 0.45 → background (5)
        //   [42,40,62,60]: IoU with B = 360/440 = 0.818 → foreground 1
        //   [100,100,120,120]: no overlap → background
        using var proposals = Tensor.From([0f, 0, 20, 10, 0, 0, 20, 9, 42, 40, 62, 60, 100, 100, 120, 120], 4, 4);
        using var gt = Instances.FromGroundTruth((128, 128), Tensor.From([0f, 0, 20, 20, 40, 40, 60, 60], 2, 4), Tensor.From([3L, 1], 2));
        using var s = heads.LabelAndSampleProposals(proposals, gt);
        // every candidate is sampled (budget 1000, all may be positive); collect label per box
        var boxes = s.Boxes.ToFloatArray();
        var labels = s.Labels.ToInt64Array();
        var gtBoxes = s.GtBoxes.ToFloatArray();
        var byBox = new Dictionary<string, (long Label, string Gt)>();
        for (var i = 0; i < labels.Length; i++)
            byBox[string.Join(",", boxes.Skip(4 * i).Take(4))] = (labels[i], string.Join(",", gtBoxes.Skip(4 * i).Take(4)));
        Assert.True(byBox.Count == 6, $"6 candidates (4 proposals + 2 GT) expected, got {byBox.Count}, seed {seed}");
        Assert.Equal((3L, "0,0,20,20"), byBox["0,0,20,10"]);
        Assert.Equal(5L, byBox["0,0,20,9"].Label);
        Assert.Equal((1L, "40,40,60,60"), byBox["42,40,62,60"]);
        Assert.Equal(5L, byBox["100,100,120,120"].Label);
        Assert.Equal((3L, "0,0,20,20"), byBox["0,0,20,20"]);     // the GT box itself is a positive of its class
        Assert.Equal((1L, "40,40,60,60"), byBox["40,40,60,60"]);
        // positives come first
        Assert.Equal([true, true, true, true, false, false], labels.Select(l => l < 5).ToArray());
    }

    [Fact]
    public void SamplesAtMostTheForegroundFractionAndFillsWithBackground()
    {
        var g = TestUtil.Fresh(out var seed);
        using var heads = Heads(g, numClasses: 5, batch: 8, positiveFraction: 0.25);
        // 6 foreground proposals (shifted copies of the GT, IoU > 0.5) and 20 disjoint background proposals
        var p = new List<float>();
        for (var k = 0; k < 6; k++) p.AddRange([k, 0, 20 + k, 20]);
        for (var k = 0; k < 20; k++) p.AddRange([100 + 5 * k, 100, 104 + 5 * k, 104]);
        using var proposals = Tensor.From(p.ToArray(), 26, 4);
        using var gt = Instances.FromGroundTruth((256, 256), Tensor.From([0f, 0, 20, 20], 1, 4), Tensor.From([2L], 1));
        using var s = heads.LabelAndSampleProposals(proposals, gt);
        var labels = s.Labels.ToInt64Array();
        // budget 8 at 0.25 → 2 positives (7 available: 6 proposals + GT), 6 negatives
        Assert.True(labels.Length == 8, $"8 sampled, got {labels.Length}, seed {seed}");
        Assert.True(labels.Count(l => l == 2) == 2, $"2 positives of class 2, got [{string.Join(", ", labels)}], seed {seed}");
        Assert.True(labels.Count(l => l == 5) == 6, $"6 background, got [{string.Join(", ", labels)}], seed {seed}");
    }

    [Fact]
    public void ImageWithoutObjectsSamplesOnlyBackground()
    {
        var g = TestUtil.Fresh(out var seed);
        using var heads = Heads(g, numClasses: 3, batch: 4, positiveFraction: 0.25);
        using var proposals = Tensor.From([0f, 0, 10, 10, 20, 20, 30, 30, 40, 40, 50, 50], 3, 4);
        using var gt = Instances.FromGroundTruth((64, 64), Tensor.Zeros([0, 4]), Tensor.Zeros([0], DType.Int64));
        using var s = heads.LabelAndSampleProposals(proposals, gt);
        Assert.True(s.Labels.ToInt64Array().SequenceEqual([3L, 3, 3]), $"labels [{string.Join(", ", s.Labels.ToInt64Array())}], seed {seed}");
    }

    [Fact]
    public void BoxLossReadsOnlyTheGroundTruthClassDeltas()
    {
        var g = TestUtil.Fresh(out var seed);
        const int k = 3;
        using var predictor = new FastRcnnOutputLayers(8, k, g, Box2BoxTransform.ForRoiHeads(), new SoftmaxCrossEntropyLoss(k));
        // RoI 0: class 1, proposal [0,0,10,10], GT [1,0,11,10] → target (10·1/10, 0, 0, 0) = (1, 0, 0, 0)
        // RoI 1: background (3): no box loss.  RoI 2: class 0, proposal = GT → target 0
        using var deltas = Tensor.Randn([3, 4 * k], g).RequireGrad();
        using var logits = Tensor.Randn([3, k + 1], g).RequireGrad();
        using var labels = Tensor.From([1L, 3, 0], 3);
        using var proposals = Tensor.From([0f, 0, 10, 10, 5, 5, 9, 9, 20, 20, 30, 40], 3, 4);
        using var gtBoxes = Tensor.From([1f, 0, 11, 10, 0, 0, 0, 0, 20, 20, 30, 40], 3, 4);
        var losses = predictor.Losses(logits, deltas, labels, proposals, gtBoxes);
        using var box = losses["loss_box_reg"];
        using var cls = losses["loss_cls"];
        var d = deltas.ToDoubleArray();
        double[] target0 = [1, 0, 0, 0];
        var expected = 0.0;
        for (var j = 0; j < 4; j++) expected += Math.Abs(d[0 * 12 + 4 * 1 + j] - target0[j]) + Math.Abs(d[2 * 12 + 0 + j]);
        expected /= 3;   // divided by the 3 sampled RoIs, not the 2 foreground ones
        Assert.True(Math.Abs(box.Item() - expected) < 1e-5 * Math.Abs(expected) + 1e-6, $"loss_box_reg {box.Item()} vs {expected}, seed {seed}");
        box.Backward();
        var grad = deltas.Grad!.ToFloatArray();
        for (var i = 0; i < 3; i++)
            for (var c = 0; c < 4 * k; c++)
            {
                var used = (i == 0 && c / 4 == 1) || (i == 2 && c / 4 == 0);
                Assert.True(used ? grad[i * 12 + c] != 0 : grad[i * 12 + c] == 0, $"grad of delta ({i}, {c}) = {grad[i * 12 + c]}, seed {seed}");
            }
        // softmax CE mean over the 3 RoIs
        var l = logits.ToDoubleArray();
        var lab = new[] { 1, 3, 0 };
        var ce = 0.0;
        for (var i = 0; i < 3; i++)
        {
            var row = l.Skip(4 * i).Take(4).ToArray();
            var m = row.Max();
            ce += m + Math.Log(row.Sum(x => Math.Exp(x - m))) - row[lab[i]];
        }
        ce /= 3;
        Assert.True(Math.Abs(cls.Item() - ce) < 1e-5 * ce + 1e-6, $"loss_cls {cls.Item()} vs {ce}, seed {seed}");
    }

    [Theory]
    [InlineData(100)]
    [InlineData(2)]
    public void InferenceDropsBackgroundThresholdsSuppressesPerClassAndTakesTopk(int topk)
    {
        var g = TestUtil.Fresh(out var seed);
        using var predictor = new FastRcnnOutputLayers(8, 2, g, Box2BoxTransform.ForRoiHeads(), new SoftmaxCrossEntropyLoss(2), detectionsPerImage: topk);
        // zero deltas: each class's box is the proposal. p0 and p1 overlap with IoU 90/110 = 0.818 > 0.5.
        using var proposals = Tensor.From([0f, 0, 10, 10, 1, 0, 11, 10, 30, 30, 40, 40, 50, 50, 70, 70], 4, 4);
        float[] logitValues = [2, 0, 0,   1, 1, 0,   -5, -5, 5,   0, 3, 0];   // columns: class 0, class 1, background
        using var logits = Tensor.From(logitValues, 4, 3);
        using var deltas = Tensor.Zeros([4, 8]);
        var dets = predictor.Inference(logits, deltas, [proposals], [(64, 64)]);
        using var d = dets[0];
        double P(int i, int c)
        {
            var row = logitValues.Skip(3 * i).Take(3).Select(v => Math.Exp(v)).ToArray();
            return row[c] / row.Sum();
        }
        // above 0.05: p0c0 0.787, p0c1 0.107, p1c0 0.422, p1c1 0.422, p3c1 0.909 (p3c0 = 0.045 and p2 are below; the
        // background column never counts). Class 0: p0 suppresses p1. Class 1: p3; p1 suppresses p0 (0.422 > 0.107).
        // By score: p3c1, p0c0, p1c1; p3 clipped to the 64×64 image.
        var expectedBoxes = new[] { new[] { 50f, 50, 64, 64 }, [0f, 0, 10, 10], [1f, 0, 11, 10] };
        var expectedClasses = new[] { 1L, 0, 1 };
        var expectedScores = new[] { P(3, 1), P(0, 0), P(1, 1) };
        var n = Math.Min(topk, 3);
        Assert.True(d.Count == n, $"{d.Count} detections, expected {n}, seed {seed}");
        Assert.Equal(expectedBoxes.Take(n).SelectMany(b => b).ToArray(), d.PredBoxes!.ToFloatArray());
        Assert.Equal(expectedClasses.Take(n).ToArray(), d.PredClasses!.ToInt64Array());
        var scores = d.Scores!.ToDoubleArray();
        for (var i = 0; i < n; i++)
            Assert.True(Math.Abs(scores[i] - expectedScores[i]) < 1e-6, $"score {i}: {scores[i]} vs {expectedScores[i]}, seed {seed}");
    }

    [Fact]
    public void ForwardTrainingGivesFiniteLossesAndInferenceGivesDetections()
    {
        var g = TestUtil.Fresh(out var seed);
        using var heads = Heads(g, numClasses: 4, batch: 32, positiveFraction: 0.25);
        using var images = new ImageList(Tensor.Zeros([2, 3, 64, 64]), [(64, 64), (60, 50)]);
        using var p2 = Tensor.Randn([2, 4, 16, 16], g);
        using var p3 = Tensor.Randn([2, 4, 8, 8], g);
        var features = new Dictionary<string, Tensor> { ["p2"] = p2, ["p3"] = p3 };
        var proposals = new List<Instances>
        {
            new((64, 64)) { PredBoxes = Tensor.From([0f, 0, 30, 30, 10, 10, 50, 50], 2, 4), Scores = Tensor.Zeros([2]) },
            new((60, 50)) { PredBoxes = Tensor.From([5f, 5, 25, 45], 1, 4), Scores = Tensor.Zeros([1]) },
        };
        var targets = new List<Instances>
        {
            Instances.FromGroundTruth((64, 64), Tensor.From([0f, 0, 28, 30], 1, 4), Tensor.From([2L], 1)),
            Instances.FromGroundTruth((60, 50), Tensor.From([4f, 6, 24, 40, 30, 30, 45, 55], 2, 4), Tensor.From([0L, 3], 2)),
        };
        var (losses, _) = heads.Forward(images, features, proposals, targets);
        foreach (var (name, loss) in losses)
            using (loss)
                Assert.True(double.IsFinite(loss.Item()) && loss.Item() > 0, $"{name} = {loss.Item()}, seed {seed}");
        heads.Eval();
        var (_, dets) = heads.Forward(images, features, proposals, null);
        Assert.Equal(2, dets.Count);
        foreach (var d in dets)
            using (d)
                Assert.True(d.PredBoxes!.Rank == 2 && d.Scores!.Size(0) == d.Count && d.PredClasses!.Size(0) == d.Count, $"seed {seed}");
        foreach (var p in proposals) p.Dispose();
        foreach (var t in targets) t.Dispose();
    }

    [Fact]
    public void EmbeddingAugmenterRowsReachTheClassificationLossOnly()
    {
        TestUtil.Fresh(out var seed);
        // two heads built from the same seed sample the same RoIs and hold the same weights; duplicating every row
        // (labels kept) leaves the mean cross-entropy unchanged, and the box loss (original rows, divided by R) unchanged too
        Dictionary<string, double> Run(IRoiEmbeddingAugmenter? augmenter)
        {
            var g = new Generator(seed);
            using var heads = Heads(g, numClasses: 3, batch: 16, positiveFraction: 0.5, augmenter: augmenter);
            // logits far from uniform (the N(0, 0.01²) init gives ≈ ln 4 whatever the labels), and the ground truth's
            // class (2) apart from background (3): relabelled rows change the loss by about b₂ − b₃, which an N(0, 1) draw
            // can leave below the check's 1e-3 relative bound (seed 3317064498957554493 did)
            var bias = ((Linear)heads.BoxPredictor.ClsScore).Bias!;
            do Init.Normal(bias, g, 0, 1);
            while (bias.Value.ToFloatArray() is var b && Math.Abs(b[2] - b[3]) < 0.5);
            using var images = new ImageList(Tensor.Zeros([1, 3, 64, 64]), [(64, 64)]);
            using var p2 = Tensor.Randn([1, 4, 16, 16], g);
            using var p3 = Tensor.Randn([1, 4, 8, 8], g);
            using var proposals = new Instances((64, 64)) { PredBoxes = Tensor.From([0f, 0, 30, 30, 10, 10, 50, 50, 2, 2, 28, 33], 3, 4), Scores = Tensor.Zeros([3]) };
            using var target = Instances.FromGroundTruth((64, 64), Tensor.From([0f, 0, 28, 30], 1, 4), Tensor.From([2L], 1));
            var (losses, _) = heads.Forward(images, new Dictionary<string, Tensor> { ["p2"] = p2, ["p3"] = p3 }, [proposals], [target]);
            var values = losses.ToDictionary(kv => kv.Key, kv => kv.Value.Item());
            foreach (var l in losses.Values) l.Dispose();
            return values;
        }
        var plain = Run(null);
        var doubled = Run(new DuplicatingAugmenter());
        foreach (var name in new[] { "loss_cls", "loss_box_reg" })
            Assert.True(Math.Abs(plain[name] - doubled[name]) <= 1e-6 * Math.Abs(plain[name]) + 1e-7, $"{name}: {plain[name]} vs {doubled[name]}, seed {seed}");
        // copies labelled background (3) change the classification loss (the hook's rows are used) but not the box loss
        var relabelled = Run(new DuplicatingAugmenter(relabel: 3));
        Assert.True(Math.Abs(plain["loss_cls"] - relabelled["loss_cls"]) > 1e-3 * plain["loss_cls"], $"loss_cls {plain["loss_cls"]} unchanged by relabelled rows, seed {seed}");
        Assert.True(Math.Abs(plain["loss_box_reg"] - relabelled["loss_box_reg"]) <= 1e-6 * plain["loss_box_reg"] + 1e-7, $"loss_box_reg changed, seed {seed}");
    }

    [Fact]
    public void ImageWithoutProposalsGetsNoDetections()
    {
        var g = TestUtil.Fresh(out var seed);
        using var heads = Heads(g, numClasses: 3, batch: 16, positiveFraction: 0.25);
        heads.Eval();
        using var images = new ImageList(Tensor.Zeros([2, 3, 64, 64]), [(64, 64), (64, 64)]);
        using var p2 = Tensor.Randn([2, 4, 16, 16], g);
        using var p3 = Tensor.Randn([2, 4, 8, 8], g);
        using var empty = new Instances((64, 64)) { PredBoxes = Tensor.Zeros([0, 4]), Scores = Tensor.Zeros([0]) };
        using var one = new Instances((64, 64)) { PredBoxes = Tensor.From([4f, 4, 40, 40], 1, 4), Scores = Tensor.Zeros([1]) };
        var (_, dets) = heads.Forward(images, new Dictionary<string, Tensor> { ["p2"] = p2, ["p3"] = p3 }, [empty, one], null);
        using var d0 = dets[0];
        using var d1 = dets[1];
        Assert.True(d0.Count == 0 && d0.PredBoxes!.ShapeArray().SequenceEqual([0, 4]), $"image without proposals: {d0.Count} detections, seed {seed}");
        // one proposal, 3 classes at near-uniform scores (≈ 1/4 > 0.05): one detection per class
        Assert.True(d1.Count == 3, $"image with one proposal: {d1.Count} detections, seed {seed}");
    }

    [Fact]
    public void InferenceDropsTheNonFiniteBoxesOfADivergedModel()
    {
        var g = TestUtil.Fresh(out var seed);
        using var predictor = new FastRcnnOutputLayers(8, 2, g, Box2BoxTransform.ForRoiHeads(), new SoftmaxCrossEntropyLoss(2));
        // two far-apart proposals, both classes well above the threshold; proposal 0's class-1 deltas are NaN
        using var proposals = Tensor.From([0f, 0, 10, 10, 30, 30, 40, 40], 2, 4);
        using var logits = Tensor.From([1f, 1, 0, 1, 1, 0], 2, 3);
        using var deltas = Tensor.From([0f, 0, 0, 0, float.NaN, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 2, 8);
        var dets = predictor.Inference(logits, deltas, [proposals], [(64, 64)]);
        using var d = dets[0];
        var found = Enumerable.Range(0, d.Count).Select(i => (d.PredBoxes!.ToFloatArray()[4 * i], d.PredClasses!.ToInt64Array()[i]))
                              .Order().ToArray();
        Assert.True(found.SequenceEqual([(0f, 0L), (30f, 0L), (30f, 1L)]), $"detections (x1, class) {string.Join(", ", found)}, seed {seed}");
        Assert.All(d.PredBoxes!.ToFloatArray(), v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void ClassAgnosticRegressionSharesOneBoxAcrossClasses()
    {
        var g = TestUtil.Fresh(out var seed);
        using var predictor = new FastRcnnOutputLayers(8, 2, g, Box2BoxTransform.ForRoiHeads(), new SoftmaxCrossEntropyLoss(2), classAgnosticBoxReg: true);
        Assert.Equal([4, 8], predictor.BboxPred.Weight.Shape.ToArray());
        // delta dx = 1 (weight 10: 0.1 widths) moves the 10×10 proposal 1 px to the right, for both classes
        using var proposals = Tensor.From([0f, 0, 10, 10], 1, 4);
        using var logits = Tensor.From([1f, 1, 0], 1, 3);
        using var deltas = Tensor.From([1f, 0, 0, 0], 1, 4);
        var dets = predictor.Inference(logits, deltas, [proposals], [(64, 64)]);
        using var d = dets[0];
        Assert.True(d.Count == 2, $"{d.Count} detections, seed {seed}");
        Assert.Equal([1f, 0, 11, 10, 1, 0, 11, 10], d.PredBoxes!.ToFloatArray());
        Assert.Equal([0L, 1], d.PredClasses!.ToInt64Array().Order().ToArray());
    }
}
