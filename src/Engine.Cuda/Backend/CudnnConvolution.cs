// 2-D convolution through cuDNN 9's legacy API (cudnnConvolutionForward / BackwardData / BackwardFilter /
// BackwardBias, cudnnAddTensor for the bias), NCHW float32, cross-correlation as in the CPU backend. Per
// geometry, descriptors are built once and each pass's algorithm is chosen once by cudnnFind* (which
// times the candidates: a host synchronization, once per shape) and cached. Without TF32 the convolution
// descriptor asks for FMA math and only algorithms that report FMA math are taken, so results stay IEEE
// float; with TF32 allowed cuDNN's default math may use tensor cores. Workspaces come from the backend's
// stream-ordered pool per call.
using System.Diagnostics;
using System.Text;
using Engine.Cuda.Interop;
using Engine.Cuda.Memory;
using Engine.Native;

namespace Engine.Cuda.Backend;

internal sealed unsafe class CudnnConvolution : IConvolutionEngine
{
    /// <summary>Algorithms asking for more workspace than this are passed over.</summary>
    private const long MaxWorkspaceBytes = 1L << 30;

    private readonly nint _handle;
    private readonly CudaDevice _device;
    private readonly CudaMemoryPool _memory;
    private readonly bool _allowTf32;
    private readonly Dictionary<Conv2dGeometry, Plan> _plans = [];
    private readonly Lock _gate = new();
    /// <summary>Wall time spent in cudnnFind*, over every pass.</summary>
    private TimeSpan _searchTime;

    /// <summary>The cuDNN handle, bound to the stream; CudnnGraphConvolution, which owns this engine, executes its plans
    /// on it too (every call of that engine holds its own lock, so the two never use the handle at once).</summary>
    internal nint Handle => _handle;

    public CudnnConvolution(CudaDevice device, CudaStream stream, CudaMemoryPool memory, bool allowTf32)
    {
        _device = device;
        _memory = memory;
        _allowTf32 = allowTf32;
        device.MakeCurrent();
        CuDnn.Check(CuDnn.cudnnCreate(out _handle), nameof(CuDnn.cudnnCreate), device.Name);
        CuDnn.Check(CuDnn.cudnnSetStream(_handle, stream.Handle), nameof(CuDnn.cudnnSetStream));
    }

    /// <summary>Descriptors and chosen algorithms of one geometry (-1: not searched yet).</summary>
    private sealed class Plan : IDisposable
    {
        public nint X, Y, W, Bias, Conv;
        public int ForwardAlgo = -1, BackwardDataAlgo = -1, BackwardFilterAlgo = -1;
        public long ForwardBytes, BackwardDataBytes, BackwardFilterBytes;
        public float ForwardMs, BackwardDataMs, BackwardFilterMs;

        public void Dispose()
        {
            CuDnn.cudnnDestroyTensorDescriptor(X);
            CuDnn.cudnnDestroyTensorDescriptor(Y);
            CuDnn.cudnnDestroyTensorDescriptor(Bias);
            CuDnn.cudnnDestroyFilterDescriptor(W);
            CuDnn.cudnnDestroyConvolutionDescriptor(Conv);
        }
    }

    private Plan For(Conv2dGeometry g)
    {
        if (_plans.TryGetValue(g, out var plan)) return plan;
        plan = new Plan();
        const cudnnDataType_t f32 = cudnnDataType_t.CUDNN_DATA_FLOAT;
        const cudnnTensorFormat_t nchw = cudnnTensorFormat_t.CUDNN_TENSOR_NCHW;
        var at = g.ToString();
        CuDnn.Check(CuDnn.cudnnCreateTensorDescriptor(out plan.X), nameof(CuDnn.cudnnCreateTensorDescriptor));
        CuDnn.Check(CuDnn.cudnnSetTensor4dDescriptor(plan.X, nchw, f32, g.N, g.CIn, g.H, g.W), nameof(CuDnn.cudnnSetTensor4dDescriptor), $"x of {at}");
        CuDnn.Check(CuDnn.cudnnCreateTensorDescriptor(out plan.Y), nameof(CuDnn.cudnnCreateTensorDescriptor));
        CuDnn.Check(CuDnn.cudnnSetTensor4dDescriptor(plan.Y, nchw, f32, g.N, g.COut, g.OutH, g.OutW), nameof(CuDnn.cudnnSetTensor4dDescriptor), $"y of {at}");
        CuDnn.Check(CuDnn.cudnnCreateTensorDescriptor(out plan.Bias), nameof(CuDnn.cudnnCreateTensorDescriptor));
        CuDnn.Check(CuDnn.cudnnSetTensor4dDescriptor(plan.Bias, nchw, f32, 1, g.COut, 1, 1), nameof(CuDnn.cudnnSetTensor4dDescriptor), $"bias of {at}");
        CuDnn.Check(CuDnn.cudnnCreateFilterDescriptor(out plan.W), nameof(CuDnn.cudnnCreateFilterDescriptor));
        CuDnn.Check(CuDnn.cudnnSetFilter4dDescriptor(plan.W, f32, nchw, g.COut, g.CInPerGroup, g.KernelH, g.KernelW),
                    nameof(CuDnn.cudnnSetFilter4dDescriptor), $"w of {at}");
        CuDnn.Check(CuDnn.cudnnCreateConvolutionDescriptor(out plan.Conv), nameof(CuDnn.cudnnCreateConvolutionDescriptor));
        CuDnn.Check(CuDnn.cudnnSetConvolution2dDescriptor(plan.Conv, g.PadH, g.PadW, g.StrideH, g.StrideW, g.DilationH, g.DilationW,
                                                          cudnnConvolutionMode_t.CUDNN_CROSS_CORRELATION, f32),
                    nameof(CuDnn.cudnnSetConvolution2dDescriptor), at);
        CuDnn.Check(CuDnn.cudnnSetConvolutionGroupCount(plan.Conv, g.Groups), nameof(CuDnn.cudnnSetConvolutionGroupCount), at);
        CuDnn.Check(CuDnn.cudnnSetConvolutionMathType(plan.Conv, MathType), nameof(CuDnn.cudnnSetConvolutionMathType), at);
        _plans[g] = plan;
        return plan;
    }

    private cudnnMathType_t MathType => _allowTf32 ? cudnnMathType_t.CUDNN_DEFAULT_MATH : cudnnMathType_t.CUDNN_FMA_MATH;

    /// <summary>The fastest successful result within the workspace limit whose math type keeps FP32 unless TF32 is allowed.</summary>
    private (int Algo, long Bytes, float Ms) Choose(string call, Conv2dGeometry g, ReadOnlySpan<cudnnConvolutionAlgoPerf_t> results)
    {
        foreach (var r in results)
        {
            if (r.status != cudnnStatus_t.CUDNN_STATUS_SUCCESS || (long)r.memory > MaxWorkspaceBytes) continue;
            if (!_allowTf32 && r.mathType is cudnnMathType_t.CUDNN_TENSOR_OP_MATH or cudnnMathType_t.CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;
            return (r.algo, (long)r.memory, r.time);
        }
        throw new NotSupportedException(
            $"{call}: cuDNN offers no algorithm for {g} within {MemoryStats.Format(MaxWorkspaceBytes)} of workspace" +
            (_allowTf32 ? "." : " in FP32 (FMA) math; allow TF32 (CudaBackendOptions.AllowTf32) or change the shape."));
    }

    private const int Candidates = 16;

    /// <summary>Runs one cudnnFind* (its four descriptors in the call's own order), adds its wall time to the search
    /// time and chooses from the results. HOST SYNC, once per shape and pass: cudnnFind* runs and times every candidate
    /// algorithm.</summary>
    private (int Algo, long Bytes, float Ms) Search(
        delegate*<nint, nint, nint, nint, nint, int, out int, cudnnConvolutionAlgoPerf_t*, cudnnStatus_t> find, string call, Conv2dGeometry g,
        nint first, nint second, nint convolution, nint last)
    {
        var results = stackalloc cudnnConvolutionAlgoPerf_t[Candidates];
        var started = Stopwatch.GetTimestamp();
        CuDnn.Check(find(_handle, first, second, convolution, last, Candidates, out var found, results), call, g.ToString());
        _searchTime += Stopwatch.GetElapsedTime(started);
        return Choose(call, g, new ReadOnlySpan<cudnnConvolutionAlgoPerf_t>(results, found));
    }

    public void Forward(Conv2dGeometry g, ulong x, ulong w, ulong bias, ulong y)
    {
        if (g.N == 0) return;
        lock (_gate)
        {
            _device.MakeCurrent();
            var p = For(g);
            if (p.ForwardAlgo < 0)
            {
                (p.ForwardAlgo, p.ForwardBytes, p.ForwardMs) =
                    Search(&CuDnn.cudnnFindConvolutionForwardAlgorithm, nameof(CuDnn.cudnnFindConvolutionForwardAlgorithm), g, p.X, p.W, p.Conv, p.Y);
            }
            var workspace = _memory.Allocate(p.ForwardBytes);
            float one = 1, zero = 0;
            try
            {
                CuDnn.Check(CuDnn.cudnnConvolutionForward(_handle, &one, p.X, x, p.W, w, p.Conv, p.ForwardAlgo, workspace, (nuint)p.ForwardBytes,
                                                          &zero, p.Y, y), nameof(CuDnn.cudnnConvolutionForward), g.ToString());
                if (bias != 0) AddBias(p, g, bias, y);
            }
            finally
            {
                _memory.Free(workspace, p.ForwardBytes);
            }
        }
    }

    public void BackwardData(Conv2dGeometry g, ulong dy, ulong w, ulong dx)
    {
        if (g.N == 0) return;
        lock (_gate)
        {
            _device.MakeCurrent();
            var p = For(g);
            if (p.BackwardDataAlgo < 0)
            {
                (p.BackwardDataAlgo, p.BackwardDataBytes, p.BackwardDataMs) =
                    Search(&CuDnn.cudnnFindConvolutionBackwardDataAlgorithm, nameof(CuDnn.cudnnFindConvolutionBackwardDataAlgorithm), g, p.W, p.Y, p.Conv, p.X);
            }
            var workspace = _memory.Allocate(p.BackwardDataBytes);
            float one = 1, zero = 0;
            try
            {
                CuDnn.Check(CuDnn.cudnnConvolutionBackwardData(_handle, &one, p.W, w, p.Y, dy, p.Conv, p.BackwardDataAlgo, workspace,
                                                               (nuint)p.BackwardDataBytes, &zero, p.X, dx),
                            nameof(CuDnn.cudnnConvolutionBackwardData), g.ToString());
            }
            finally
            {
                _memory.Free(workspace, p.BackwardDataBytes);
            }
        }
    }

    public void BackwardWeights(Conv2dGeometry g, ulong x, ulong dy, ulong dw, ulong dbias)
    {
        lock (_gate)
        {
            _device.MakeCurrent();
            var p = For(g);
            if (p.BackwardFilterAlgo < 0)
            {
                (p.BackwardFilterAlgo, p.BackwardFilterBytes, p.BackwardFilterMs) =
                    Search(&CuDnn.cudnnFindConvolutionBackwardFilterAlgorithm, nameof(CuDnn.cudnnFindConvolutionBackwardFilterAlgorithm), g, p.X, p.Y, p.Conv, p.W);
            }
            var workspace = _memory.Allocate(p.BackwardFilterBytes);
            float one = 1, zero = 0;
            try
            {
                CuDnn.Check(CuDnn.cudnnConvolutionBackwardFilter(_handle, &one, p.X, x, p.Y, dy, p.Conv, p.BackwardFilterAlgo, workspace,
                                                                 (nuint)p.BackwardFilterBytes, &zero, p.W, dw),
                            nameof(CuDnn.cudnnConvolutionBackwardFilter), g.ToString());
                if (dbias != 0) BiasGradient(p, g, dy, dbias);
            }
            finally
            {
                _memory.Free(workspace, p.BackwardFilterBytes);
            }
        }
    }

    /// <summary>y += bias broadcast over (N, OutH, OutW), on the stream.</summary>
    public void AddBias(Conv2dGeometry g, ulong bias, ulong y)
    {
        lock (_gate)
        {
            _device.MakeCurrent();
            AddBias(For(g), g, bias, y);
        }
    }

    /// <summary>dbias = Σ dy over (N, OutH, OutW), overwritten, on the stream.</summary>
    public void BiasGradient(Conv2dGeometry g, ulong dy, ulong dbias)
    {
        lock (_gate)
        {
            _device.MakeCurrent();
            BiasGradient(For(g), g, dy, dbias);
        }
    }

    private void AddBias(Plan p, Conv2dGeometry g, ulong bias, ulong y)
    {
        float one = 1;
        CuDnn.Check(CuDnn.cudnnAddTensor(_handle, &one, p.Bias, bias, &one, p.Y, y), nameof(CuDnn.cudnnAddTensor), $"bias of {g}");
    }

    private void BiasGradient(Plan p, Conv2dGeometry g, ulong dy, ulong dbias)
    {
        float one = 1, zero = 0;
        CuDnn.Check(CuDnn.cudnnConvolutionBackwardBias(_handle, &one, p.Y, dy, &zero, p.Bias, dbias),
                    nameof(CuDnn.cudnnConvolutionBackwardBias), $"bias of {g}");
    }

    public string Describe()
    {
        lock (_gate)
        {
            var text = new StringBuilder($"cuDNN legacy API{(_allowTf32 ? ", TF32 allowed" : ", FMA math")}: {_plans.Count} geometries, " +
                                         $"searched in {_searchTime.TotalSeconds:F2} s\n");
            void Line(string pass, Conv2dGeometry g, int algo, float ms, long bytes)
            {
                if (algo >= 0) text.AppendLine($"  {pass} of {g}: algorithm {algo}, {ms:F3} ms, {MemoryStats.Format(bytes)} workspace");
            }
            foreach (var (g, p) in _plans)
            {
                Line("Forward", g, p.ForwardAlgo, p.ForwardMs, p.ForwardBytes);
                Line("BackwardData", g, p.BackwardDataAlgo, p.BackwardDataMs, p.BackwardDataBytes);
                Line("BackwardFilter", g, p.BackwardFilterAlgo, p.BackwardFilterMs, p.BackwardFilterBytes);
            }
            return text.ToString();
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _device.MakeCurrent();
            foreach (var plan in _plans.Values) plan.Dispose();
            _plans.Clear();
            CuDnn.cudnnDestroy(_handle);
        }
    }
}
