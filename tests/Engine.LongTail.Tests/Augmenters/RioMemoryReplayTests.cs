// RIO memory replay (section 5.2, 5.5, 5.6): queues and replayed rows against the list simulation over many steps
// (odd sizes, absent and never-seen classes, LVIS width with its 553 bank classes), random selection's rules, replay
// count 0 as the baseline, the gradient dilution of the box head by N_current / N_total, stored boxes returned bit for
// bit, state round trip with a bit-identical resume, and the error messages.
using Engine.LongTail.Reference;

namespace Engine.LongTail.Tests.Augmenters;

public class RioMemoryReplayTests
{
    private static RioReference.Entry[] Rows(Generator g, int r, int d, int c, double background = 0.4, int classLimit = int.MaxValue)
    {
        var rows = new RioReference.Entry[r];
        for (var n = 0; n < r; n++)
        {
            long y = g.NextDouble() < background ? c : g.NextInt64(Math.Min(c, classLimit));
            rows[n] = new RioReference.Entry(F(TestUtil.Uniform(g, d, 0, 3)), F(TestUtil.Uniform(g, 4, 0, 500)), F(TestUtil.Uniform(g, 4, 0, 500)), y);
        }
        return rows;
    }

    private static double[] F(double[] v) => v.Select(x => (double)(float)x).ToArray();

    private static RoiAugmentation Run(RioMemoryReplay rio, IReadOnlyList<RioReference.Entry> rows, Generator g) => Run(rio, rows, g, out _, false);

    private static RoiAugmentation Run(RioMemoryReplay rio, IReadOnlyList<RioReference.Entry> rows, Generator g, out Tensor x, bool requireGrad)
    {
        var d = rio.EmbeddingDim;
        x = TestUtil.Float(rows.SelectMany(e => e.Embedding).ToArray(), rows.Count, d);
        if (requireGrad) x.RequireGrad();
        using var y = TestUtil.Long(rows.Select(e => e.Label).ToArray());
        using var p = TestUtil.Float(rows.SelectMany(e => e.Proposal).ToArray(), rows.Count, 4);
        using var gt = TestUtil.Float(rows.SelectMany(e => e.GtBox).ToArray(), rows.Count, 4);
        var result = rio.Augment(new RoiBatch(x, y, p, gt), g);
        if (!requireGrad) x.Dispose();
        return result;
    }

    [Fact]
    public void StepsMatchTheListSimulation()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (r, d, c, bank, k, cap) in new[]
                 {
                     (23, 7, 9, new[] { 0, 2, 3, 5, 8 }, 4, 11),
                     (1, 5, 3, new[] { 1 }, 20, 60),
                     (0, 3, 4, new[] { 0, 1, 2, 3 }, 2, 3),
                     (41, 3, 1203, Enumerable.Range(0, 553).ToArray(), 20, 60),
                 })
        {
            using var rio = new RioMemoryReplay(c, d, bank, k, cap);
            var reference = new RioReference(c, bank, k, cap);
            // classes drawn from a small range so queues fill and wrap
            var limit = Math.Min(c, 7);
            for (var step = 0; step < 12; step++)
            {
                var rows = Rows(g, r, d, c, 0.3, limit);
                var replay = reference.Step(rows);
                using var result = Run(rio, rows, g);
                var what = $"R={r} D={d} C={c} k={k} cap={cap} step {step}";
                Assert.True(result.CurrentRows == r && result.AppendedRows == replay.Count, $"{what}: {result.AppendedRows} replayed rows, expected {replay.Count} (seed {seed})");
                var all = rows.Concat(replay).ToArray();
                Assert.Equal(all.SelectMany(e => e.Embedding).ToArray(), result.Embeddings.ToDoubleArray());
                Assert.Equal(all.Select(e => e.Label).ToArray(), result.Labels.ToInt64Array());
                Assert.Equal(all.SelectMany(e => e.Proposal).ToArray(), result.Proposals!.ToDoubleArray());
                Assert.Equal(all.SelectMany(e => e.GtBox).ToArray(), result.GtBoxes!.ToDoubleArray());
                Assert.True(result.AppendedRowsRegress);
                for (var cls = 0; cls < c; cls++)
                {
                    var q = reference.Queue(cls);
                    Assert.True(rio.QueueLength(cls) == q.Count && q.Count <= cap, $"{what}: class {cls} holds {rio.QueueLength(cls)}, expected {q.Count} (seed {seed})");
                    if (q.Count == 0) continue;
                    var (e, b) = rio.Entries(cls);
                    Assert.Equal(q.SelectMany(x => x.Embedding).ToArray(), e.Select(v => (double)v).ToArray());
                    Assert.Equal(q.SelectMany(x => x.Proposal.Concat(x.GtBox)).ToArray(), b.Select(v => (double)v).ToArray());
                }
            }
        }
    }

    [Fact]
    public void RandomSelectionReplaysDistinctEarlierEntriesOfPresentClasses()
    {
        var g = TestUtil.Fresh(out var seed);
        const int d = 4, c = 12, k = 5, cap = 9;
        var bank = new[] { 1, 3, 4, 6, 7, 10 };
        using var rio = new RioMemoryReplay(c, d, bank, k, cap, randomSelect: true);
        var reference = new RioReference(c, bank, k, cap);
        for (var step = 0; step < 15; step++)
        {
            var rows = Rows(g, 17, d, c, 0.3);
            // the queues before this step's pushes are the only allowed sources
            var before = Enumerable.Range(0, c).ToDictionary(cls => cls, cls => reference.Queue(cls).Select(e => string.Join(",", e.Embedding)).ToList());
            reference.Step(rows);
            using var result = Run(rio, rows, g);
            var labels = result.Labels.ToInt64Array();
            var emb = result.Embeddings.ToDoubleArray();
            var present = rows.Select(e => e.Label).Where(l => l < c && bank.Contains((int)l)).Distinct().Order().ToArray();
            var expectedCounts = present.Select(cls => Math.Min(k, before[(int)cls].Count)).ToArray();
            var replayedLabels = labels.Skip(rows.Length).ToArray();
            Assert.Equal(present.SelectMany((cls, i) => Enumerable.Repeat(cls, expectedCounts[i])).ToArray(), replayedLabels);
            var seen = new HashSet<string>();
            for (var i = rows.Length; i < labels.Length; i++)
            {
                var key = string.Join(",", emb.Skip(i * d).Take(d));
                Assert.True(before[(int)labels[i]].Contains(key), $"step {step}: replayed row {i} is not an earlier entry of class {labels[i]} (seed {seed})");
                Assert.True(seen.Add(key), $"step {step}: entry replayed twice (seed {seed})");
            }
        }
    }

    [Fact]
    public void ReplayCountZeroIsTheBaselineAndReplayDilutesTheBoxHeadGradient()
    {
        // 5.5/5.6 and section 8: k = 0 gives the baseline rows; with replay, ∂L/∂x of the current rows equals the
        // no-replay gradient times N_current / N_total under softmax CE averaged over all rows
        var g = TestUtil.Fresh(out var seed);
        const int r = 19, d = 6, c = 7;
        var bank = new[] { 0, 1, 2, 3 };
        var w = TestUtil.Uniform(g, d * (c + 1), -1, 1);
        using var loss = new SoftmaxCrossEntropyLoss(c);
        using var replay = new RioMemoryReplay(c, d, bank, 3, 10);
        using var off = new RioMemoryReplay(c, d, bank, 0, 10);
        for (var step = 0; step < 3; step++)
        {
            var rows = Rows(g, r, d, c, 0.3, 5);
            var (lossOff, gradOff, nOff) = LossAndGrad(off, rows, w, d, c, loss, g);
            var (_, gradOn, nOn) = LossAndGrad(replay, rows, w, d, c, loss, g);
            Assert.Equal(r, nOff);
            var (baseLoss, baseGrad) = BaselineLossAndGrad(rows, w, d, c, loss);
            Assert.Equal(baseLoss, lossOff);
            Assert.Equal(baseGrad, gradOff);
            if (step > 0) Assert.True(nOn > r, $"step {step}: no replay although the queues hold entries (seed {seed})");
            // the 1/N factor of the mean is the only difference: float rounding of the rescaled sums
            TestUtil.AssertClose(gradOff.Select(v => v * r / nOn).ToArray(), gradOn, $"step {step}: box-head gradient with replay", seed, 1e-7, 1e-5);
        }
    }

    private static (double Loss, double[] Grad, int Rows) LossAndGrad(RioMemoryReplay rio, RioReference.Entry[] rows, double[] w, int d, int c,
                                                                       SoftmaxCrossEntropyLoss loss, Generator g)
    {
        using var scope = DisposeScope.Begin();
        using var result = Run(rio, rows, g, out var leaf, requireGrad: true);
        var z = result.Embeddings.Matmul(TestUtil.Float(w, d, c + 1));
        var l = loss.Loss(z, result.Labels);
        l.Backward();
        return (l.Item(), leaf.Grad!.ToDoubleArray(), result.Rows);
    }

    private static (double Loss, double[] Grad) BaselineLossAndGrad(RioReference.Entry[] rows, double[] w, int d, int c, SoftmaxCrossEntropyLoss loss)
    {
        using var scope = DisposeScope.Begin();
        var x = TestUtil.Float(rows.SelectMany(e => e.Embedding).ToArray(), rows.Length, d).RequireGrad();
        var z = x.Matmul(TestUtil.Float(w, d, c + 1));
        var l = loss.Loss(z, TestUtil.Long(rows.Select(e => e.Label).ToArray()));
        l.Backward();
        return (l.Item(), x.Grad!.ToDoubleArray());
    }

    [Fact]
    public void StateRoundTripResumesBitIdentically()
    {
        var g = TestUtil.Fresh(out var seed);
        const int d = 5, c = 10, k = 4, cap = 7;
        var bank = new[] { 0, 2, 4, 6, 9 };
        var steps = Enumerable.Range(0, 8).Select(_ => Rows(g, 13, d, c, 0.3)).ToArray();
        using var a = new RioMemoryReplay(c, d, bank, k, cap, randomSelect: true);
        var ga = new Generator(seed ^ 0x5EED);
        for (var i = 0; i < 4; i++) Run(a, steps[i], ga).Dispose();
        using var b = new RioMemoryReplay(c, d, bank, k, cap, randomSelect: true);
        using (var state = a.StateDict())
        {
            Assert.Equal([bank.Length, cap, d], state["embeddings"].ShapeArray());
            b.LoadStateDict(state);
        }
        var gb = new Generator(ga.Seed) { Position = ga.Position };
        for (var i = 4; i < steps.Length; i++)
        {
            using var ra = Run(a, steps[i], ga);
            using var rb = Run(b, steps[i], gb);
            Assert.Equal(ra.Embeddings.ToDoubleArray(), rb.Embeddings.ToDoubleArray());
            Assert.Equal(ra.Labels.ToInt64Array(), rb.Labels.ToInt64Array());
            Assert.Equal(ra.GtBoxes!.ToDoubleArray(), rb.GtBoxes!.ToDoubleArray());
        }
        foreach (var cls in bank) Assert.Equal(a.Entries(cls).Embeddings, b.Entries(cls).Embeddings);
    }

    [Fact]
    public void EmptyQueuesAndClassesOutsideTheBankReplayNothing()
    {
        var g = TestUtil.Fresh(out _);
        const int d = 3, c = 6;
        using var rio = new RioMemoryReplay(c, d, [1, 2], 5, 4);
        // first step: queues empty, nothing replayed; class 0 (outside the bank) is never stored
        var rows = Rows(g, 9, d, c, 0).Select((e, i) => e with { Label = i % 3 }).ToArray();
        using (var first = Run(rio, rows, g)) Assert.Equal(0, first.AppendedRows);
        Assert.Equal(0, rio.QueueLength(0));
        Assert.Equal(3, rio.QueueLength(1));
        // a batch with only class 0 and background replays nothing even though queues 1 and 2 hold entries
        var other = Rows(g, 5, d, c, 0).Select((e, i) => e with { Label = i % 2 == 0 ? 0 : c }).ToArray();
        using (var second = Run(rio, other, g)) Assert.Equal(0, second.AppendedRows);
        // the empty batch
        using (var empty = Run(rio, [], g)) Assert.Equal(0, empty.Rows);
    }

    [Fact]
    public void BadInputsNameTheCallAndTheFix()
    {
        Assert.Contains("bank class 7", Assert.Throws<ArgumentException>(() => new RioMemoryReplay(5, 3, [7])).Message);
        using var rio = new RioMemoryReplay(5, 3, [1]);
        using var scope = DisposeScope.Begin();
        var g = new Generator(1);
        var e = Assert.Throws<ArgumentException>(() => rio.Augment(new RoiBatch(Tensor.Zeros([4, 3]), Tensor.Zeros([4], DType.Int64)), g));
        Assert.Contains("proposals", e.Message);
        e = Assert.Throws<ArgumentException>(() => rio.Augment(new RoiBatch(Tensor.Zeros([4, 2]), Tensor.Zeros([4], DType.Int64), Tensor.Zeros([4, 4]), Tensor.Zeros([4, 4])), g));
        Assert.Contains("D = 3", e.Message);
        using var state = rio.StateDict();
        using var other = new RioMemoryReplay(5, 3, [2]);
        Assert.Contains("bank_classes", Assert.Throws<ArgumentException>(() => other.LoadStateDict(state)).Message);
    }

    [Fact]
    public void BankClassesAreTheClassesWithFewTrainingImages()
    {
        var g = TestUtil.Fresh(out var seed);
        var counts = Enumerable.Range(0, 1203).Select(_ => g.NextInt64(200)).ToArray();
        var bank = RioMemoryReplay.BankClassesByImageCount(counts, 30);
        Assert.Equal(Enumerable.Range(0, counts.Length).Where(c => counts[c] is >= 1 and <= 30), bank);
        Assert.True(RioMemoryReplay.BankClassesByImageCount(counts, 10).All(c => bank.Contains(c)), $"rare ⊂ rare_common30 (seed {seed})");
        using var rio = new RioMemoryReplay(counts.Length, 4, bank);
        Assert.Equal(bank, rio.BankClasses);
    }
}
