// The CPU long-tail backend refuses a label outside each member's range before writing anything, with the CUDA
// backend's words and ranges: [0, K) for the softmax CE, [0, C] for FCBL and Seesaw, and only negative labels for the
// sigmoid BCE and FCBL's confusion update (a label ≥ K has no positive column there; one ≥ C is skipped).
namespace Engine.LongTail.Tests.Backends;

public class LabelRangeTests
{
    private const int Rows = 5;

    public static TheoryData<string, long, string> Cases => new()
    {
        { "SoftmaxCrossEntropy", 4, "SoftmaxCrossEntropy: label 4 at row 3 is outside 0..3" },
        { "SoftmaxCrossEntropy", -1, "SoftmaxCrossEntropy: label -1 at row 3 is outside 0..3" },
        { "Fcbl", 4, "Fcbl: label 4 at row 3 is outside 0..3" },
        { "Seesaw", 3, "Seesaw: label 3 at row 3 is outside 0..2" },
        { "Seesaw", -2, "Seesaw: label -2 at row 3 is outside 0..2" },
        { "WeightedSigmoidBce", -1, "WeightedSigmoidBce: label -1 at row 3 is negative" },
        { "AccumulateConfusion", -3, "AccumulateConfusion: label -3 at row 3 is negative" },
    };

    /// <summary>Logits (5, 4): K = 4 columns (Seesaw: C = 2 classes and the two objectness logits); row 3 holds the bad
    /// label, the others valid ones.</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void ALabelOutOfRangeIsNamedWithItsRowAndRange(string op, long bad, string message)
    {
        var g = TestUtil.Fresh(out _);
        const int k = 4;
        var labels = new long[Rows];
        for (var i = 0; i < Rows; i++) labels[i] = i == 3 ? bad : g.NextInt64(2);
        using var z = Tensor.FromDoubles(TestUtil.Uniform(g, Rows * k, -2, 2), [Rows, k]);
        using var y = Tensor.From(labels, Rows);
        using var rowLoss = Tensor.Full([Rows], double.NaN);
        using var grad = Tensor.Full([Rows, k], double.NaN);
        using var ones = Tensor.Full([k], 1.0);
        var cpu = LongTailBackends.For(Device.Cpu);
        var e = Assert.Throws<ArgumentException>(() =>
        {
            switch (op)
            {
                case "SoftmaxCrossEntropy": cpu.SoftmaxCrossEntropy(z, y, ones, 0.2, rowLoss, grad); break;
                case "Fcbl":
                    using (var confusion = Tensor.Zeros([k - 1, k - 1]))
                    using (var counts = Tensor.Zeros([k - 1]))
                        cpu.Fcbl(z, y, confusion, counts, 0.5, 0.7, reweight: true, 0.2, rowLoss, grad);
                    break;
                case "Seesaw":
                    using (var counts = Tensor.From(new long[] { 3, 5 }, 2))
                        cpu.Seesaw(z, y, counts, 0.8, 2.0, 1e-2, 0.2, rowLoss, grad);
                    break;
                case "WeightedSigmoidBce": cpu.WeightedSigmoidBce(z, y, k - 1, ones, ones, ones, 0.2, rowLoss, grad, null, null); break;
                default:
                    using (var confusion = Tensor.Zeros([k - 1, k - 1]))
                    using (var counts = Tensor.Zeros([k - 1]))
                        cpu.AccumulateConfusion(z, y, confusion, counts);
                    break;
            }
        });
        Assert.StartsWith(message, e.Message);
        // refused before any row was written
        Assert.All(rowLoss.ToFloatArray(), v => Assert.True(float.IsNaN(v)));
        Assert.All(grad.ToFloatArray(), v => Assert.True(float.IsNaN(v)));
    }

    /// <summary>The ranges' edges are accepted: the background label C (and K for the BCE, which has no positive column
    /// there) pass.</summary>
    [Fact]
    public void TheEdgesOfEachRangeAreAccepted()
    {
        var g = TestUtil.Fresh(out _);
        const int k = 4;
        using var z = Tensor.FromDoubles(TestUtil.Uniform(g, Rows * k, -2, 2), [Rows, k]);
        using var rowLoss = Tensor.Full([Rows], double.NaN);
        using var grad = Tensor.Full([Rows, k], double.NaN);
        using var ones = Tensor.Full([k], 1.0);
        var cpu = LongTailBackends.For(Device.Cpu);
        using (var y = Tensor.From(new long[] { 0, 3, 1, 3, 2 }, Rows))
            cpu.SoftmaxCrossEntropy(z, y, ones, 0.2, rowLoss, grad);
        using (var y = Tensor.From(new long[] { 0, 3, 1, 3, 2 }, Rows))
        using (var confusion = Tensor.Zeros([k - 1, k - 1]))
        using (var counts = Tensor.Zeros([k - 1]))
        {
            cpu.Fcbl(z, y, confusion, counts, 0.5, 0.7, reweight: true, 0.2, rowLoss, grad);
            cpu.AccumulateConfusion(z, y, confusion, counts);
        }
        using (var y = Tensor.From(new long[] { 0, 2, 1, 2, 0 }, Rows))
        using (var counts = Tensor.From(new long[] { 3, 5 }, 2))
            cpu.Seesaw(z, y, counts, 0.8, 2.0, 1e-2, 0.2, rowLoss, grad);
        using (var y = Tensor.From(new long[] { 0, 3, 4, 9, 2 }, Rows))
            cpu.WeightedSigmoidBce(z, y, k - 1, ones, ones, ones, 0.2, rowLoss, grad, null, null);
        Assert.All(rowLoss.ToFloatArray(), v => Assert.True(float.IsFinite(v)));
    }
}
