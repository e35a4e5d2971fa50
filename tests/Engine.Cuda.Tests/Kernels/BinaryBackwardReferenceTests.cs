// The two-gradient reference of pow, maximum and minimum checked against central finite differences of
// the engine's forward reference (Engine.Reference.Gradcheck) away from ties and a <= 0, before the GPU
// kernels are compared with it in ElementwiseKernelsTests; so the derivative is proven twice.
using Engine.Reference;

namespace Engine.Cuda.Tests.Kernels;

public sealed class BinaryBackwardReferenceTests
{
    [Theory]
    [InlineData(BinaryOp.Pow)]
    [InlineData(BinaryOp.Maximum)]
    [InlineData(BinaryOp.Minimum)]
    public void GradientsMatchFiniteDifferences(BinaryOp op)
    {
        var random = new SeededRandom();
        const int count = 64;
        var a = new double[count];
        var b = new double[count];
        for (var i = 0; i < count; i++)
        {
            if (op == BinaryOp.Pow)
            {
                (a[i], b[i]) = (random.Uniform(0.2, 3), random.Uniform(-3, 3));   // a^b real and smooth for a > 0
            }
            else
            {
                do (a[i], b[i]) = (random.Uniform(-4, 4), random.Uniform(-4, 4)); while (Math.Abs(a[i] - b[i]) < 1e-3);
            }
        }

        double[] Forward(double[][] x) => x[0].Select((v, i) => ElementwiseReference.Binary(op, v, x[1][i])).ToArray();
        double[][] Vjp(double[][] x, double[] dy)
        {
            var gradients = dy.Select((g, i) => BinaryBackwardReference.Gradients(op, g, x[0][i], x[1][i])).ToArray();
            return [gradients.Select(g => g.Da).ToArray(), gradients.Select(g => g.Db).ToArray()];
        }

        // Gradcheck's defaults (h = 1e-6, 1e-6 absolute + 1e-5 relative) hold here: the truncation error
        // h²·|f'''|/6 stays below 1e-11 for |f'''| <= 40 (3^b·ln³3 on these ranges), and the rounding error
        // of the summed u·f, about 2e-16·|Σ u·f| / 2h, below 2e-7 since |Σ u·f| <= 64·27.
        var result = Gradcheck.Check(Forward, Vjp, [a, b], new Generator((ulong)random.Seed));
        Assert.True(result.Passed, $"{op}: {result.Detail} (seed {random.Seed})");
    }

    [Theory]
    [InlineData(BinaryOp.Maximum)]
    [InlineData(BinaryOp.Minimum)]
    public void TieGradientIsTheMeanOfTheOneSidedOnes(BinaryOp op)
    {
        var random = new SeededRandom();
        var value = random.Uniform(-3, 3);
        var dy = random.Uniform(-2, 2);
        var tie = BinaryBackwardReference.Gradients(op, dy, value, value);
        var above = BinaryBackwardReference.Gradients(op, dy, value + 1e-3, value);
        var below = BinaryBackwardReference.Gradients(op, dy, value - 1e-3, value);
        Assert.Equal((above.Da + below.Da) / 2, tie.Da, 12);
        Assert.Equal((above.Db + below.Db) / 2, tie.Db, 12);
    }
}
