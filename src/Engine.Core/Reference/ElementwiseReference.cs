// Element-wise ops and their derivatives, written from the definitions in double. The engine's float32
// kernels on every backend are compared against these.
namespace Engine.Reference;

public static class ElementwiseReference
{
    public static double Unary(UnaryOp op, double x, double alpha = 0, double beta = 0) => op switch
    {
        UnaryOp.Neg => -x,
        UnaryOp.Exp => Math.Exp(x),
        UnaryOp.Log => Math.Log(x),
        UnaryOp.Sqrt => Math.Sqrt(x),
        UnaryOp.Abs => Math.Abs(x),
        UnaryOp.Relu => x > 0 || double.IsNaN(x) ? x : 0,
        UnaryOp.Sigmoid => 1 / (1 + Math.Exp(-x)),
        UnaryOp.Tanh => Math.Tanh(x),
        UnaryOp.PowScalar => Math.Pow(x, alpha),
        UnaryOp.Clamp => Math.Min(Math.Max(x, alpha), beta),
        UnaryOp.Sign => Sign(x),
        UnaryOp.Square => x * x,
        UnaryOp.Reciprocal => 1 / x,
        UnaryOp.Softplus => Math.Log(1 + Math.Exp(x)),
        _ => throw new ArgumentOutOfRangeException(nameof(op)),
    };

    /// <summary>d op(x) / dx (subgradient 0 at the kinks of relu/abs/clamp boundaries as the engine defines them).</summary>
    public static double UnaryDerivative(UnaryOp op, double x, double alpha = 0, double beta = 0) => op switch
    {
        UnaryOp.Neg => -1,
        UnaryOp.Exp => Math.Exp(x),
        UnaryOp.Log => 1 / x,
        UnaryOp.Sqrt => 0.5 / Math.Sqrt(x),
        UnaryOp.Abs => Sign(x),
        UnaryOp.Relu => x > 0 ? 1 : 0,
        UnaryOp.Sigmoid => Math.Exp(-x) / ((1 + Math.Exp(-x)) * (1 + Math.Exp(-x))),
        UnaryOp.Tanh => 1 - Math.Tanh(x) * Math.Tanh(x),
        UnaryOp.PowScalar => alpha * Math.Pow(x, alpha - 1),
        UnaryOp.Clamp => x >= alpha && x <= beta ? 1 : 0,
        UnaryOp.Sign => 0,
        UnaryOp.Square => 2 * x,
        UnaryOp.Reciprocal => -1 / (x * x),
        UnaryOp.Softplus => 1 / (1 + Math.Exp(-x)),
        _ => throw new ArgumentOutOfRangeException(nameof(op)),
    };

    /// <summary>-1, 0 or 1; NaN stays NaN (Math.Sign would throw).</summary>
    public static double Sign(double x) => x > 0 ? 1 : x < 0 ? -1 : x;

    public static double Binary(BinaryOp op, double a, double b) => op switch
    {
        BinaryOp.Add => a + b,
        BinaryOp.Sub => a - b,
        BinaryOp.Mul => a * b,
        BinaryOp.Div => a / b,
        BinaryOp.Pow => Math.Pow(a, b),
        BinaryOp.Maximum => Math.Max(a, b),
        BinaryOp.Minimum => Math.Min(a, b),
        BinaryOp.Eq => a == b ? 1 : 0,
        BinaryOp.Ne => a != b ? 1 : 0,
        BinaryOp.Lt => a < b ? 1 : 0,
        BinaryOp.Le => a <= b ? 1 : 0,
        BinaryOp.Gt => a > b ? 1 : 0,
        BinaryOp.Ge => a >= b ? 1 : 0,
        BinaryOp.ReluBackward => b > 0 ? a : 0,
        BinaryOp.SigmoidBackward => a * b * (1 - b),
        BinaryOp.TanhBackward => a * (1 - b * b),
        BinaryOp.AddRelu => Math.Max(a + b, 0),
        _ => throw new ArgumentOutOfRangeException(nameof(op)),
    };

    /// <summary>(∂/∂a, ∂/∂b) of the differentiable binary ops; ties of max/min split the gradient equally.</summary>
    public static (double Da, double Db) BinaryDerivative(BinaryOp op, double a, double b) => op switch
    {
        BinaryOp.Add => (1, 1),
        BinaryOp.Sub => (1, -1),
        BinaryOp.Mul => (b, a),
        BinaryOp.Div => (1 / b, -a / (b * b)),
        BinaryOp.Pow => (b * Math.Pow(a, b - 1), Math.Pow(a, b) * Math.Log(a)),
        BinaryOp.Maximum => a > b ? (1, 0) : a < b ? (0, 1) : (0.5, 0.5),
        BinaryOp.Minimum => a < b ? (1, 0) : a > b ? (0, 1) : (0.5, 0.5),
        BinaryOp.AddRelu => a + b > 0 ? (1, 1) : (0, 0),
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, "not differentiable"),
    };
}
