// The CUDA implementation of IBackend: every primitive of the CPU backend, queued on one explicit stream
// per device (CudaStream, created by the backend) so that a training step is a flat sequence of launches
// the host never waits for. Memory comes from the caching stream-ordered allocator (CudaMemoryPool),
// uploads and downloads go through pinned staging (PinnedStaging), kernels are the backend's own files
// (tensor.cu, reduce.cu, softmax.cu, indexing.cu, sort.cu, pooling.cu, normalization.cu, plus
// elementwise.cu's float maps), matmul is cuBLAS and convolution cuDNN. Op families live in
// CudaBackend.*.cs, mirroring CpuBackend.
//
// Host synchronizations, each marked where it happens:
//   CopyToHost                 the caller reads the data on return (Tensor.ToArray, Item)
//   CountNonzero               the number of nonzero elements sizes the output of nonzero (a data-dependent shape)
//   cuDNN algorithm search     once per convolution shape, inside cudnnFind* (CudnnConvolution)
//   Allocate, out of memory    waits for queued frees before it retries (CudaMemoryPool)
//   Synchronize                explicit, for timing and tests
// After each of them the kernel error record is checked (DeviceErrorLog), so bad indices or targets found
// on the device surface as the CPU backend's exceptions.
using Engine.Cuda.Compilation;
using Engine.Cuda.Interop;
using Engine.Cuda.Kernels;
using Engine.Cuda.Memory;

namespace Engine.Cuda.Backend;

public sealed unsafe partial class CudaBackend : IBackend, IDisposable
{
    private const int BlockThreads = 256;

    private readonly KernelCompiler _compiler;
    private readonly Dictionary<string, KernelSet> _sets = new(StringComparer.Ordinal);
    private readonly Lock _setsGate = new();
    private readonly DeviceErrorLog _errors;
    private readonly PinnedStaging _staging;

    public CudaBackend(CudaDevice device, CudaBackendOptions? options = null)
    {
        Options = options ?? CudaBackendOptions.Default;
        Options.Validate();
        CudaDevice = device;
        Device = Engine.Device.Cuda(device.Ordinal);
        _compiler = new KernelCompiler(cacheDirectory: Options.KernelCacheDirectory);
        Stream = device.CreateStream();
        Memory = new CudaMemoryPool(device, Stream, Options.PoolReleaseThreshold);
        _staging = new PinnedStaging(device, Stream);
        _errors = new DeviceErrorLog(device);
    }

    public Device Device { get; }
    public CudaDevice CudaDevice { get; }
    public CudaBackendOptions Options { get; }

    /// <summary>The stream every primitive of this backend is queued on.</summary>
    public CudaStream Stream { get; }

    /// <summary>The compiler (and CUBIN cache) this backend's kernels come from, shared with the kernel families
    /// that launch on its stream.</summary>
    internal KernelCompiler Compiler => _compiler;

    /// <summary>The error record kernels on this backend's stream report bad input into.</summary>
    internal DeviceErrorLog Errors => _errors;

    /// <summary>The caching allocator; its Stats give allocated, reserved and peak bytes.</summary>
    public CudaMemoryPool Memory { get; }

    /// <summary>Waits for everything queued on the backend's stream and raises any error a kernel recorded.
    /// A host synchronization: for timing, tests and the end of a phase.</summary>
    public void Synchronize()
    {
        Stream.Synchronize();
        _errors.ThrowIfSet();
    }

    public Storage Allocate(long byteLength)
    {
        var storage = new CudaStorage(Memory, byteLength, Device);
        if (EngineOptions.PoisonAllocations && byteLength > 0)
        {
            CudaDevice.MakeCurrent();
            // 0xFF bytes: NaN in float32, -1 in integers, as the CPU backend poisons
            CudaDriver.Check(CudaDriver.cuMemsetD8Async((ulong)storage.Pointer, 0xFF, (nuint)byteLength, Stream.Handle),
                             nameof(CudaDriver.cuMemsetD8Async), $"{byteLength} bytes");
        }
        return storage;
    }

    // ---- kernels ----

    private KernelSet Module(string file)
    {
        lock (_setsGate)
        {
            if (!_sets.TryGetValue(file, out var set)) _sets[file] = set = new KernelSet(CudaDevice, _compiler, file);
            return set;
        }
    }

    private KernelSet TensorKernels => Module("tensor.cu");

    /// <summary>Enough blocks of <paramref name="threads"/> to fill the device once, at most one per item
    /// (grid-stride kernels loop over the rest).</summary>
    private LaunchConfig Resident(long items, int threads = BlockThreads, uint shared = 0)
    {
        var resident = (long)CudaDevice.MultiprocessorCount * Math.Max(1, CudaDevice.MaxThreadsPerMultiprocessor / threads);
        var blocks = Math.Clamp(Math.Min(items, resident), 1, CudaDevice.MaxGridDimX);
        return new LaunchConfig(new Dim3((uint)blocks), new Dim3((uint)threads), shared);
    }

    private static ulong Ptr(Tensor t) => (ulong)(long)t.DataPointer;

    private static ulong PtrOrZero(Tensor? t) => t is null ? 0 : Ptr(t);

    private static int Code(DType t) => t switch
    {
        DType.Float32 => 0,
        DType.Int32 => 1,
        DType.Int64 => 2,
        DType.UInt8 => 3,
        _ => throw Unsupported("tensor kernel", t),
    };

    private static long[] Longs(ReadOnlySpan<int> shape)
    {
        var r = new long[shape.Length];
        for (var i = 0; i < r.Length; i++) r[i] = shape[i];
        return r;
    }

    private void Require(string op, string name, Tensor t)
    {
        if (t.Device != Device)
            throw new ArgumentException($"CudaBackend.{op}: {name} is on {t.Device}, not {Device}; move it with To({Device}) first.");
    }

    internal static NotSupportedException Unsupported(string op, DType t) =>
        new($"{op}: dtype {t.Name()} is not supported on the CUDA backend; convert with To(DType.Float32).");

    private static NotSupportedException TooManyDims(string op, int rank) =>
        new($"{op}: rank {rank} is above the {StridedIndexMap.MaxDims} dimensions the CUDA kernels address; reshape to fewer dimensions first.");

    private void LaunchTensor(string kernel, TensorArgs args)
    {
        if (args.Map.Count == 0) return;
        TensorKernels.Launch(kernel, Resident((args.Map.Count + BlockThreads - 1) / BlockThreads), Stream, args);
    }

    // ---- fill, copy, transfers ----

    public void Fill(Tensor dst, double value)
    {
        Require("fill", "dst", dst);
        var map = ElementwiseLayout.Build("fill", Longs(dst.Shape), dst.Strides.ToArray());
        LaunchTensor("fill_kernel", new TensorArgs { Out = Ptr(dst), OutDType = Code(dst.DType), Alpha = value, Map = map });
    }

    public void Copy(Tensor src, Tensor dst)
    {
        Require("copy", "src", src);
        Require("copy", "dst", dst);
        if (dst.Numel == 0) return;
        if (src.DType == dst.DType && src.IsContiguous && dst.IsContiguous)
        {
            CudaDevice.MakeCurrent();
            CudaDriver.Check(CudaDriver.cuMemcpyDtoDAsync(Ptr(dst), Ptr(src), (nuint)(dst.Numel * dst.DType.ElementSize()), Stream.Handle),
                             nameof(CudaDriver.cuMemcpyDtoDAsync), $"copy {ShapeUtil.Format(dst.Shape)}");
            return;
        }
        var map = ElementwiseLayout.Build("copy", Longs(dst.Shape), dst.Strides.ToArray(), src.Strides.ToArray());
        LaunchTensor("copy_kernel", new TensorArgs
        {
            Out = Ptr(dst), A = Ptr(src), OutDType = Code(dst.DType), InDType = Code(src.DType), Map = map,
        });
    }

    /// <summary>Copies a contiguous device tensor into host memory. HOST SYNC: the caller reads the data on return.</summary>
    public void CopyToHost(Tensor src, IntPtr host)
    {
        Require("copy_to_host", "src", src);
        _staging.Download(Ptr(src), (void*)host, src.Numel * src.DType.ElementSize());
        _errors.ThrowIfSet();
    }

    /// <summary>Queues a copy of host memory into a contiguous device tensor; the host memory may be reused on return.</summary>
    public void CopyFromHost(IntPtr host, Tensor dst)
    {
        Require("copy_from_host", "dst", dst);
        _staging.Upload((void*)host, Ptr(dst), dst.Numel * dst.DType.ElementSize());
    }

    // ---- element-wise ----

    /// <summary>elementwise.cu kernels for the float ops they cover (their parameters: output pointer(s), input
    /// pointers, then the index map by value).</summary>
    private void LaunchElementwise(string kernel, ref StridedIndexMap map, params ReadOnlySpan<ulong> pointers)
    {
        if (map.Count == 0) return;
        var set = Module(ElementwiseKernels.SourceFile);
        var config = Resident((map.Count + BlockThreads - 1) / BlockThreads);
        Span<ulong> values = stackalloc ulong[pointers.Length];
        pointers.CopyTo(values);
        Span<nint> arguments = stackalloc nint[pointers.Length + 1];
        fixed (ulong* p = values)
        fixed (StridedIndexMap* m = &map)
        {
            for (var i = 0; i < values.Length; i++) arguments[i] = (nint)(p + i);
            arguments[^1] = (nint)m;
            set[kernel].Launch(config, Stream, arguments);
        }
    }

    private static readonly Dictionary<UnaryOp, string> UnaryKernels = new()
    {
        [UnaryOp.Neg] = "neg_forward_kernel", [UnaryOp.Exp] = "exp_forward_kernel", [UnaryOp.Log] = "log_forward_kernel",
        [UnaryOp.Sqrt] = "sqrt_forward_kernel", [UnaryOp.Abs] = "abs_forward_kernel", [UnaryOp.Relu] = "relu_forward_kernel",
        [UnaryOp.Sigmoid] = "sigmoid_forward_kernel", [UnaryOp.Tanh] = "tanh_forward_kernel", [UnaryOp.Sign] = "sign_forward_kernel",
    };

    /// <summary>unary_extra_kernel's op codes (tensor.cu).</summary>
    private static readonly Dictionary<UnaryOp, int> UnaryExtra = new()
    {
        [UnaryOp.PowScalar] = 0, [UnaryOp.Clamp] = 1, [UnaryOp.Square] = 2, [UnaryOp.Reciprocal] = 3, [UnaryOp.Softplus] = 4,
    };

    private static readonly Dictionary<BinaryOp, string> BinaryKernels = new()
    {
        [BinaryOp.Add] = "add_forward_kernel", [BinaryOp.Sub] = "sub_forward_kernel", [BinaryOp.Mul] = "mul_forward_kernel",
        [BinaryOp.Div] = "div_forward_kernel", [BinaryOp.Pow] = "pow_forward_kernel", [BinaryOp.Maximum] = "maximum_forward_kernel",
        [BinaryOp.Minimum] = "minimum_forward_kernel", [BinaryOp.ReluBackward] = "relu_backward_kernel",
        [BinaryOp.SigmoidBackward] = "sigmoid_backward_kernel", [BinaryOp.TanhBackward] = "tanh_backward_kernel",
        [BinaryOp.AddRelu] = "add_relu_forward_kernel",
    };

    public void Unary(UnaryOp op, Tensor x, Tensor y, double alpha, double beta)
    {
        if (x.DType != DType.Float32) throw Unsupported(op.ToString(), x.DType);
        Require(op.ToString(), "x", x);
        Require(op.ToString(), "y", y);
        var map = ElementwiseLayout.Build(op.ToString(), Longs(y.Shape), x.Strides.ToArray());
        if (UnaryKernels.TryGetValue(op, out var kernel))
        {
            LaunchElementwise(kernel, ref map, Ptr(y), Ptr(x));
            return;
        }
        if (!UnaryExtra.TryGetValue(op, out var code)) throw new ArgumentOutOfRangeException(nameof(op), op, null);
        LaunchTensor("unary_extra_kernel", new TensorArgs { Out = Ptr(y), A = Ptr(x), Op = code, Alpha = alpha, Beta = beta, Map = map });
    }

    public void Binary(BinaryOp op, Tensor a, Tensor b, Tensor y)
    {
        if (a.DType != b.DType) throw new ArgumentException($"{op}: operand dtypes differ ({a.DType.Name()} vs {b.DType.Name()}).");
        Require(op.ToString(), "a", a);
        Require(op.ToString(), "b", b);
        Require(op.ToString(), "y", y);
        var map = ElementwiseLayout.Build(op.ToString(), Longs(y.Shape), a.Strides.ToArray(), b.Strides.ToArray());
        if (a.DType == DType.Float32 && y.DType == DType.Float32)
        {
            if (!BinaryKernels.TryGetValue(op, out var kernel))
                throw new ArgumentOutOfRangeException(nameof(op), op, "not a float-valued op");
            LaunchElementwise(kernel, ref map, Ptr(y), Ptr(a), Ptr(b));
            return;
        }
        if (op is BinaryOp.ReluBackward or BinaryOp.SigmoidBackward or BinaryOp.TanhBackward or BinaryOp.AddRelu)
            throw new NotSupportedException($"{op} is not defined for {a.DType.Name()} tensors.");
        LaunchTensor("binary_generic_kernel", new TensorArgs
        {
            Out = Ptr(y), A = Ptr(a), B = Ptr(b), Errors = _errors.DevicePointer, OutDType = Code(y.DType), InDType = Code(a.DType),
            Op = (int)op, ErrorOp = (int)DeviceErrorLog.Op.Binary, Map = map,
        });
    }

    public void Where(Tensor cond, Tensor a, Tensor b, Tensor y)
    {
        Require("where", "cond", cond);
        Require("where", "a", a);
        Require("where", "b", b);
        Require("where", "y", y);
        var map = ElementwiseLayout.Build("where", Longs(y.Shape), cond.Strides.ToArray(), a.Strides.ToArray(), b.Strides.ToArray());
        LaunchTensor("where_kernel", new TensorArgs
        {
            Out = Ptr(y), A = Ptr(cond), B = Ptr(a), C = Ptr(b), OutDType = Code(y.DType), Map = map,
        });
    }

    public void Reduce(ReduceOp op, Tensor x, long outer, long n, long inner, Tensor values, Tensor? indices)
    {
        if (x.DType != DType.Float32) throw Unsupported(op.ToString().ToLowerInvariant(), x.DType);
        Require("reduce", "x", x);
        Require("reduce", "values", values);
        if (outer * inner == 0) return;
        var args = new ReduceArgs
        {
            X = Ptr(x), Values = Ptr(values), Indices = PtrOrZero(indices), Outer = outer, N = n, Inner = inner, Op = (int)op,
        };
        var set = Module("reduce.cu");
        if (inner == 1) set.Launch("reduce_rows_kernel", Resident(outer), Stream, args);
        else set.Launch("reduce_columns_kernel", Resident((outer * inner + BlockThreads - 1) / BlockThreads), Stream, args);
    }

    public void Dispose()
    {
        lock (_setsGate)
        {
            foreach (var set in _sets.Values) set.Dispose();
            _sets.Clear();
        }
        _cublas?.Dispose();
        _convolution?.Dispose();
        _staging.Dispose();
        _errors.Dispose();
        Stream.Dispose();
    }
}
