// The fast evaluator against the plain reference on random cases built to hit the sharp edges: integer
// boxes (IoUs exactly on thresholds, equal IoUs), scores from a small set (ties within and across
// images), zero-area boxes and GT, ignore flags, unknown categories, negative and not-exhaustive
// lists, images over the per-image limit. Precision and recall arrays must agree exactly.
using Engine.Lvis;

namespace Engine.Evaluation.Tests;

public class ReferenceComparisonTests
{
    internal static (LvisDataset Gt, LvisResults Results) RandomCase(Random rng)
    {
        int images = 1 + rng.Next(8), categories = 1 + rng.Next(6);
        var b = new CaseBuilder();
        var catIds = Enumerable.Range(1, categories + 3).OrderBy(_ => rng.Next()).Take(categories).ToArray();
        foreach (int c in catIds)
            b.Category(c, (LvisFrequency)rng.Next(3));
        long[] imageIds = [.. Enumerable.Range(0, images).Select(_ => (long)rng.Next(1, 1000)).Distinct()];
        double[] scores = [0.9, 0.8, 0.8, 0.5, 0.3, 0.3, 0.1];
        foreach (long img in imageIds)
        {
            var neg = catIds.Where(_ => rng.Next(3) == 0).ToArray();
            var notEx = catIds.Where(_ => rng.Next(4) == 0).ToArray();
            b.Image(img, neg, notEx);
            var gtBoxes = new List<(int C, double[] Box)>();
            int ng = rng.Next(6);
            for (int g = 0; g < ng; g++)
            {
                int c = catIds[rng.Next(categories)];
                double[] box = [rng.Next(0, 60), rng.Next(0, 60), rng.Next(0, 4) == 0 ? rng.Next(0, 3) : rng.Next(1, 120), rng.Next(1, 120)];
                double area = rng.Next(3) switch { 0 => box[2] * box[3], 1 => 1024, _ => rng.Next(0, 12000) };
                b.Gt(img, c, box[0], box[1], box[2], box[3], area, ignore: rng.Next(8) == 0 ? true : null);
                gtBoxes.Add((c, box));
            }
            int nd = rng.Next(12);
            for (int d = 0; d < nd; d++)
            {
                int c = rng.Next(10) == 0 ? 99 : catIds[rng.Next(categories)];
                double[] box;
                if (gtBoxes.Count > 0 && rng.Next(3) > 0)
                {
                    var g = gtBoxes[rng.Next(gtBoxes.Count)].Box;
                    box = [g[0] + rng.Next(-5, 6), g[1] + rng.Next(-5, 6), Math.Max(0, g[2] + rng.Next(-10, 11)), Math.Max(0, g[3] + rng.Next(-10, 11))];
                }
                else
                {
                    box = [rng.Next(0, 100), rng.Next(0, 100), rng.Next(0, 100), rng.Next(0, 100)];
                }
                b.Det(img, c, box[0], box[1], box[2], box[3], scores[rng.Next(scores.Length)]);
            }
        }
        return (b.Dataset, b.Results);
    }

    [Fact]
    public void MatchesReferenceOnRandomCases()
    {
        int seed = Environment.TickCount;
        var rng = new Random(seed);
        for (int trial = 0; trial < 150; trial++)
        {
            var (gt, results) = RandomCase(rng);
            int maxDets = rng.Next(3) == 0 ? 4 : 300;
            int perCat = rng.Next(4) == 0 ? 3 : 0;
            var options = new LvisEvalOptions { MaxDetsPerImage = perCat > 0 ? 0 : maxDets, MaxDetsPerCategory = perCat };
            var fast = LvisEvaluator.Evaluate(gt, results, options);
            var reference = ReferenceLvisEval.Run(gt, results, perCat > 0 ? 0 : maxDets, perCat);
            int K = reference.Categories.Length;
            for (int t = 0; t < 10; t++)
            {
                for (int k = 0; k < K; k++)
                {
                    for (int a = 0; a < 4; a++)
                    {
                        Assert.True(reference.Recall[t, k, a] == fast.RecallAt(t, k, a),
                            $"seed {seed} trial {trial}: recall[{t},{k},{a}] reference {reference.Recall[t, k, a]:R} fast {fast.RecallAt(t, k, a):R}");
                        for (int r = 0; r < 101; r++)
                        {
                            Assert.True(reference.Precision[t, r, k, a] == fast.PrecisionAt(t, r, k, a),
                                $"seed {seed} trial {trial}: precision[{t},{r},{k},{a}] reference {reference.Precision[t, r, k, a]:R} fast {fast.PrecisionAt(t, r, k, a):R}");
                        }
                    }
                }
            }
            // Summary metrics: same entries, different summation order, so within a few ulps (1e-12).
            double refAp = ReferenceLvisEval.MeanDefined(Flatten(reference.Precision, 0));
            Assert.True(Math.Abs(refAp - fast.Summary.AP) <= 1e-12 || (refAp == -1 && fast.Summary.AP == -1), $"seed {seed} trial {trial}: AP {refAp} vs {fast.Summary.AP}");
        }
    }

    private static IEnumerable<double> Flatten(double[,,,] p, int area)
    {
        for (int t = 0; t < p.GetLength(0); t++)
            for (int r = 0; r < p.GetLength(1); r++)
                for (int k = 0; k < p.GetLength(2); k++)
                    yield return p[t, r, k, area];
    }
}
