// The device-specific half of every op. Ops (Ops/*.cs) validate arguments, allocate outputs and record
// autograd; a backend only computes. The interface is partial: each op family declares its primitives
// in its own file next to the CPU implementation, and the CUDA backend implements the same members.
// Conventions for all members: outputs are contiguous tensors allocated by the caller on this device;
// inputs may be arbitrary strided views (including stride-0 broadcast views) unless a member says otherwise.
namespace Engine;

public enum UnaryOp
{
    Neg, Exp, Log, Sqrt, Abs, Relu, Sigmoid, Tanh,
    /// <summary>x^alpha.</summary>
    PowScalar,
    /// <summary>min(max(x, alpha), beta).</summary>
    Clamp,
    Sign,
    Square,
    Reciprocal,
    /// <summary>log(1 + exp(x)), computed without overflow.</summary>
    Softplus,
}

public enum BinaryOp
{
    Add, Sub, Mul, Div, Pow, Maximum, Minimum,
    // comparisons: output uint8 0/1
    Eq, Ne, Lt, Le, Gt, Ge,
    /// <summary>a * (b > 0): relu backward with a = gradient, b = relu input.</summary>
    ReluBackward,
    /// <summary>a * b * (1 - b): sigmoid backward with b = sigmoid output.</summary>
    SigmoidBackward,
    /// <summary>a * (1 - b^2): tanh backward with b = tanh output.</summary>
    TanhBackward,
    /// <summary>max(a + b, 0), NaN kept: a residual sum and the ReLU after it in one pass (float32 only).</summary>
    AddRelu,
}

public enum ReduceOp
{
    Sum, Max, Min,
}

public partial interface IBackend
{
    Device Device { get; }

    Storage Allocate(long byteLength);

    /// <summary>dst[...] = value (any dtype, strided dst).</summary>
    void Fill(Tensor dst, double value);

    /// <summary>dst[...] = (dst.dtype) src[...]; same shape, both strided, dtype conversion allowed.</summary>
    void Copy(Tensor src, Tensor dst);

    /// <summary>Copies a contiguous tensor of this device to host memory, or host memory into it.</summary>
    void CopyToHost(Tensor src, IntPtr host);
    void CopyFromHost(IntPtr host, Tensor dst);

    /// <summary>y = op(x) element-wise (float32); alpha/beta are the op's scalar parameters.</summary>
    void Unary(UnaryOp op, Tensor x, Tensor y, double alpha, double beta);

    /// <summary>y = op(a, b) element-wise; a and b are already expanded to y's shape (stride 0 on broadcast dims).</summary>
    void Binary(BinaryOp op, Tensor a, Tensor b, Tensor y);

    /// <summary>y = cond ? a : b, all three expanded to y's shape; cond is uint8.</summary>
    void Where(Tensor cond, Tensor a, Tensor b, Tensor y);

    /// <summary>Reduces contiguous x viewed as (outer, n, inner) over n into values (outer, inner); for Max/Min
    /// also writes the int64 index of the first extreme element into indices when it is not null.</summary>
    void Reduce(ReduceOp op, Tensor x, long outer, long n, long inner, Tensor values, Tensor? indices);
}
