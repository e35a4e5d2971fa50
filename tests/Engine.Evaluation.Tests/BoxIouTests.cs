// Box IoU: exact values on the threshold, the crowd rule, and random boxes against the formula.
namespace Engine.Evaluation.Tests;

public class BoxIouTests
{
    [Fact]
    public void HitsThresholdsExactlyWithIntegerBoxes()
    {
        var iou = new double[3];
        BoxIou.Compute([0, 0, 10, 5, 0, 0, 10, 7.5, 20, 20, 5, 5], [0, 0, 10, 10], default, iou);
        Assert.Equal(0.5, iou[0]);
        Assert.Equal(0.75, iou[1]);
        Assert.Equal(0.0, iou[2]);
    }

    [Fact]
    public void CrowdGtUsesTheDetectionAreaAsUnion()
    {
        var iou = new double[2];
        BoxIou.Compute([0, 0, 10, 10], [0, 0, 20, 20, 0, 0, 20, 20], [true, false], iou);
        Assert.Equal(1.0, iou[0]);
        Assert.Equal(0.25, iou[1]);
    }

    [Fact]
    public void MatchesTheFormulaOnRandomBoxesAndWritesEveryEntry()
    {
        int seed = Environment.TickCount;
        var rng = new Random(seed);
        foreach (var (d, g) in new[] { (0, 3), (3, 0), (1, 1), (7, 5), (13, 17) })
        {
            var dts = Enumerable.Range(0, 4 * d).Select(_ => Math.Round(rng.NextDouble() * 50, rng.Next(3))).ToArray();
            var gts = Enumerable.Range(0, 4 * g).Select(_ => Math.Round(rng.NextDouble() * 50, rng.Next(3))).ToArray();
            var iou = Enumerable.Repeat(double.NaN, d * g).ToArray();
            BoxIou.Compute(dts, gts, default, iou);
            for (int i = 0; i < d; i++)
                for (int j = 0; j < g; j++)
                    Assert.True(ReferenceLvisEval.Iou(dts[(4 * i)..(4 * i + 4)], gts[(4 * j)..(4 * j + 4)]) == iou[i * g + j], $"seed {seed}: dt {i} gt {j}");
        }
    }

    [Fact]
    public void RejectsMisshapedInput()
    {
        Assert.Throws<ArgumentException>(() => BoxIou.Compute([0, 0, 1], [0, 0, 1, 1], default, new double[1]));
        Assert.Throws<ArgumentException>(() => BoxIou.Compute([0, 0, 1, 1], [0, 0, 1, 1], default, new double[0]));
    }
}
