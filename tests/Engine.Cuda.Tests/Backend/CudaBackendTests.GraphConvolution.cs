// The graph-API convolution engine (CudnnGraphConvolution) against the CPU backend: forward with bias, backward
// data and backward weights with bias gradient, on the shapes of ConvolutionThroughCudnn plus two where cuDNN's
// implicit-GEMM engines apply (64 channels 3×3, and a strided 1×1 as in a ResNet shortcut), in FP32 and with TF32
// allowed; every pass must have found a graph plan (no legacy fallback). Pointers offset by one float make the
// engine build 4-byte-aligned plans, and a backend made with ConvolutionApi = Graph uses this engine.
// Tolerances: FP32 as ConvolutionThroughCudnn (sums of up to ~800 products: 1e-4). TF32 rounds each input to a
// 10-bit mantissa (relative 2^-11 per factor), so a sum of K products of size s errs by about sqrt(K)·s·1e-3:
// up to ~2e-2 here, hence 5e-2 absolute + 1e-2 relative.
using Engine.Cuda.Backend;
using Engine.Native;
using Engine.Tests;

namespace Engine.Cuda.Tests.Backend;

public sealed partial class CudaBackendTests
{
    public static TheoryData<Conv2dGeometry, bool> GraphConvolutions
    {
        get
        {
            var data = new TheoryData<Conv2dGeometry, bool>();
            foreach (var tf32 in (bool[])[false, true])
            {
                foreach (var g in Convolutions) data.Add(g, tf32);
                data.Add(Conv2dGeometry.Square(2, 64, 20, 21, 64, 3, pad: 1), tf32);
                data.Add(Conv2dGeometry.Square(2, 32, 15, 15, 64, 1, stride: 2), tf32);
            }
            return data;
        }
    }

    [CudaTheory]
    [MemberData(nameof(GraphConvolutions))]
    public void ConvolutionThroughCudnnGraph(Conv2dGeometry geometry, bool tf32)
    {
        var backend = (CudaBackend)Gpu;
        using var engine = new CudnnGraphConvolution(backend.CudaDevice, backend.Stream, backend.Memory, tf32);
        var (atol, rtol) = tf32 ? (5e-2, 1e-2) : (1e-4, 1e-4);
        EngineParity(engine, geometry, $"graph conv2d {geometry}{(tf32 ? " TF32" : "")}", atol, rtol);
        Assert.True(engine.Fallbacks.Count == 0, string.Join("\n", engine.Fallbacks));
        if (geometry.N > 0)
        {
            var report = engine.Describe();
            foreach (var pass in (string[])["Forward", "BackwardData", "BackwardFilter"]) Assert.Contains($"{pass} of {geometry} (aligned 16): engine", report);
            Assert.Contains("legacy API", report); // the bias went through the legacy engine, which reports its own
            Assert.DoesNotContain("knob choices not readable", report); // configurations are told apart by their knobs
        }
    }

    /// <summary>An IConvolutionEngine's forward (with bias), backward data and backward weights (with bias gradient)
    /// against the CPU backend on fresh inputs; an empty batch goes through the backend, which writes its zeros.</summary>
    private void EngineParity(IConvolutionEngine engine, Conv2dGeometry geometry, string what, double atol, double rtol)
    {
        var g = Fresh(out var seed);
        using var x = Tensor.Randn([geometry.N, geometry.CIn, geometry.H, geometry.W], g);
        using var w = Tensor.Randn([geometry.COut, geometry.CInPerGroup, geometry.KernelH, geometry.KernelW], g, 0, 0.3);
        using var bias = Tensor.Randn([geometry.COut], g);
        using var dy = Tensor.Randn([geometry.N, geometry.COut, geometry.OutH, geometry.OutW], g);
        Parity(what, seed, [x, w, bias, dy], (b, d, t) =>
        {
            var y = Out(d, dy.Shape);
            var dx = Out(d, x.Shape);
            var (dw, db) = (Out(d, w.Shape), Out(d, [geometry.COut]));
            if (d.Kind == DeviceKind.Cpu)
            {
                b.Conv2dForward(geometry, t[0], t[1], t[2], y, cacheWeight: false);
                b.Conv2dBackwardData(geometry, t[3], t[1], dx, cacheWeight: false);
                b.Conv2dBackwardWeights(geometry, t[0], t[3], dw, db);
            }
            else if (geometry.N == 0)
            {
                b.Conv2dBackwardWeights(geometry, t[0], t[3], dw, db); // the backend writes the zeros of an empty batch
            }
            else
            {
                engine.Forward(geometry, Address(t[0]), Address(t[1]), Address(t[2]), Address(y));
                engine.BackwardData(geometry, Address(t[3]), Address(t[1]), Address(dx));
                engine.BackwardWeights(geometry, Address(t[0]), Address(t[3]), Address(dw), Address(db));
            }
            return [y, dx, dw, db];
        }, atol, rtol);
    }

    [CudaFact]
    public void GraphConvolutionPlansForPointersAlignedToOneFloat()
    {
        var geometry = Conv2dGeometry.Square(2, 16, 11, 9, 24, 3, pad: 1);
        var backend = (CudaBackend)Gpu;
        using var engine = new CudnnGraphConvolution(backend.CudaDevice, backend.Stream, backend.Memory, allowTf32: false);
        var g = Fresh(out var seed);
        using var x = Tensor.Randn([geometry.N, geometry.CIn, geometry.H, geometry.W], g);
        using var w = Tensor.Randn([geometry.COut, geometry.CInPerGroup, geometry.KernelH, geometry.KernelW], g, 0, 0.3);
        using var dy = Tensor.Randn([geometry.N, geometry.COut, geometry.OutH, geometry.OutW], g);
        Parity($"graph conv2d at 4-byte alignment {geometry}", seed, [x, w, dy], (b, d, t) =>
        {
            if (d.Kind == DeviceKind.Cpu)
            {
                var (y, dx, dw) = (Out(d, dy.Shape), Out(d, x.Shape), Out(d, w.Shape));
                b.Conv2dForward(geometry, t[0], t[1], null, y, cacheWeight: false);
                b.Conv2dBackwardData(geometry, t[2], t[1], dx, cacheWeight: false);
                b.Conv2dBackwardWeights(geometry, t[0], t[2], dw, null);
                return [y, dx, dw];
            }
            // every operand one float past a pool block's start, so no pointer is 8-byte aligned
            var (xs, ws, dys) = (OffByOne(t[0], d), OffByOne(t[1], d), OffByOne(t[2], d));
            var (ys, dxs, dws) = (OffByOne(Out(d, dy.Shape), d), OffByOne(Out(d, x.Shape), d), OffByOne(Out(d, w.Shape), d));
            engine.Forward(geometry, Address(xs), Address(ws), 0, Address(ys));
            engine.BackwardData(geometry, Address(dys), Address(ws), Address(dxs));
            engine.BackwardWeights(geometry, Address(xs), Address(dys), Address(dws), 0);
            return [ys, dxs, dws];
        }, 1e-4, 1e-4);
        Assert.True(engine.Fallbacks.Count == 0, string.Join("\n", engine.Fallbacks));
        Assert.Contains("aligned 4", engine.Describe());
    }

    [CudaFact]
    public void BackendMadeWithTheGraphApiConvolvesThroughIt()
    {
        var device = ((CudaBackend)Gpu).CudaDevice;
        using var backend = new CudaBackend(device, new CudaBackendOptions(ConvolutionApi: CudnnApi.Graph, ConvolutionSearchLimit: 1));
        Assert.IsType<CudnnGraphConvolution>(backend.Convolution);
        using var legacy = new CudaBackend(device, new CudaBackendOptions(ConvolutionApi: CudnnApi.Legacy));
        Assert.IsType<CudnnConvolution>(legacy.Convolution);

        Assert.Contains("at most 1 plans timed per pass", backend.Convolution.Describe()); // the search limit reached it
        using var byDefault = new CudaBackend(device);
        Assert.IsType<CudnnGraphConvolution>(byDefault.Convolution);
    }

    [CudaFact]
    public void SearchLimitOfOneTimesOnePlanPerPass()
    {
        var geometry = Conv2dGeometry.Square(2, 8, 9, 10, 12, 3, pad: 1);
        var backend = (CudaBackend)Gpu;
        using var engine = new CudnnGraphConvolution(backend.CudaDevice, backend.Stream, backend.Memory, allowTf32: false, searchLimit: 1);
        var g = Fresh(out var seed);
        using var x = Tensor.Randn([geometry.N, geometry.CIn, geometry.H, geometry.W], g);
        using var w = Tensor.Randn([geometry.COut, geometry.CInPerGroup, geometry.KernelH, geometry.KernelW], g, 0, 0.3);
        Parity($"graph conv2d, one plan timed, {geometry}", seed, [x, w], (b, d, t) =>
        {
            var y = Out(d, [geometry.N, geometry.COut, geometry.OutH, geometry.OutW]);
            if (d.Kind == DeviceKind.Cpu) b.Conv2dForward(geometry, t[0], t[1], null, y, cacheWeight: false);
            else engine.Forward(geometry, Address(t[0]), Address(t[1]), 0, Address(y));
            return [y];
        }, 1e-4, 1e-4);
        var report = engine.Describe();
        Assert.Contains($"Forward of {geometry} (aligned 16): engine", report);
        Assert.Matches(@"fastest of 1\b", report);
    }

    private static ulong Address(Tensor t) => (ulong)(long)t.DataPointer;

    /// <summary>A copy of <paramref name="t"/> on <paramref name="d"/> that starts one element into its storage.</summary>
    private static Tensor OffByOne(Tensor t, Device d)
    {
        var storage = Tensor.Empty([(int)t.Numel + 1], t.DType, d);
        var view = storage.Narrow(0, 1, (int)t.Numel).View(t.Shape.ToArray());
        view.CopyFrom(t);
        return view;
    }
}
