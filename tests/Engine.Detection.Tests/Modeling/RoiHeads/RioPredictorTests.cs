// RIO memory replay (long-tail-methods.md 5.2, 5.6) through the box predictor's losses: a replayed row's regression
// target in loss_box_reg is the one computed from its proposal and ground-truth box when it was pushed, the box loss
// sums over current and replayed positives and divides by the grown row count, and the gradient of the current rows'
// embeddings (the path into the box head and backbone) is the no-replay gradient times N_current / N_total for the
// classification and box losses together (replayed rows are constants).
using Engine.Detection.Modeling.RoiHeads;
using Engine.LongTail;
using Engine.Nn;
using Engine.Tests;

namespace Engine.Detection.Tests.Modeling.RoiHeads;

public class RioPredictorTests
{
    private const int C = 5, D = 8;
    private static readonly int[] Bank = [0, 1, 2, 3]; // class 4 is outside the bank

    private sealed record Rows(float[] X, long[] Labels, float[] Proposals, float[] Gt)
    {
        public int R => Labels.Length;
    }

    /// <summary>R rows: the first eight hold each bank class twice, the rest random (background about a third); proposals
    /// of positive size with a ground-truth box jittered around each.</summary>
    private static Rows Make(Generator g, int r)
    {
        var x = new float[r * D];
        for (var i = 0; i < x.Length; i++) x[i] = (float)(2 * g.NextDouble());
        var labels = new long[r];
        for (var i = 0; i < r; i++) labels[i] = i < 8 ? Bank[i % Bank.Length] : g.NextDouble() < 0.35 ? C : g.NextInt64(C);
        var p = new float[r * 4];
        var gt = new float[r * 4];
        for (var i = 0; i < r; i++)
        {
            var (x1, y1) = (100 * g.NextDouble(), 100 * g.NextDouble());
            var (w, h) = (8 + 60 * g.NextDouble(), 8 + 60 * g.NextDouble());
            double[] box = [x1, y1, x1 + w, y1 + h];
            for (var k = 0; k < 4; k++)
            {
                p[i * 4 + k] = (float)box[k];
                gt[i * 4 + k] = (float)(box[k] + (g.NextDouble() - 0.5) * 0.3 * (k % 2 == 0 ? w : h));
            }
        }
        return new Rows(x, labels, p, gt);
    }

    private sealed record StepResult(Dictionary<string, double> Losses, double[] GradX, int Total, float[] X, long[] Labels, float[] Proposals, float[] Gt, double[] Deltas);

    /// <summary>One training step of the predictor behind <paramref name="rio"/>: augment, losses, backward of
    /// loss_cls + loss_box_reg; returns the losses, ∂/∂x of the current rows and the rows the predictor saw.</summary>
    private static StepResult Step(FastRcnnOutputLayers predictor, RioMemoryReplay rio, Rows rows, ulong seed)
    {
        using var scope = DisposeScope.Begin();
        var x = Tensor.From(rows.X, rows.R, D).RequireGrad();
        var p = Tensor.From(rows.Proposals, rows.R, 4);
        var gt = Tensor.From(rows.Gt, rows.R, 4);
        using var augmented = rio.Augment(new RoiBatch(x, Tensor.From(rows.Labels, rows.R), p, gt), new Generator(seed));
        var losses = predictor.Losses(augmented, p, gt);
        losses["loss_cls"].Add(losses["loss_box_reg"]).Backward();
        double[] deltas;
        using (GradMode.NoGrad()) deltas = predictor.Forward(augmented.Embeddings).Deltas.ToDoubleArray();
        return new StepResult(losses.ToDictionary(kv => kv.Key, kv => kv.Value.Item()), x.Grad!.ToDoubleArray(), augmented.Rows,
                              augmented.Embeddings.ToFloatArray(), augmented.Labels.ToInt64Array(), augmented.Proposals!.ToFloatArray(),
                              augmented.GtBoxes!.ToFloatArray(), deltas);
    }

    private static float[] Targets(Box2BoxTransform transform, float[] proposals, float[] gt, int r)
    {
        using var scope = DisposeScope.Begin();
        return transform.GetDeltas(Tensor.From(proposals, r, 4), Tensor.From(gt, r, 4)).ToFloatArray();
    }

    [Fact]
    public void ReplayedRowsRegressToTheirPushTimeTargetsAndDiluteTheBoxHeadGradient()
    {
        var g = TestUtil.Fresh(out var seed);
        var transform = Box2BoxTransform.ForRoiHeads();
        using var predictor = new FastRcnnOutputLayers(D, C, g, transform, new SoftmaxCrossEntropyLoss(C));
        // deltas of the default N(0, 0.001²) regressor are ≈ 0; a wider one makes residual signs depend on the row
        Init.Normal(predictor.BboxPred.Weight, g, 0, 0.2);
        Init.Normal(((Linear)predictor.ClsScore).Weight, g, 0, 0.5);
        using var replay = new RioMemoryReplay(C, D, Bank, replayCount: 3, capacity: 6);
        using var off = new RioMemoryReplay(C, D, Bank, replayCount: 0, capacity: 6);

        // step 1: queues empty, nothing replayed; every bank-class positive is pushed with its proposal and GT box
        var first = Make(g, 13);
        var pushTargets = Targets(transform, first.Proposals, first.Gt, first.R);
        var pushed = new Dictionary<string, float[]>();
        for (var i = 0; i < first.R; i++)
            if (Bank.Contains((int)first.Labels[i])) pushed[Key(first.X, i)] = pushTargets[(i * 4)..(i * 4 + 4)];
        Assert.Equal(first.R, Step(predictor, replay, first, seed).Total);
        Step(predictor, off, first, seed);

        // step 2: the bank classes are present again, so up to 3 earlier entries of each are replayed
        var second = Make(g, 17);
        var withReplay = Step(predictor, replay, second, seed);
        var without = Step(predictor, off, second, seed);
        Assert.Equal(second.R, without.Total);
        Assert.True(withReplay.Total > second.R, $"no row replayed (seed {seed})");

        // the replayed rows' targets, from the boxes they came back with, equal those computed at push time bit for bit
        var replayedTargets = Targets(transform, withReplay.Proposals, withReplay.Gt, withReplay.Total);
        for (var i = second.R; i < withReplay.Total; i++)
        {
            Assert.True(pushed.TryGetValue(Key(withReplay.X, i), out var atPush), $"replayed row {i} is not an entry pushed at step 1 (seed {seed})");
            Assert.Equal(atPush, replayedTargets[(i * 4)..(i * 4 + 4)]);
        }

        // loss_box_reg = Σ over positive rows (current, then replayed with their push-time targets) of the L1 of their
        // class's deltas, divided by all rows
        var currentTargets = Targets(transform, second.Proposals, second.Gt, second.R);
        double sum = 0;
        for (var i = 0; i < withReplay.Total; i++)
        {
            var y = withReplay.Labels[i];
            if (y >= C) continue;
            var t = i < second.R ? currentTargets[(i * 4)..(i * 4 + 4)] : pushed[Key(withReplay.X, i)];
            for (var k = 0; k < 4; k++) sum += Math.Abs(withReplay.Deltas[i * 4 * C + 4 * (int)y + k] - t[k]);
        }
        // float32 deltas and a float32 sum of ≈ 40 terms against a double sum: ≈ 1e-6 relative
        TestUtil.AssertClose([sum / withReplay.Total], [withReplay.Losses["loss_box_reg"]], "loss_box_reg with replayed rows", seed, 1e-6, 1e-5);

        // ∂(loss_cls + loss_box_reg)/∂x of the current rows: the no-replay gradient rescaled by N_current / N_total; only
        // the 1/N normalizer differs, so the tolerance is float rounding of the rescaled sums
        var scale = (double)second.R / withReplay.Total;
        TestUtil.AssertClose(without.GradX.Select(v => v * scale).ToArray(), withReplay.GradX, "box-head gradient with replay", seed, 1e-7, 1e-5);
    }

    private static string Key(float[] x, int row) => string.Join(",", x.Skip(row * D).Take(D));
}
