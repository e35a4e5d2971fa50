// Loss(logits, labels, hostLabels): the overload a caller uses when it has read the labels to the host already gives
// the loss, gradient and state updates of the plain call bit for bit, and checks the host copy as it checks labels.
namespace Engine.LongTail.Tests.Losses;

public class HostLabelsTests
{
    public static TheoryData<string> Losses => ["softmax", "eqlv2", "seesaw"];

    private static ClassificationLoss Make(string name, int c) => name switch
    {
        "softmax" => new SoftmaxCrossEntropyLoss(c),
        "eqlv2" => new Eqlv2Loss(c),
        _ => new SeesawLoss(c),
    };

    [Theory]
    [MemberData(nameof(Losses))]
    public void HostLabelsGiveThePlainCallsLossGradientAndState(string name)
    {
        var g = TestUtil.Fresh(out var seed);
        const int c = 9, n = 23;
        using var plain = Make(name, c);
        using var given = Make(name, c);
        var z = TestUtil.Logits(g, n, plain.LogitCount);
        var y = TestUtil.Labels(g, n, c);
        (double[] Loss, double[] Grad, double[] State) Run(ClassificationLoss loss, bool host)
        {
            using var logits = TestUtil.Float(z, n, loss.LogitCount).RequireGrad();
            using var labels = TestUtil.Long(y);
            using var value = host ? loss.Loss(logits, labels, (long[])y.Clone()) : loss.Loss(logits, labels);
            value.Backward();
            using var state = loss.StateDict();
            return (value.ToDoubleArray(), logits.Grad!.ToDoubleArray(), state.OrderBy(kv => kv.Key, StringComparer.Ordinal).SelectMany(kv => kv.Value.ToDoubleArray()).ToArray());
        }

        for (var step = 0; step < 2; step++)
        {
            var a = Run(plain, host: false);
            var b = Run(given, host: true);
            Assert.True(a.Loss.SequenceEqual(b.Loss) && a.Grad.SequenceEqual(b.Grad) && a.State.SequenceEqual(b.State),
                        $"{name} step {step}: the host-label call differs from the plain one (seed {seed})");
        }
    }

    [Fact]
    public void HostLabelsAreCheckedLikeLabels()
    {
        using var loss = new SoftmaxCrossEntropyLoss(4);
        using var logits = Tensor.Zeros([3, 5]);
        using var labels = TestUtil.Long([0, 4, 2]);
        var count = Assert.Throws<ArgumentException>(() => loss.Loss(logits, labels, [0, 4]));
        Assert.Contains("2 host labels were given for labels [3]", count.Message);
        var range = Assert.Throws<ArgumentException>(() => loss.Loss(logits, labels, [0, 5, 2]));
        Assert.Contains("label 5 of RoI 1 is outside [0, 4]", range.Message);
    }
}
