// Launchers for kernels/elementwise.cu, keyed by the engine's op enums (Engine.UnaryOp / BinaryOp, the
// ops of IBackend): unary and broadcasting binary float32 maps, the relu/sigmoid/tanh backward ops that
// BinaryOp names, and the two-gradient backward kernels of pow, maximum and minimum. Each call checks
// shapes and devices, builds the strided index map (broadcast, merge dimensions), picks a grid-stride
// launch and queues the kernel; nothing synchronizes, the caller reads results back (or synchronizes a
// stream) when needed. Outputs are dense row-major buffers at the output shape, never an input buffer.
using Engine.Cuda.Compilation;

namespace Engine.Cuda.Kernels;

public sealed class ElementwiseKernels : IDisposable
{
    public const string SourceFile = "elementwise.cu";

    private static readonly Dictionary<UnaryOp, string> UnaryKernels = new()
    {
        [UnaryOp.Neg] = "neg_forward_kernel",
        [UnaryOp.Exp] = "exp_forward_kernel",
        [UnaryOp.Log] = "log_forward_kernel",
        [UnaryOp.Sqrt] = "sqrt_forward_kernel",
        [UnaryOp.Abs] = "abs_forward_kernel",
        [UnaryOp.Relu] = "relu_forward_kernel",
        [UnaryOp.Sigmoid] = "sigmoid_forward_kernel",
        [UnaryOp.Tanh] = "tanh_forward_kernel",
        [UnaryOp.Sign] = "sign_forward_kernel",
    };

    private static readonly Dictionary<BinaryOp, string> BinaryKernels = new()
    {
        [BinaryOp.Add] = "add_forward_kernel",
        [BinaryOp.Sub] = "sub_forward_kernel",
        [BinaryOp.Mul] = "mul_forward_kernel",
        [BinaryOp.Div] = "div_forward_kernel",
        [BinaryOp.Pow] = "pow_forward_kernel",
        [BinaryOp.Maximum] = "maximum_forward_kernel",
        [BinaryOp.Minimum] = "minimum_forward_kernel",
        // a = ∂L/∂y, b = the saved tensor (relu: its input or output; sigmoid, tanh: the output).
        [BinaryOp.ReluBackward] = "relu_backward_kernel",
        [BinaryOp.SigmoidBackward] = "sigmoid_backward_kernel",
        [BinaryOp.TanhBackward] = "tanh_backward_kernel",
        [BinaryOp.AddRelu] = "add_relu_forward_kernel",
    };

    private static readonly Dictionary<BinaryOp, string> BinaryBackwardKernels = new()
    {
        [BinaryOp.Pow] = "pow_backward_kernel",
        [BinaryOp.Maximum] = "maximum_backward_kernel",
        [BinaryOp.Minimum] = "minimum_backward_kernel",
    };

    private readonly CudaModule _module;
    private readonly Dictionary<string, CudaKernel> _kernels;

    /// <summary>Compiles (or reads from the cache) elementwise.cu for the device and loads every kernel.</summary>
    public ElementwiseKernels(CudaDevice device, KernelCompiler compiler)
    {
        Device = device;
        _module = device.LoadModule(compiler.Compile(SourceFile, device.Architecture));
        try
        {
            _kernels = KernelNames.ToDictionary(name => name, _module.GetKernel);
        }
        catch
        {
            _module.Dispose();
            throw;
        }
    }

    public CudaDevice Device { get; }

    public static IReadOnlyCollection<UnaryOp> UnaryOps => UnaryKernels.Keys;
    public static IReadOnlyCollection<BinaryOp> BinaryOps => BinaryKernels.Keys;
    public static IReadOnlyCollection<BinaryOp> BinaryBackwardOps => BinaryBackwardKernels.Keys;

    /// <summary>Every kernel the launcher expects elementwise.cu to define.</summary>
    public static IReadOnlyList<string> KernelNames { get; } =
        UnaryKernels.Values.Concat(BinaryKernels.Values).Concat(BinaryBackwardKernels.Values).ToArray();

    /// <summary>y = op(x); y dense with x's shape.</summary>
    public void Unary(UnaryOp op, DeviceView x, DeviceBuffer<float> y, CudaStream? stream = null)
    {
        var name = Lookup(UnaryKernels, op, nameof(Unary));
        var map = ElementwiseLayout.Build(name, x.Shape, x.Strides);
        RequireOutput(name, y, map.Count, x);
        Launch(name, ref map, stream, y.Pointer, x.Address);
    }

    /// <summary>output = op(a, b) over the broadcast shape of a and b; output dense with that shape.</summary>
    public void Binary(BinaryOp op, DeviceView a, DeviceView b, DeviceBuffer<float> output, CudaStream? stream = null)
    {
        var name = Lookup(BinaryKernels, op, nameof(Binary));
        var shape = ElementwiseLayout.BroadcastShape(name, a.Shape, b.Shape);
        var map = ElementwiseLayout.Build(name, shape,
            ElementwiseLayout.BroadcastStrides(name, a.Shape, a.Strides, shape),
            ElementwiseLayout.BroadcastStrides(name, b.Shape, b.Strides, shape));
        RequireOutput(name, output, map.Count, a, b);
        Launch(name, ref map, stream, output.Pointer, a.Address, b.Address);
    }

    /// <summary>Both gradients of pow, maximum or minimum in one pass: gradA and gradB are dense at the
    /// broadcast shape of a and b (which gradOutput must have); summing them over an operand's broadcast
    /// dimensions is the caller's.</summary>
    public void BinaryBackward(BinaryOp op, DeviceView gradOutput, DeviceView a, DeviceView b,
                               DeviceBuffer<float> gradA, DeviceBuffer<float> gradB, CudaStream? stream = null)
    {
        var name = Lookup(BinaryBackwardKernels, op, nameof(BinaryBackward));
        var shape = ElementwiseLayout.BroadcastShape(name, a.Shape, b.Shape);
        if (!gradOutput.Shape.AsSpan().SequenceEqual(shape))
            throw new ArgumentException(
                $"{name}: gradOutput has shape {ElementwiseLayout.Format(gradOutput.Shape)} but the broadcast shape of a " +
                $"{ElementwiseLayout.Format(a.Shape)} and b {ElementwiseLayout.Format(b.Shape)} is {ElementwiseLayout.Format(shape)}.");
        if (ReferenceEquals(gradA, gradB))
            throw new ArgumentException($"{name}: gradA and gradB are the same buffer; pass two buffers.");
        var map = ElementwiseLayout.Build(name, shape, gradOutput.Strides,
            ElementwiseLayout.BroadcastStrides(name, a.Shape, a.Strides, shape),
            ElementwiseLayout.BroadcastStrides(name, b.Shape, b.Strides, shape));
        RequireOutput(name, gradA, map.Count, gradOutput, a, b);
        RequireOutput(name, gradB, map.Count, gradOutput, a, b);
        Launch(name, ref map, stream, gradA.Pointer, gradB.Pointer, gradOutput.Address, a.Address, b.Address);
    }

    public void Dispose() => _module.Dispose();

    private static string Lookup<TOp>(Dictionary<TOp, string> kernels, TOp op, string call) where TOp : struct, Enum =>
        kernels.TryGetValue(op, out var name)
            ? name
            : throw new NotSupportedException(
                $"ElementwiseKernels.{call}: {typeof(TOp).Name}.{op} has no CUDA kernel; kernels/{SourceFile} implements " +
                $"{string.Join(", ", kernels.Keys)} for this call.");

    private unsafe void Launch(string name, ref StridedIndexMap map, CudaStream? stream, params ReadOnlySpan<ulong> pointers)
    {
        if (map.Count == 0) return;
        var kernel = _kernels[name];
        var config = LaunchConfig.GridStride(Device, map.Count);
        Span<ulong> values = stackalloc ulong[pointers.Length];
        pointers.CopyTo(values);
        Span<nint> arguments = stackalloc nint[pointers.Length + 1];
        fixed (ulong* p = values)
        fixed (StridedIndexMap* m = &map)
        {
            for (var i = 0; i < values.Length; i++) arguments[i] = (nint)(p + i);
            arguments[^1] = (nint)m;
            kernel.Launch(config, stream, arguments);
        }
    }

    private void RequireOutput(string name, DeviceBuffer<float> output, long count, params ReadOnlySpan<DeviceView> inputs)
    {
        if (output.Length < count)
            throw new ArgumentException($"{name}: the output buffer holds {output.Length} elements but the result has {count}; allocate at least {count}.");
        if (!output.Device.SharesContextWith(Device))
            throw new ArgumentException($"{name}: the output buffer is on another device than {Device}.");
        foreach (var input in inputs)
        {
            if (ReferenceEquals(input.Buffer, output))
                throw new ArgumentException($"{name}: an input reads from the output buffer; in-place element-wise launches are not supported, use a separate output.");
            if (!input.Buffer.Device.SharesContextWith(Device))
                throw new ArgumentException($"{name}: an input buffer is on another device than {Device}.");
        }
    }
}
