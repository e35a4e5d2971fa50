// The losses and their gradients in double, from the defining formulas: cross-entropy as −log of the
// softmax probability with PyTorch's class weights, ignore index and label smoothing (the smoothed target
// puts 1−ε+ε/C on the true class and ε/C on every class); binary cross-entropy as −[t·log σ(x) + (1−t)·log(1−σ(x))];
// smooth-L1 and L1 piecewise. Gradients are the term-by-term derivatives of these expressions, not the
// simplified closed forms the engine's kernels use.
namespace Engine.Reference;

public static class LossReference
{
    /// <summary>Cross-entropy of logits (n × c, row-major) with the given reduction: one value for Mean/Sum, n for None.</summary>
    public static double[] CrossEntropy(double[] logits, int n, int c, long[] target, double[]? weight, long ignoreIndex,
                                        Reduction reduction, double labelSmoothing)
    {
        var rows = new double[n];
        double totalWeight = 0;
        for (var i = 0; i < n; i++)
        {
            if (target[i] == ignoreIndex) continue;
            var logp = LogProbabilities(logits, i, c);
            var y = (int)target[i];
            var wy = weight?[y] ?? 1;
            double smooth = 0;
            for (var k = 0; k < c; k++) smooth += (weight?[k] ?? 1) * -logp[k];
            rows[i] = (1 - labelSmoothing) * wy * -logp[y] + labelSmoothing / c * smooth;
            totalWeight += wy;
        }
        return reduction switch
        {
            Reduction.None => rows,
            Reduction.Sum => [rows.Sum()],
            _ => [rows.Sum() / totalWeight],
        };
    }

    /// <summary>∂(Σ gradOut·CrossEntropy)/∂logits; gradOut has one value for Mean/Sum, n for None.</summary>
    public static double[] CrossEntropyBackward(double[] logits, int n, int c, long[] target, double[]? weight, long ignoreIndex,
                                                Reduction reduction, double labelSmoothing, double[] gradOut)
    {
        var grad = new double[n * c];
        double totalWeight = 0;
        for (var i = 0; i < n; i++)
            if (target[i] != ignoreIndex) totalWeight += weight?[(int)target[i]] ?? 1;
        for (var i = 0; i < n; i++)
        {
            if (target[i] == ignoreIndex) continue;
            var g = reduction switch
            {
                Reduction.None => gradOut[i],
                Reduction.Sum => gradOut[0],
                _ => gradOut[0] / totalWeight,
            };
            var logp = LogProbabilities(logits, i, c);
            var y = (int)target[i];
            var wy = weight?[y] ?? 1;
            for (var k = 0; k < c; k++)
            {
                // ∂(−log p_j)/∂x_k = p_k − [j = k], for the true class j = y and for every smoothed class j
                var pk = Math.Exp(logp[k]);
                var d = (1 - labelSmoothing) * wy * (pk - (k == y ? 1 : 0));
                for (var j = 0; j < c; j++) d += labelSmoothing / c * (weight?[j] ?? 1) * (pk - (k == j ? 1 : 0));
                grad[i * c + k] = g * d;
            }
        }
        return grad;
    }

    private static double[] LogProbabilities(double[] logits, int row, int c)
    {
        var x = logits.AsSpan(row * c, c);
        var max = double.NegativeInfinity;
        foreach (var v in x) max = Math.Max(max, v);
        double sum = 0;
        foreach (var v in x) sum += Math.Exp(v - max);
        var lse = max + Math.Log(sum);
        var logp = new double[c];
        for (var k = 0; k < c; k++) logp[k] = x[k] - lse;
        return logp;
    }

    /// <summary>Element-wise binary cross-entropy of logits x against targets t, times w (broadcast to x's shape).</summary>
    public static RefTensor BinaryCrossEntropyWithLogits(RefTensor x, RefTensor t, RefTensor? w)
    {
        // −log σ(x) = log(1 + e^−x) and −log(1 − σ(x)) = log(1 + e^x), exact in double for |x| < 700
        var loss = RefTensor.Zip(x, t, (xv, tv) => tv * Math.Log(1 + Math.Exp(-xv)) + (1 - tv) * Math.Log(1 + Math.Exp(xv)));
        return w is null ? loss : RefTensor.Zip(loss, w, (l, wv) => l * wv);
    }

    /// <summary>Gradients (x, t, w) of Σ g·BinaryCrossEntropyWithLogits for an element-wise upstream gradient g.</summary>
    public static (RefTensor Dx, RefTensor Dt, RefTensor? Dw) BinaryCrossEntropyWithLogitsBackward(RefTensor x, RefTensor t, RefTensor? w, RefTensor g)
    {
        var weightFull = w is null ? g.Map(_ => 1) : RefTensor.Zip(g, w, (_, wv) => wv);
        var gw = RefTensor.Zip(g, weightFull, (a, b) => a * b);
        // d/dx [t·log(1+e^−x) + (1−t)·log(1+e^x)] = −t·e^−x/(1+e^−x) + (1−t)·e^x/(1+e^x)
        var dl = RefTensor.Zip(x, t, (xv, tv) => -tv * Math.Exp(-xv) / (1 + Math.Exp(-xv)) + (1 - tv) * Math.Exp(xv) / (1 + Math.Exp(xv)));
        var dx = RefTensor.Zip(gw, dl, (a, b) => a * b);
        var dlt = x.Map(xv => Math.Log(1 + Math.Exp(-xv)) - Math.Log(1 + Math.Exp(xv)));
        var dt = RefTensor.Zip(gw, dlt, (a, b) => a * b);
        RefTensor? dw = null;
        if (w is not null)
        {
            var unweighted = BinaryCrossEntropyWithLogits(x, t, null);
            dw = RefTensor.Zip(g, unweighted, (a, b) => a * b).SumTo(w.Shape);
        }
        return (dx, dt, dw);
    }

    /// <summary>Element-wise smooth-L1 of d = input − target: 0.5·d²/β for |d| &lt; β, else |d| − 0.5·β; L1 for β &lt; 1e-5.</summary>
    public static RefTensor SmoothL1(RefTensor input, RefTensor target, double beta) =>
        RefTensor.Zip(input, target, (a, b) =>
        {
            var d = Math.Abs(a - b);
            if (beta < 1e-5) return d;
            return d < beta ? 0.5 * d * d / beta : d - 0.5 * beta;
        });

    /// <summary>∂SmoothL1/∂input element-wise (the target's is its negative): d/β inside the quadratic zone, sign(d) outside.</summary>
    public static RefTensor SmoothL1Derivative(RefTensor input, RefTensor target, double beta) =>
        RefTensor.Zip(input, target, (a, b) =>
        {
            var d = a - b;
            if (beta < 1e-5 || Math.Abs(d) >= beta) return Math.Sign(d);
            return d / beta;
        });

    /// <summary>Applies a reduction to an element-wise loss: Mean over all elements (NaN when empty), Sum, or None.</summary>
    public static double[] Reduce(RefTensor loss, Reduction reduction) => reduction switch
    {
        Reduction.None => loss.Data,
        Reduction.Sum => [loss.Data.Sum()],
        _ => [loss.Data.Sum() / loss.Data.Length],
    };

    /// <summary>The element-wise upstream gradient of a reduction whose output gradient is gradOut.</summary>
    public static RefTensor ReduceBackward(int[] shape, Reduction reduction, double[] gradOut)
    {
        var count = ShapeUtil.Numel(shape);
        return reduction switch
        {
            Reduction.None => new RefTensor(shape, gradOut),
            Reduction.Sum => new RefTensor(shape, Enumerable.Repeat(gradOut[0], (int)count).ToArray()),
            _ => new RefTensor(shape, Enumerable.Repeat(gradOut[0] / count, (int)count).ToArray()),
        };
    }
}
