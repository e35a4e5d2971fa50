// Tests of the RPN on cases worked by hand: anchor labels and the loss normalizer on one ground-truth box,
// and the proposal pipeline's per-level top-k, clipping, empty-box removal, per-level NMS and post-NMS top-k.
using Engine.Detection.Modeling.ProposalGenerator;
using Engine.Nn;
using Engine.Tests;

namespace Engine.Detection.Tests.Modeling.Rpn;

public class RpnTests
{
    /// <summary>One level of stride 16 with one 32×32 anchor per location, C = 4 channels.</summary>
    private static Engine.Detection.Modeling.ProposalGenerator.Rpn SingleLevelRpn(Generator g, int preTopk = 1000, int postTopk = 1000, int batch = 256)
    {
        var head = new StandardRpnHead(4, 1, g);
        var anchors = new DefaultAnchorGenerator([[32]], [[1.0]], [16]);
        return new Engine.Detection.Modeling.ProposalGenerator.Rpn(["p4"], head, anchors, Matcher.ForRpn(), Box2BoxTransform.ForRpn(),
            new BalancedPositiveNegativeSampler(batch, 0.5), g, (preTopk, preTopk), (postTopk, postTopk));
    }

    [Fact]
    public void LabelsAnchorsAroundOneGroundTruthBox()
    {
        var g = TestUtil.Fresh(out _);
        using var rpn = SingleLevelRpn(g);
        // a 4×4 grid: anchor (i, j) = [16j − 16, 16i − 16, 16j + 16, 16i + 16]. GT [2, 0, 34, 32] against
        //   (1,1) [0,0,32,32]: 30·32 / (2048 − 960) = 0.882 → positive
        //   (1,2) [16,0,48,32]: 18·32 / (2048 − 576) = 0.391 → ignored;  (0,1), (2,1): 30·16 / (2048 − 480) = 0.306 → ignored
        //   (1,0) [−16,0,16,32]: 14·32 / (2048 − 448) = 0.28 → negative; every other anchor < 0.3 → negative
        using var anchors = rpn.AnchorGenerator.GridAnchors([(4, 4)])[0];
        using var gt = Instances.FromGroundTruth((64, 64), Tensor.From([2f, 0, 34, 32], 1, 4), Tensor.From([0L], 1));
        var (labels, matched) = rpn.LabelAndSampleAnchors(anchors, gt);
        matched.Dispose();
        var expected = Enumerable.Repeat(0, 16).ToArray();
        expected[1 * 4 + 1] = 1;
        expected[1 * 4 + 2] = expected[0 * 4 + 1] = expected[2 * 4 + 1] = -1;
        Assert.Equal(expected, labels);
    }

    [Fact]
    public void LossOnOneGroundTruthBoxIsNormalizedByTheSamplingBudget()
    {
        var g = TestUtil.Fresh(out var seed);
        using var rpn = SingleLevelRpn(g);
        // constant predictions: logit b everywhere, deltas (d, 0, 0, 0) everywhere
        const float b = 0.5f, d = 0.1f;
        foreach (var (_, p) in rpn.NamedParameters()) Init.Zeros(p);
        using (GradMode.NoGrad())
        {
            rpn.RpnHead.ObjectnessLogits.Bias!.Value.Fill(b);
            using var dx = rpn.RpnHead.AnchorDeltas.Bias!.Value.Narrow(0, 0, 1);
            dx.Fill(d);
        }
        using var images = new ImageList(Tensor.Zeros([1, 3, 64, 64]), [(64, 64)]);
        using var features = Tensor.Randn([1, 4, 4, 4], g);
        using var gt = Instances.FromGroundTruth((64, 64), Tensor.From([2f, 0, 34, 32], 1, 4), Tensor.From([0L], 1));
        var (proposals, losses) = rpn.Forward(images, new Dictionary<string, Tensor> { ["p4"] = features }, [gt]);
        // proposals are constants for the ROI heads: no gradient flows back through them
        Assert.False(proposals[0].PredBoxes!.RequiresGrad);
        Assert.False(proposals[0].Scores!.RequiresGrad);
        foreach (var p in proposals) p.Dispose();
        // 1 positive, 12 negatives (see LabelsAnchorsAroundOneGroundTruthBox), all sampled (budget 256, positives ≤ 128);
        // normalizer N·256 = 256, not the 13 sampled anchors
        var expectedCls = (Math.Log(1 + Math.Exp(-b)) + 12 * Math.Log(1 + Math.Exp(b))) / 256;
        // the positive's target deltas: dx = (18 − 16) / 32 = 0.0625, the rest 0; L1 (β = 0)
        var expectedLoc = (Math.Abs(d - 0.0625)) / 256;
        using var cls = losses["loss_rpn_cls"];
        using var loc = losses["loss_rpn_loc"];
        // float32 sums of 13 terms of order 1: 1e-6 relative
        Assert.True(Math.Abs(cls.Item() - expectedCls) < 1e-6 * expectedCls + 1e-8, $"loss_rpn_cls {cls.Item()} vs {expectedCls}, seed {seed}");
        Assert.True(Math.Abs(loc.Item() - expectedLoc) < 1e-6 * expectedLoc + 1e-8, $"loss_rpn_loc {loc.Item()} vs {expectedLoc}, seed {seed}");
    }

    [Fact]
    public void SamplingCapsPositivesAndFillsWithNegatives()
    {
        var g = TestUtil.Fresh(out var seed);
        using var rpn = SingleLevelRpn(g, batch: 8);
        using var anchors = rpn.AnchorGenerator.GridAnchors([(8, 8)])[0];
        // 6 GT boxes equal to 6 anchors → 6 positives; budget 8 at 0.5 → 4 positives and 4 negatives
        var boxes = new float[24];
        for (var k = 0; k < 6; k++)
        {
            var (i, j) = (1 + k / 3 * 3, 1 + k % 3 * 3);
            float[] box = [16 * j - 16, 16 * i - 16, 16 * j + 16, 16 * i + 16];
            box.CopyTo(boxes, 4 * k);
        }
        using var gt = Instances.FromGroundTruth((128, 128), Tensor.From(boxes, 6, 4), Tensor.Zeros([6], DType.Int64));
        var (labels, matched) = rpn.LabelAndSampleAnchors(anchors, gt);
        matched.Dispose();
        Assert.True(labels.Count(l => l == 1) == 4, $"positives {labels.Count(l => l == 1)}, seed {seed}");
        Assert.True(labels.Count(l => l == 0) == 4, $"negatives {labels.Count(l => l == 0)}, seed {seed}");
    }

    [Fact]
    public void ProposalsTakeTopkPerLevelClipDropEmptyAndSuppressPerLevel()
    {
        var g = TestUtil.Fresh(out _);
        using var rpn = SingleLevelRpn(g, preTopk: 3, postTopk: 3);
        rpn.Eval();
        // level 0: four anchors; zero deltas, so proposals are the anchors themselves
        //   a [0,0,20,20] score 4; b [1,0,21,20] score 3 (IoU with a 0.905 > 0.7 → suppressed); c [50,50,80,90] score 2
        //   (clipped to [50,50,64,64]); d [10,10,12,12] score 1 (beyond the per-level top-3)
        // level 1: e [1,0,21,20] score 3.5 (overlaps a, but on another level: kept); f [70,0,90,20] score 5 (clipped
        //   to zero width: dropped)
        using var a0 = Tensor.From([0f, 0, 20, 20, 1, 0, 21, 20, 50, 50, 80, 90, 10, 10, 12, 12], 4, 4);
        using var a1 = Tensor.From([1f, 0, 21, 20, 70, 0, 90, 20], 2, 4);
        using var l0 = Tensor.From([4f, 3, 2, 1], 1, 4);
        using var l1 = Tensor.From([3.5f, 5], 1, 2);
        using var d0 = Tensor.Zeros([1, 4, 4]);
        using var d1 = Tensor.Zeros([1, 2, 4]);
        var result = rpn.FindTopProposals([a0, a1], [l0, l1], [d0, d1], [(64, 64)]);
        using var p = result[0];
        // surviving by score: a (4), e (3.5), c (2); post-NMS top-3 keeps all three
        Assert.Equal([0f, 0, 20, 20, 1, 0, 21, 20, 50, 50, 64, 64], p.PredBoxes!.ToFloatArray());
        Assert.Equal([4f, 3.5f, 2], p.Scores!.ToFloatArray());
    }

    [Fact]
    public void ProposalsStopAtThePostNmsTopk()
    {
        var g = TestUtil.Fresh(out _);
        using var rpn = SingleLevelRpn(g, preTopk: 10, postTopk: 2);
        rpn.Eval();
        using var a0 = Tensor.From([0f, 0, 10, 10, 20, 0, 30, 10, 40, 0, 50, 10], 3, 4);
        using var l0 = Tensor.From([1f, 3, 2], 1, 3);
        using var d0 = Tensor.Zeros([1, 3, 4]);
        var result = rpn.FindTopProposals([a0], [l0], [d0], [(64, 64)]);
        using var p = result[0];
        Assert.Equal([20f, 0, 30, 10, 40, 0, 50, 10], p.PredBoxes!.ToFloatArray());
    }

    [Fact]
    public void TrainingAndTestUseTheirOwnTopk()
    {
        var g = TestUtil.Fresh(out _);
        var head = new StandardRpnHead(4, 1, g);
        using var rpn = new Engine.Detection.Modeling.ProposalGenerator.Rpn(["p4"], head, new DefaultAnchorGenerator([[32]], [[1.0]], [16]), Matcher.ForRpn(),
            Box2BoxTransform.ForRpn(), new BalancedPositiveNegativeSampler(256, 0.5), g, (Train: 3, Test: 10), (Train: 2, Test: 1));
        using var a0 = Tensor.From([0f, 0, 10, 10, 20, 0, 30, 10, 40, 0, 50, 10, 0, 20, 10, 30], 4, 4);
        using var l0 = Tensor.From([1f, 4, 2, 3], 1, 4);
        using var d0 = Tensor.Zeros([1, 4, 4]);
        // training: pre-NMS top-3 (4, 3, 2), post-NMS top-2 → scores 4, 3
        var train = rpn.FindTopProposals([a0], [l0], [d0], [(64, 64)]);
        using (train[0]) Assert.Equal([4f, 3], train[0].Scores!.ToFloatArray());
        // test: pre-NMS top-10 (all), post-NMS top-1 → score 4
        rpn.Eval();
        var test = rpn.FindTopProposals([a0], [l0], [d0], [(64, 64)]);
        using (test[0]) Assert.Equal([4f], test[0].Scores!.ToFloatArray());
    }
}
