// Element-wise ops with broadcasting and their gradients, written next to each other. Binary backward
// closures return gradients in the broadcast (output) shape; the tape sums them down to each input's shape.
namespace Engine;

public sealed partial class Tensor
{
    // ---- binary ----

    private static Tensor BinaryOpCore(BinaryOp op, Tensor a, Tensor b, string name)
    {
        if (a.Device != b.Device)
            throw new ArgumentException($"{name}: operands are on different devices ({a.Device} and {b.Device}); move one with To(device).");
        if (a.DType != b.DType)
            throw new ArgumentException($"{name}: operand dtypes differ ({a.DType.Name()} {ShapeUtil.Format(a.Shape)} vs {b.DType.Name()} {ShapeUtil.Format(b.Shape)}); convert one with To(dtype).");
        var shape = ShapeUtil.Broadcast(a._shape, b._shape, name);
        var outType = op is >= BinaryOp.Eq and <= BinaryOp.Ge ? DType.UInt8 : a.DType;
        if (op is BinaryOp.ReluBackward or BinaryOp.SigmoidBackward or BinaryOp.TanhBackward or BinaryOp.AddRelu && a.DType != DType.Float32)
            throw new ArgumentException($"{name}: needs float32 operands.");
        var y = Empty(shape, outType, a.Device);
        using (var ea = a.BroadcastView(shape, name))
        using (var eb = b.BroadcastView(shape, name))
            a.Backend.Binary(op, ea, eb, y);
        return y;
    }

    private Tensor ScalarLike(double value) => Full([], value, DType, Device);

    public Tensor Add(Tensor other)
    {
        var y = BinaryOpCore(BinaryOp.Add, this, other, "add");
        if (Autograd.Tape.IsNeeded(this, other)) Autograd.Tape.Record(y, "add", [this, other], _ => g => [g, g]);
        return y;
    }

    /// <summary>Relu(this + other) in one pass, with broadcasting: the same values as Add then Relu, bit for bit, without
    /// the sum in between (ResNet's residual add and the ReLU after it). Float32 only. The gradient, g where the
    /// output is positive and 0 elsewhere, goes to both operands.</summary>
    public Tensor AddRelu(Tensor other)
    {
        var y = BinaryOpCore(BinaryOp.AddRelu, this, other, "add_relu");
        if (Autograd.Tape.IsNeeded(this, other))
            Autograd.Tape.Record(y, "add_relu", [this, other], node =>
            {
                // the output is positive exactly where the sum is, so it serves as the ReLU's saved tensor
                var sy = node.Save(y);
                return g =>
                {
                    var gs = g.ReluBackward(sy);
                    return [gs, gs];
                };
            });
        return y;
    }

    public Tensor Sub(Tensor other)
    {
        var y = BinaryOpCore(BinaryOp.Sub, this, other, "sub");
        if (Autograd.Tape.IsNeeded(this, other)) Autograd.Tape.Record(y, "sub", [this, other], _ => g => [g, g.Neg()]);
        return y;
    }

    public Tensor Mul(Tensor other)
    {
        var y = BinaryOpCore(BinaryOp.Mul, this, other, "mul");
        if (Autograd.Tape.IsNeeded(this, other))
            Autograd.Tape.Record(y, "mul", [this, other], node =>
            {
                var (sa, sb) = (node.Save(this), node.Save(other));
                var (ra, rb) = (RequiresGrad, other.RequiresGrad);
                return g => [ra ? g.Mul(sb) : null, rb ? g.Mul(sa) : null];
            });
        return y;
    }

    public Tensor Div(Tensor other)
    {
        var y = BinaryOpCore(BinaryOp.Div, this, other, "div");
        if (Autograd.Tape.IsNeeded(this, other))
            Autograd.Tape.Record(y, "div", [this, other], node =>
            {
                var (sb, sy) = (node.Save(other), node.Save(y));
                var rb = other.RequiresGrad;
                return g =>
                {
                    var ga = g.Div(sb);
                    Tensor? gb = null;
                    if (rb)
                    {
                        using var t = ga.Mul(sy);
                        gb = t.Neg();
                    }
                    return [ga, gb];
                };
            });
        return y;
    }

    /// <summary>this ^ exponent element-wise. Gradient w.r.t. the exponent uses ln(this) (defined for this &gt; 0).</summary>
    public Tensor Pow(Tensor exponent)
    {
        var y = BinaryOpCore(BinaryOp.Pow, this, exponent, "pow");
        if (Autograd.Tape.IsNeeded(this, exponent))
            Autograd.Tape.Record(y, "pow", [this, exponent], node =>
            {
                var (sa, sb, sy) = (node.Save(this), node.Save(exponent), node.Save(y));
                var (ra, rb) = (RequiresGrad, exponent.RequiresGrad);
                return g =>
                {
                    Tensor? ga = null, gb = null;
                    if (ra)
                    {
                        // b * a^(b-1) = b * y / a is undefined at a = 0, so use a^(b-1) directly
                        using var one = sb.ScalarLike(1);
                        using var bm1 = sb.Sub(one);
                        using var p = sa.Pow(bm1);
                        using var t = p.Mul(sb);
                        ga = g.Mul(t);
                    }
                    if (rb)
                    {
                        using var ln = sa.Log();
                        using var t = sy.Mul(ln);
                        gb = g.Mul(t);
                    }
                    return [ga, gb];
                };
            });
        return y;
    }

    /// <summary>Element-wise max; on ties the gradient is split equally (as in PyTorch).</summary>
    public Tensor Maximum(Tensor other) => MinMax(other, BinaryOp.Maximum, "maximum");

    public Tensor Minimum(Tensor other) => MinMax(other, BinaryOp.Minimum, "minimum");

    private Tensor MinMax(Tensor other, BinaryOp op, string name)
    {
        var y = BinaryOpCore(op, this, other, name);
        if (Autograd.Tape.IsNeeded(this, other))
            Autograd.Tape.Record(y, name, [this, other], node =>
            {
                var (sa, sb) = (node.Save(this), node.Save(other));
                return g =>
                {
                    // a's share: 1 where a wins, 0.5 on ties, 0 where b wins; b gets the rest
                    using var winA = op == BinaryOp.Maximum ? sa.Gt(sb) : sa.Lt(sb);
                    using var tie = sa.Eq(sb);
                    using var wa = winA.To(DType.Float32);
                    using var wt = tie.To(DType.Float32);
                    using var half = wt.Mul(0.5);
                    using var fa = wa.Add(half);
                    using var one = g.ScalarLike(1);
                    using var fb = one.Sub(fa);
                    return [g.Mul(fa), g.Mul(fb)];
                };
            });
        return y;
    }

    public Tensor Add(double v) { using var s = ScalarLike(v); return Add(s); }
    public Tensor Sub(double v) { using var s = ScalarLike(v); return Sub(s); }
    public Tensor Mul(double v) { using var s = ScalarLike(v); return Mul(s); }
    public Tensor Div(double v) { using var s = ScalarLike(v); return Div(s); }

    // comparisons (uint8 0/1 results, not differentiable)
    public Tensor Eq(Tensor o) => BinaryOpCore(BinaryOp.Eq, this, o, "eq");
    public Tensor Ne(Tensor o) => BinaryOpCore(BinaryOp.Ne, this, o, "ne");
    public Tensor Lt(Tensor o) => BinaryOpCore(BinaryOp.Lt, this, o, "lt");
    public Tensor Le(Tensor o) => BinaryOpCore(BinaryOp.Le, this, o, "le");
    public Tensor Gt(Tensor o) => BinaryOpCore(BinaryOp.Gt, this, o, "gt");
    public Tensor Ge(Tensor o) => BinaryOpCore(BinaryOp.Ge, this, o, "ge");
    public Tensor Eq(double v) { using var s = ScalarLike(v); return Eq(s); }
    public Tensor Ne(double v) { using var s = ScalarLike(v); return Ne(s); }
    public Tensor Lt(double v) { using var s = ScalarLike(v); return Lt(s); }
    public Tensor Le(double v) { using var s = ScalarLike(v); return Le(s); }
    public Tensor Gt(double v) { using var s = ScalarLike(v); return Gt(s); }
    public Tensor Ge(double v) { using var s = ScalarLike(v); return Ge(s); }

    public static Tensor operator +(Tensor a, Tensor b) => a.Add(b);
    public static Tensor operator -(Tensor a, Tensor b) => a.Sub(b);
    public static Tensor operator *(Tensor a, Tensor b) => a.Mul(b);
    public static Tensor operator /(Tensor a, Tensor b) => a.Div(b);
    public static Tensor operator +(Tensor a, double b) => a.Add(b);
    public static Tensor operator -(Tensor a, double b) => a.Sub(b);
    public static Tensor operator *(Tensor a, double b) => a.Mul(b);
    public static Tensor operator /(Tensor a, double b) => a.Div(b);
    public static Tensor operator *(double a, Tensor b) => b.Mul(a);
    public static Tensor operator -(Tensor a) => a.Neg();

    // ---- unary ----

    private Tensor UnaryCore(UnaryOp op, string name, double alpha = 0, double beta = 0)
    {
        if (DType != DType.Float32)
            throw new ArgumentException($"{name}: needs a float32 tensor, got {DType.Name()} {ShapeUtil.Format(_shape)}; convert with To(DType.Float32).");
        var y = Empty(_shape, DType.Float32, Device);
        Backend.Unary(op, this, y, alpha, beta);
        return y;
    }

    /// <summary>Unary op whose gradient is g * f(saved), where saved is the input or the output.</summary>
    private Tensor UnaryWithGrad(UnaryOp op, string name, bool saveOutput, Func<Tensor, Tensor, Tensor> grad, double alpha = 0, double beta = 0)
    {
        var y = UnaryCore(op, name, alpha, beta);
        if (Autograd.Tape.IsNeeded(this))
            Autograd.Tape.Record(y, name, [this], node =>
            {
                var saved = node.Save(saveOutput ? y : this);
                return g => [grad(g, saved)];
            });
        return y;
    }

    public Tensor Neg()
    {
        if (DType != DType.Float32)
        {
            using var zero = ScalarLike(0);
            return zero.Sub(this);
        }
        var y = UnaryCore(UnaryOp.Neg, "neg");
        if (Autograd.Tape.IsNeeded(this)) Autograd.Tape.Record(y, "neg", [this], _ => g => [g.Neg()]);
        return y;
    }

    public Tensor Exp() => UnaryWithGrad(UnaryOp.Exp, "exp", true, (g, y) => g.Mul(y));
    public Tensor Log() => UnaryWithGrad(UnaryOp.Log, "log", false, (g, x) => g.Div(x));
    public Tensor Sqrt() => UnaryWithGrad(UnaryOp.Sqrt, "sqrt", true, (g, y) => { using var t = y.Mul(2.0); return g.Div(t); });
    public Tensor Abs() => UnaryWithGrad(UnaryOp.Abs, "abs", false, (g, x) => { using var s = x.Sign(); return g.Mul(s); });
    public Tensor Relu() => UnaryWithGrad(UnaryOp.Relu, "relu", false, (g, x) => g.ReluBackward(x));

    /// <summary>This gradient where <paramref name="saved"/> (a ReLU's input or output: the same sign pattern) is
    /// positive, else 0: the ReLU's backward, for layers that fuse a ReLU into their own forward.</summary>
    internal Tensor ReluBackward(Tensor saved) => BinaryOpCore(BinaryOp.ReluBackward, this, saved, "relu_backward");
    public Tensor Sigmoid() => UnaryWithGrad(UnaryOp.Sigmoid, "sigmoid", true, (g, y) => BinaryOpCore(BinaryOp.SigmoidBackward, g, y, "sigmoid_backward"));
    public Tensor Tanh() => UnaryWithGrad(UnaryOp.Tanh, "tanh", true, (g, y) => BinaryOpCore(BinaryOp.TanhBackward, g, y, "tanh_backward"));
    public Tensor Square() => UnaryWithGrad(UnaryOp.Square, "square", false, (g, x) => { using var t = x.Mul(2.0); return g.Mul(t); });
    public Tensor Reciprocal() => UnaryWithGrad(UnaryOp.Reciprocal, "reciprocal", true, (g, y) => { using var t = y.Square(); using var n = t.Neg(); return g.Mul(n); });
    /// <summary>log(1 + exp(x)) without overflow; gradient sigmoid(x).</summary>
    public Tensor Softplus() => UnaryWithGrad(UnaryOp.Softplus, "softplus", false, (g, x) => { using var s = x.Sigmoid(); return g.Mul(s); });

    /// <summary>Sign (-1, 0, 1); gradient zero.</summary>
    public Tensor Sign() => UnaryCore(UnaryOp.Sign, "sign");

    /// <summary>x^p for a scalar exponent p.</summary>
    public Tensor Pow(double p) => UnaryWithGrad(UnaryOp.PowScalar, "pow", false, (g, x) =>
    {
        using var t = x.Pow(p - 1);
        using var s = t.Mul(p);
        return g.Mul(s);
    }, p);

    /// <summary>min(max(x, min), max); the gradient passes where min ≤ x ≤ max.</summary>
    public Tensor Clamp(double min = double.NegativeInfinity, double max = double.PositiveInfinity)
    {
        if (min > max) throw new ArgumentException($"clamp: min {min} is greater than max {max}.");
        return UnaryWithGrad(UnaryOp.Clamp, "clamp", false, (g, x) =>
        {
            using var lo = x.Ge(min);
            using var hi = x.Le(max);
            using var both = lo.Mul(hi);
            using var zero = g.ScalarLike(0);
            return Where(both, g, zero);
        }, min, max);
    }

    // ---- selection ----

    /// <summary>cond ? a : b with broadcasting; cond is uint8. Differentiable in a and b.</summary>
    public static Tensor Where(Tensor cond, Tensor a, Tensor b)
    {
        if (cond.DType != DType.UInt8)
            throw new ArgumentException($"where: condition must be uint8 (a comparison result), got {cond.DType.Name()}.");
        if (a.DType != b.DType)
            throw new ArgumentException($"where: branches have different dtypes ({a.DType.Name()} vs {b.DType.Name()}).");
        if (a.Device != b.Device || cond.Device != a.Device)
            throw new ArgumentException($"where: operands are on different devices ({cond.Device}, {a.Device}, {b.Device}).");
        var shape = ShapeUtil.Broadcast(ShapeUtil.Broadcast(cond._shape, a._shape, "where"), b._shape, "where");
        var y = Empty(shape, a.DType, a.Device);
        using (var ec = cond.BroadcastView(shape, "where"))
        using (var ea = a.BroadcastView(shape, "where"))
        using (var eb = b.BroadcastView(shape, "where"))
            a.Backend.Where(ec, ea, eb, y);
        if (Autograd.Tape.IsNeeded(a, b))
            Autograd.Tape.Record(y, "where", [a, b], node =>
            {
                var sc = node.Save(cond);
                var (ra, rb) = (a.RequiresGrad, b.RequiresGrad);
                return g =>
                {
                    using var zero = g.ScalarLike(0);
                    return [ra ? Where(sc, g, zero) : null, rb ? Where(sc, zero, g) : null];
                };
            });
        return y;
    }

    /// <summary>A copy with value wherever mask (uint8, broadcastable) is nonzero.</summary>
    public Tensor MaskedFill(Tensor mask, double value)
    {
        using var v = ScalarLike(value);
        return Where(mask, v, this);
    }

    // ---- in place (optimizers, gradient accumulation; never recorded) ----

    /// <summary>this += other (broadcast to this shape).</summary>
    public Tensor AddInPlace(Tensor other, double alpha = 1)
    {
        CheckWritable("AddInPlace");
        using var scaled = alpha == 1 ? other.Alias() : other.Mul(alpha);
        using var eb = scaled.BroadcastView(_shape, "AddInPlace");
        if (IsContiguous) Backend.Binary(BinaryOp.Add, this, eb, this);
        else
        {
            using var sum = Empty(_shape, DType, Device);
            Backend.Binary(BinaryOp.Add, this, eb, sum);
            Backend.Copy(sum, this);
        }
        Storage.BumpVersion();
        return this;
    }

    /// <summary>this *= value.</summary>
    public Tensor MulInPlace(double value)
    {
        CheckWritable("MulInPlace");
        using var s = ScalarLike(value);
        using var eb = s.BroadcastView(_shape, "MulInPlace");
        if (IsContiguous) Backend.Binary(BinaryOp.Mul, this, eb, this);
        else
        {
            using var product = Empty(_shape, DType, Device);
            Backend.Binary(BinaryOp.Mul, this, eb, product);
            Backend.Copy(product, this);
        }
        Storage.BumpVersion();
        return this;
    }
}
