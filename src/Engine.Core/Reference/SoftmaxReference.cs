// Softmax and log-softmax along one dim, and their vector-Jacobian products, in double from the
// definitions: softmax_i = exp(x_i) / Σ_j exp(x_j) (evaluated with the row max subtracted so that large
// logits stay finite), and the backward as an explicit Jacobian ∂y_j/∂x_i contracted with the upstream
// gradient, deliberately not the closed form the fast kernels use.
namespace Engine.Reference;

public static class SoftmaxReference
{
    public static RefTensor Softmax(RefTensor x, int dim) => Rows(x, dim, (xs, ys) =>
    {
        var max = xs.Max();
        var sum = xs.Sum(v => Math.Exp(v - max));
        for (var i = 0; i < xs.Length; i++) ys[i] = Math.Exp(xs[i] - max) / sum;
    });

    public static RefTensor LogSoftmax(RefTensor x, int dim) => Rows(x, dim, (xs, ys) =>
    {
        var max = xs.Max();
        var logSum = Math.Log(xs.Sum(v => Math.Exp(v - max)));
        for (var i = 0; i < xs.Length; i++) ys[i] = xs[i] - max - logSum;
    });

    /// <summary>Gradient w.r.t. x of Σ g·softmax(x): Σ_j g_j ∂y_j/∂x_i with ∂y_j/∂x_i = y_j (δ_ij − y_i).</summary>
    public static RefTensor SoftmaxBackward(RefTensor x, RefTensor g, int dim)
    {
        var y = Softmax(x, dim);
        return Rows2(y, g, dim, (ys, gs, gx) =>
        {
            for (var i = 0; i < ys.Length; i++)
            {
                double s = 0;
                for (var j = 0; j < ys.Length; j++) s += gs[j] * ys[j] * ((i == j ? 1 : 0) - ys[i]);
                gx[i] = s;
            }
        });
    }

    /// <summary>Gradient w.r.t. x of Σ g·log_softmax(x): Σ_j g_j ∂y_j/∂x_i with ∂y_j/∂x_i = δ_ij − softmax_i.</summary>
    public static RefTensor LogSoftmaxBackward(RefTensor x, RefTensor g, int dim)
    {
        var p = Softmax(x, dim);
        return Rows2(p, g, dim, (ps, gs, gx) =>
        {
            for (var i = 0; i < ps.Length; i++)
            {
                double s = 0;
                for (var j = 0; j < ps.Length; j++) s += gs[j] * ((i == j ? 1 : 0) - ps[i]);
                gx[i] = s;
            }
        });
    }

    /// <summary>Applies f to every 1-D slice of x along dim (gathered into a row), writing a tensor of x's shape.</summary>
    private static RefTensor Rows(RefTensor x, int dim, Action<double[], double[]> f) =>
        Rows2(x, x, dim, (xs, _, ys) => f(xs, ys));

    private static RefTensor Rows2(RefTensor a, RefTensor b, int dim, Action<double[], double[], double[]> f)
    {
        if (!a.Shape.SequenceEqual(b.Shape)) throw new ArgumentException("softmax reference: shapes differ.");
        var shape = a.Shape.Length == 0 ? [1] : a.Shape;
        var d = ShapeUtil.NormalizeDim(dim, shape.Length, "softmax reference");
        long outer = 1, inner = 1;
        for (var i = 0; i < d; i++) outer *= shape[i];
        for (var i = d + 1; i < shape.Length; i++) inner *= shape[i];
        var n = shape[d];
        var result = new double[a.Data.Length];
        if (n == 0) return new RefTensor(a.Shape, result);
        var (ra, rb, ry) = (new double[n], new double[n], new double[n]);
        for (long o = 0; o < outer; o++)
            for (long j = 0; j < inner; j++)
            {
                for (var k = 0; k < n; k++)
                {
                    ra[k] = a.Data[(o * n + k) * inner + j];
                    rb[k] = b.Data[(o * n + k) * inner + j];
                }
                f(ra, rb, ry);
                for (var k = 0; k < n; k++) result[(o * n + k) * inner + j] = ry[k];
            }
        return new RefTensor(a.Shape, result);
    }
}
