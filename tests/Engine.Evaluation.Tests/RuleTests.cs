// One small hand-built case per rule of lvis-eval.md, each showing the official behaviour and failing
// under the plausible alternative named in the test.
using Engine.Lvis;

namespace Engine.Evaluation.Tests;

public class RuleTests
{
    /// <summary>Precision of a lone true positive: 1/(1 + 2^-52) (section 5.5).</summary>
    private static readonly double OneDet = 1.0 / (1.0 + Math.Pow(2, -52));

    private static double RecallAll(LvisEvalResult r, int t = 0, int k = 0) => r.RecallAt(t, k, 0);

    [Fact]
    public void PerImageCutCountsDetectionsOfEveryCategory()
    {
        // 300 higher-scoring detections of a category the federated filter drops still push the TP out (1.1).
        LvisEvalResult Run(int clutter)
        {
            var b = new CaseBuilder().Image(1).Category(1).Category(2).Gt(1, 1, 0, 0, 50, 50);
            for (int i = 0; i < clutter; i++)
                b.Det(1, 2, i, i, 10, 10, 0.9);
            b.Det(1, 1, 0, 0, 50, 50, 0.5);
            return b.Evaluate();
        }
        Assert.Equal(0.0, RecallAll(Run(300)));
        Assert.Equal(1.0, RecallAll(Run(299)));
        Assert.Equal(1, Run(300).Diagnostics.DroppedByImageLimit);
    }

    [Fact]
    public void TiesAtTheCutKeepTheEarlierDetectionInTheFile()
    {
        LvisEvalResult Run(bool tpFirst)
        {
            var b = new CaseBuilder().Image(1).Category(1).Gt(1, 1, 0, 0, 50, 50).Det(1, 1, 500, 500, 20, 20, 0.9);
            if (tpFirst)
                b.Det(1, 1, 0, 0, 50, 50, 0.5).Det(1, 1, 300, 300, 20, 20, 0.5);
            else
                b.Det(1, 1, 300, 300, 20, 20, 0.5).Det(1, 1, 0, 0, 50, 50, 0.5);
            return b.Evaluate(new LvisEvalOptions { MaxDetsPerImage = 2 });
        }
        Assert.Equal(1.0, RecallAll(Run(tpFirst: true)));
        Assert.Equal(0.0, RecallAll(Run(tpFirst: false)));
    }

    [Fact]
    public void ZeroAreaDetectionIsDroppedNotCountedAsFalsePositive()
    {
        var r = new CaseBuilder().Image(1).Category(1).Gt(1, 1, 0, 0, 50, 50)
            .Det(1, 1, 0, 0, 0, 50, 0.9).Det(1, 1, 0, 0, 50, 50, 0.5).Evaluate();
        Assert.Equal(OneDet, r.PrecisionAt(0, 100, 0, 0));
        Assert.Equal(1, r.Diagnostics.ZeroArea);
    }

    [Fact]
    public void ZeroAreaGtDoesNotMakeItsCategoryPresent()
    {
        var r = new CaseBuilder().Image(1).Category(1).Gt(1, 1, 0, 0, 50, 50, area: 0).Det(1, 1, 0, 0, 50, 50, 0.5).Evaluate();
        Assert.Equal(-1.0, r.PerCategoryAp[0]);
        Assert.Equal(1, r.Diagnostics.NotFederated);
    }

    [Fact]
    public void DetectionsCountOnlyForPresentOrNegativeCategories()
    {
        LvisEvalResult Run(bool negative) => new CaseBuilder()
            .Image(1).Image(2, neg: negative ? [1] : []).Category(1)
            .Gt(1, 1, 0, 0, 50, 50).Det(2, 1, 0, 0, 50, 50, 0.9).Det(1, 1, 0, 0, 50, 50, 0.5).Evaluate();
        Assert.Equal(1.0 / (2.0 + Math.Pow(2, -52)), Run(negative: true).PrecisionAt(0, 100, 0, 0));   // FP ahead of the TP
        Assert.Equal(OneDet, Run(negative: false).PrecisionAt(0, 100, 0, 0));                         // dropped silently
    }

    [Fact]
    public void UnmatchedDetectionsOfNotExhaustiveCategoriesAreIgnored()
    {
        LvisEvalResult Run(bool notExhaustive) => new CaseBuilder()
            .Image(1, notExhaustive: notExhaustive ? [1] : []).Category(1)
            .Gt(1, 1, 0, 0, 50, 50).Det(1, 1, 400, 400, 50, 50, 0.9).Det(1, 1, 0, 0, 50, 50, 0.5).Evaluate();
        Assert.Equal(OneDet, Run(true).PrecisionAt(0, 100, 0, 0));
        Assert.Equal(1.0, RecallAll(Run(true)));   // the matched one is still a TP
        Assert.Equal(1.0 / (2.0 + Math.Pow(2, -52)), Run(false).PrecisionAt(0, 100, 0, 0));
    }

    [Fact]
    public void GtAreaComesFromTheAreaFieldAndRangesIncludeBothEnds()
    {
        // A 10x10 box whose area field says 1024: small and medium both (inclusive), not w*h = 100.
        var r = new CaseBuilder().Image(1).Category(1).Gt(1, 1, 0, 0, 10, 10, area: 1024).Det(1, 1, 0, 0, 10, 10, 0.5).Evaluate();
        Assert.Equal(1.0, r.RecallAt(0, 0, 1));
        Assert.Equal(1.0, r.RecallAt(0, 0, 2));
        Assert.Equal(-1.0, r.RecallAt(0, 0, 3));
        var medium = new CaseBuilder().Image(1).Category(1).Gt(1, 1, 0, 0, 10, 10, area: 5000).Det(1, 1, 0, 0, 10, 10, 0.5).Evaluate();
        Assert.Equal(-1.0, medium.Summary.APs);
        Assert.True(medium.Summary.APm > 0);
    }

    [Fact]
    public void UnmatchedDetectionOutsideTheAreaRangeIsIgnored()
    {
        // A small FP (area 100) does not hurt the large range; it does hurt "all".
        var r = new CaseBuilder().Image(1).Category(1).Gt(1, 1, 0, 0, 200, 200)
            .Det(1, 1, 500, 500, 10, 10, 0.9).Det(1, 1, 0, 0, 200, 200, 0.5).Evaluate();
        Assert.Equal(OneDet, r.PrecisionAt(0, 100, 0, 3));
        Assert.Equal(1.0 / (2.0 + Math.Pow(2, -52)), r.PrecisionAt(0, 100, 0, 0));
    }

    [Fact]
    public void IouExactlyAtTheThresholdMatches()
    {
        var r = new CaseBuilder().Image(1).Category(1).Gt(1, 1, 0, 0, 10, 10).Det(1, 1, 0, 0, 10, 5, 0.5).Evaluate();
        Assert.Equal(1.0, RecallAll(r, t: 0));   // IoU 0.5 >= 0.5
        Assert.Equal(0.0, RecallAll(r, t: 1));   // < 0.55
    }

    [Fact]
    public void AmongEqualIousTheLastGtWins()
    {
        // det1 has IoU 0.6 with both GTs and takes the second; det2 then matches the first. First-wins would
        // leave det2 unmatched (recall 0.5).
        var r = new CaseBuilder().Image(1).Category(1).Gt(1, 1, 0, 0, 10, 10).Gt(1, 1, 5, 0, 10, 10)
            .Det(1, 1, 2.5, 0, 10, 10, 0.9).Det(1, 1, 0, 0, 10, 10, 0.8).Evaluate();
        Assert.Equal(1.0, RecallAll(r));
    }

    [Fact]
    public void NonIgnoredGtIsPreferredAndMatchesToIgnoredGtAreIgnored()
    {
        // The detection overlaps the ignored GT perfectly and the regular one at 0.82: it takes the regular one.
        var r = new CaseBuilder().Image(1).Category(1).Gt(1, 1, 0, 0, 10, 10, ignore: true).Gt(1, 1, 1, 0, 10, 10)
            .Det(1, 1, 0, 0, 10, 10, 0.5).Evaluate();
        Assert.Equal(1.0, RecallAll(r));
        // Matched only to an ignored GT: neither TP nor FP, so the later TP keeps precision 1.
        var ignored = new CaseBuilder().Image(1).Category(1).Gt(1, 1, 0, 0, 10, 10, ignore: true).Gt(1, 1, 300, 300, 10, 10)
            .Det(1, 1, 0, 0, 10, 10, 0.9).Det(1, 1, 300, 300, 10, 10, 0.5).Evaluate();
        Assert.Equal(OneDet, ignored.PrecisionAt(0, 100, 0, 0));
    }

    [Fact]
    public void SinglePerfectDetectionScoresOneOverOnePlusEps()
    {
        var r = new CaseBuilder().Image(1).Category(1).Gt(1, 1, 0, 0, 10, 10).Det(1, 1, 0, 0, 10, 10, 0.5).Evaluate();
        for (int t = 0; t < EvalParams.T; t++)
            for (int rr = 0; rr < EvalParams.R; rr++)
                Assert.Equal(OneDet, r.PrecisionAt(t, rr, 0, 0));
        Assert.True(r.PerCategoryAp[0] < 1.0);
    }

    [Fact]
    public void ThresholdsAreNumpyLinspaceValues()
    {
        Assert.Equal(35 * 0.01, EvalParams.RecallThresholds[35]);
        Assert.NotEqual(0.35, EvalParams.RecallThresholds[35]);
        Assert.Equal(1.0, EvalParams.RecallThresholds[100]);
        Assert.Equal(8 * ((0.95 - 0.5) / 9) + 0.5, EvalParams.IouThresholds[8]);
        Assert.NotEqual(0.9, EvalParams.IouThresholds[8]);
        Assert.Equal(0.95, EvalParams.IouThresholds[9]);
        Assert.Equal(0.5, EvalParams.IouThresholds[0]);
        Assert.Equal(0.75, EvalParams.IouThresholds[5]);
    }

    [Fact]
    public void RecallOfExactlySevenTwentiethsDoesNotReachThreshold35()
    {
        var b = new CaseBuilder().Image(1).Category(1);
        for (int i = 0; i < 20; i++)
            b.Gt(1, 1, 40 * i, 0, 20, 20);
        for (int i = 0; i < 7; i++)
            b.Det(1, 1, 40 * i, 0, 20, 20, 0.9 - 0.01 * i);
        var r = b.Evaluate();
        Assert.Equal(0.35, RecallAll(r));
        Assert.True(r.PrecisionAt(0, 34, 0, 0) > 0.99);
        Assert.Equal(0.0, r.PrecisionAt(0, 35, 0, 0));
    }

    [Fact]
    public void CategoryWithoutGtStaysMinusOneEvenWithDetections()
    {
        var r = new CaseBuilder().Image(1, neg: [2]).Category(1).Category(2, LvisFrequency.Rare).Gt(1, 1, 0, 0, 10, 10)
            .Det(1, 2, 0, 0, 10, 10, 0.9).Det(1, 1, 0, 0, 10, 10, 0.5).Evaluate();
        Assert.Equal(-1.0, r.PerCategoryAp[1]);
        Assert.Equal(-1.0, r.RecallAt(0, 1, 0));
        Assert.Equal(-1.0, r.Summary.APr);
        Assert.Equal(r.PerCategoryAp[0], r.Summary.AP);
    }

    [Fact]
    public void EqualScoresAcrossImagesPutTheLowerImageIdFirst()
    {
        // Image 9's TP is first in the file, image 5's FP second; the FP (lower id) still goes first.
        var r = new CaseBuilder().Image(9).Image(5, neg: [1]).Category(1).Gt(9, 1, 0, 0, 10, 10)
            .Det(9, 1, 0, 0, 10, 10, 0.5).Det(5, 1, 0, 0, 10, 10, 0.5).Evaluate();
        Assert.Equal(1.0 / (2.0 + Math.Pow(2, -52)), r.PrecisionAt(0, 100, 0, 0));
    }

    [Fact]
    public void DetectionMatchedToGtWithIdZeroCountsAsFalsePositive()
    {
        var r = new CaseBuilder().Image(1).Category(1).Gt(1, 1, 0, 0, 10, 10, id: 0).Det(1, 1, 0, 0, 10, 10, 0.5).Evaluate();
        Assert.Equal(0.0, RecallAll(r));
    }

    [Fact]
    public void PerCategoryBudgetKeepsTheTopScoresOverTheDataset()
    {
        var b = new CaseBuilder().Image(1).Image(2).Category(1).Gt(1, 1, 0, 0, 10, 10).Gt(2, 1, 0, 0, 10, 10);
        b.Det(1, 1, 0, 0, 10, 10, 0.3).Det(2, 1, 100, 100, 10, 10, 0.9).Det(2, 1, 0, 0, 10, 10, 0.8).Det(1, 1, 200, 200, 10, 10, 0.7);
        var r = b.Evaluate(new LvisEvalOptions { MaxDetsPerImage = 0, MaxDetsPerCategory = 2 });
        Assert.Equal(0.5, RecallAll(r));   // 0.9 (FP) and 0.8 (TP) kept; the 0.3 TP is over budget
        Assert.Equal(2, r.Diagnostics.DroppedByCategoryLimit);
    }

    [Fact]
    public void PooledApAccumulatesCategoriesTogether()
    {
        // cat 1: TP at 0.9; cat 2: FP at 0.95, TP at 0.3. Pooled order FP, TP, TP over 2 GT: envelope 2/3 everywhere.
        var b = new CaseBuilder().Image(1).Category(1).Category(2)
            .Gt(1, 1, 0, 0, 10, 10).Gt(1, 2, 100, 100, 10, 10)
            .Det(1, 1, 0, 0, 10, 10, 0.9).Det(1, 2, 300, 300, 10, 10, 0.95).Det(1, 2, 100, 100, 10, 10, 0.3);
        var r = b.Evaluate(new LvisEvalOptions { ComputePooled = true });
        var expected = Enumerable.Repeat(2.0 / (3.0 + Math.Pow(2, -52)), EvalParams.T * EvalParams.R).ToArray();
        Assert.Equal(NumpyMean.Mean(expected), r.Pooled!.All);
        Assert.Equal(r.Pooled.All, r.Pooled.Frequent);
        Assert.Equal(-1.0, r.Pooled.Rare);
        var single = new CaseBuilder().Image(1).Category(1).Gt(1, 1, 0, 0, 10, 10).Det(1, 1, 300, 300, 10, 10, 0.95).Det(1, 1, 0, 0, 10, 10, 0.3)
            .Evaluate(new LvisEvalOptions { ComputePooled = true });
        Assert.Equal(single.PerCategoryAp[0], single.Pooled!.All);
    }

    [Fact]
    public void EmptyResultsScoreZeroForCategoriesWithGt()
    {
        var r = new CaseBuilder().Image(1).Category(1).Category(2).Gt(1, 1, 0, 0, 10, 10).Evaluate();
        Assert.Equal(0.0, r.Summary.AP);
        Assert.Equal(0.0, r.Summary.AR300);
        Assert.Equal(-1.0, r.PerCategoryAp[1]);
    }
}
