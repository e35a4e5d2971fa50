// A stand-in for cuda:0 on machines without a GPU, to test that a pipeline keeps its tensors on the device it was
// given: tensors "on cuda:0" live in host memory and are computed by the CPU backends (so results must equal a CPU
// run bit for bit), but they report cuda:0 as their device, so everything the device rules forbid fails as on a
// GPU: AsSpan on them, ops mixing them with CPU tensors, and backend calls handed a CPU tensor where the CUDA
// backends require device memory (the same check as CudaTensors.Require / CudaBackend's). Registering it makes it
// the process's cuda:0 for Engine.Core, detection and long-tail ops, so only test processes that never touch a
// real GPU install it. What it cannot show: kernels' numerics and speed. Host reads, legal but a wait on a GPU and
// free here, it counts instead (RecordHostWaits).
using System.Reflection;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using Engine.Detection;
using Engine.LongTail;

namespace Engine.Training.Tests;

public static class HostBackedCuda
{
    public static readonly Device Device = Device.Cuda(0);

    /// <summary>The xunit collection of the tests that use the stand-in: they run one at a time, so one test's recorded
    /// host waits are its own.</summary>
    public const string Collection = "HostBackedCuda";
    private static HostWaitRecorder? _recorder;

    /// <summary>Counts the host waits of device work until disposed: what on a GPU would block the host until the
    /// stream catches up. Not thread-scoped: tests that record run in the "HostBackedCuda" collection, one at a time.</summary>
    public static HostWaitRecorder RecordHostWaits()
    {
        var recorder = new HostWaitRecorder();
        if (Interlocked.CompareExchange(ref _recorder, recorder, null) is not null)
            throw new InvalidOperationException("HostBackedCuda: host waits are already being recorded.");
        return recorder;
    }

    public sealed class HostWaitRecorder : IDisposable
    {
        private readonly Dictionary<string, int> _sites = new(StringComparer.Ordinal);

        public long Count { get { lock (_sites) return _sites.Values.Sum(); } }

        /// <summary>Where the waits came from: the backend member and the first engine frames above it, with counts.</summary>
        public string Describe()
        {
            lock (_sites) return string.Join("; ", _sites.OrderByDescending(kv => kv.Value).Select(kv => $"{kv.Value}× {kv.Key}"));
        }

        internal void Add(string member)
        {
            var frames = new System.Diagnostics.StackTrace().GetFrames().Select(f => f.GetMethod()).Where(m =>
                m?.DeclaringType is { Namespace: { } ns } t && ns.StartsWith("Engine", StringComparison.Ordinal) &&
                !ns.StartsWith("Engine.Training.Tests", StringComparison.Ordinal) && t != typeof(Tensor));
            var site = $"{member} < {string.Join(" < ", frames.Take(2).Select(m => $"{m!.DeclaringType!.Name}.{m.Name}"))}";
            lock (_sites) _sites[site] = _sites.GetValueOrDefault(site) + 1;
        }

        public void Dispose() => Interlocked.CompareExchange(ref _recorder, null, this);
    }

    private static readonly Lazy<bool> Installed = new(() =>
    {
        if (Backends.IsCudaRegistered)
            throw new InvalidOperationException("HostBackedCuda: a CUDA backend is already registered in this process; the stand-in would replace it.");
        Backends.RegisterCuda(_ => Relabelling<IBackend>.Create(Backends.Cpu));
        DetectionBackends.Register(DeviceKind.Cuda, _ => Relabelling<IDetectionBackend>.Create(DetectionBackends.Cpu));
        LongTailBackends.Register(DeviceKind.Cuda, _ => Relabelling<ILongTailBackend>.Create(LongTailBackends.Cpu));
        return true;
    });

    /// <summary>Makes the stand-in the backend of cuda:0 (once per process).</summary>
    public static Device Install()
    {
        _ = Installed.Value;
        return Device;
    }

    /// <summary>Backend arguments the CUDA backends read on the host (so a CPU tensor is allowed there):
    /// the group offsets of group softmax (CudaLongTailBackend.Offsets reads them back when they are on the device,
    /// which the recorder counts as a wait).</summary>
    private static readonly HashSet<(string Method, string Parameter)> HostArguments =
    [
        (nameof(ILongTailBackend.GroupSoftmax), "offsets"),
        (nameof(ILongTailBackend.GroupSoftmaxBackward), "offsets"),
    ];

    /// <summary>Host memory labelled cuda:0, plus one CPU-labelled alias of the same bytes for the CPU backends.</summary>
    private sealed unsafe class HostBackedStorage : Storage
    {
        private IntPtr _data;

        public HostBackedStorage(long byteLength, Device device) : base(byteLength, device)
        {
            _data = (IntPtr)NativeMemory.AlignedAlloc((nuint)Math.Max(byteLength, 1), 64);
            // Poisoned like the CPU backend's allocations when the tests ask for it, so unwritten outputs show up as NaN.
            if (EngineOptions.PoisonAllocations) NativeMemory.Fill((void*)_data, (nuint)byteLength, 0xFF);
            if (byteLength > 0) GC.AddMemoryPressure(byteLength);
            Alias = new HostAlias(this);
        }

        public HostAlias Alias { get; }

        public override IntPtr Pointer => _data;

        protected override void Free()
        {
            var p = Interlocked.Exchange(ref _data, IntPtr.Zero);
            if (p == IntPtr.Zero) return;
            NativeMemory.AlignedFree((void*)p);
            if (ByteLength > 0) GC.RemoveMemoryPressure(ByteLength);
        }
    }

    /// <summary>The CPU's view of a HostBackedStorage; owns nothing (the views made over it live for one backend call).</summary>
    private sealed class HostAlias(HostBackedStorage owner) : Storage(owner.ByteLength, Device.Cpu)
    {
        public override IntPtr Pointer => owner.Pointer;

        protected override void Free() { }
    }

    /// <summary>Forwards every member of <typeparamref name="TBackend"/> to the CPU backend with each device tensor
    /// replaced by a CPU view of the same memory; reports cuda:0 as its device and allocates HostBackedStorage.</summary>
    public class Relabelling<TBackend> : DispatchProxy where TBackend : class
    {
        private TBackend _cpu = null!;

        public static TBackend Create(TBackend cpu)
        {
            var proxy = DispatchProxy.Create<TBackend, Relabelling<TBackend>>();
            ((Relabelling<TBackend>)(object)proxy)._cpu = cpu;
            return proxy;
        }

        protected override object? Invoke(MethodInfo? method, object?[]? args)
        {
            ArgumentNullException.ThrowIfNull(method);
            args ??= [];
            if (method.Name == "get_Device") return Device;
            if (method.Name == nameof(IBackend.Allocate)) return new HostBackedStorage((long)args[0]!, Device);
            // The calls that make the host wait for a GPU (CudaBackend's header lists them): a copy to the host, and a member
            // whose result the host reads on return (CountNonzero, Nms).
            if (method.Name == nameof(IBackend.CopyToHost) || method.ReturnType != typeof(void)) _recorder?.Add(method.Name);
            var parameters = method.GetParameters();
            var views = new List<Tensor>();
            try
            {
                var call = new object?[args.Length];
                for (var i = 0; i < args.Length; i++)
                    call[i] = args[i] switch
                    {
                        Tensor t => OnCpu(method.Name, parameters[i].Name!, t, views),
                        IReadOnlyList<Tensor?> list => list.Select((t, k) => t is null ? null : OnCpu(method.Name, $"{parameters[i].Name}[{k}]", t, views)).ToList(),
                        // The CPU convolution may keep weights reordered under the storage's id and version; the alias's
                        // version does not follow the device storage's, so the stand-in never lets it cache.
                        bool when parameters[i].Name == "cacheWeight" => false,
                        var other => other,
                    };
                return method.Invoke(_cpu, call);
            }
            catch (TargetInvocationException e) when (e.InnerException is not null)
            {
                ExceptionDispatchInfo.Throw(e.InnerException);
                throw;
            }
            finally
            {
                foreach (var v in views) v.Dispose();
            }
        }

        private static Tensor OnCpu(string method, string parameter, Tensor t, List<Tensor> views)
        {
            var hostArgument = HostArguments.Contains((method, parameter.Split('[')[0]));
            if (t.Storage is HostBackedStorage s)
            {
                // a host argument given on the device is read back by the CUDA backend: a wait
                if (hostArgument) _recorder?.Add($"{method}({parameter} read back)");
                var view = Tensor.OverStorage(s.Alias, t.Shape, t.Strides, t.Offset, t.DType);
                views.Add(view);
                return view;
            }
            if (hostArgument) return t;
            throw new ArgumentException($"{typeof(TBackend).Name}.{method}: {parameter} is on {t.Device}, not {Device}; move it with To({Device}) first.", parameter);
        }
    }
}
