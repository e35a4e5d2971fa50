// One CUDA device, used through its primary context (the context the CUDA runtime and PyTorch share):
// cuDevicePrimaryCtxRetain once, then cuCtxSetCurrent on every thread before every driver call, since
// the current context is per thread. Detection (IsAvailable) never throws: a machine without the
// driver or without a GPU is an ordinary configuration and reports why it has no device.
using System.Text;
using Engine.Cuda.Compilation;
using Engine.Cuda.Interop;
using Engine.Native;

namespace Engine.Cuda;

public sealed class CudaDevice : IDisposable
{
    private static readonly Lazy<(int Count, string Reason)> Detection = new(Detect);

    private readonly PrimaryContextHandle _context;
    private readonly int _device;

    private CudaDevice(int ordinal, int device, PrimaryContextHandle context)
    {
        Ordinal = ordinal;
        _device = device;
        _context = context;
        Name = ReadName(device);
        Architecture = new GpuArchitecture(
            Attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
            Attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR));
        MultiprocessorCount = Attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
        MaxThreadsPerMultiprocessor = Attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR);
        MaxThreadsPerBlock = Attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
        MaxGridDimX = Attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X);
    }

    /// <summary>True when libcuda loads, cuInit succeeds and at least one device exists. Never throws.</summary>
    public static bool IsAvailable => Detection.Value.Count > 0;

    /// <summary>Why <see cref="IsAvailable"/> is false; empty when a device exists.</summary>
    public static string UnavailableReason => Detection.Value.Reason;

    /// <summary>Number of CUDA devices; 0 where there is no driver or no GPU.</summary>
    public static int DeviceCount => Detection.Value.Count;

    public int Ordinal { get; }
    public string Name { get; }
    public GpuArchitecture Architecture { get; }
    public int MultiprocessorCount { get; }
    public int MaxThreadsPerMultiprocessor { get; }
    public int MaxThreadsPerBlock { get; }
    public int MaxGridDimX { get; }

    internal PrimaryContextHandle Context => _context;

    /// <summary>Whether <paramref name="other"/> works in the same context (two opens of one GPU share its
    /// primary context), so that memory, streams and modules of one can be used with the other.</summary>
    public bool SharesContextWith(CudaDevice other) => _context.DangerousGetHandle() == other._context.DangerousGetHandle();

    /// <summary>Retains the primary context of device <paramref name="ordinal"/> and makes it current on
    /// the calling thread.</summary>
    public static CudaDevice Open(int ordinal = 0)
    {
        var (count, reason) = Detection.Value;
        if (count == 0)
            throw new InvalidOperationException($"CudaDevice.Open({ordinal}): no CUDA device is available: {reason}");
        if (ordinal < 0 || ordinal >= count)
            throw new ArgumentOutOfRangeException(nameof(ordinal),
                $"CudaDevice.Open({ordinal}): this machine has {count} CUDA device(s), ordinals 0..{count - 1}.");
        CudaDriver.Check(CudaDriver.cuDeviceGet(out var device, ordinal), nameof(CudaDriver.cuDeviceGet), $"ordinal {ordinal}");
        var context = PrimaryContextHandle.Retain(device);
        try
        {
            context.MakeCurrent();
            return new CudaDevice(ordinal, device, context);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>Makes this device's context current on the calling thread. Every operation of this
    /// library calls it; code that calls the driver directly on a new thread must too.</summary>
    public void MakeCurrent() => _context.MakeCurrent();

    /// <summary>Waits for all work on the device (cuCtxSynchronize) and reports any asynchronous fault.</summary>
    public void Synchronize()
    {
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuCtxSynchronize(), nameof(CudaDriver.cuCtxSynchronize), Name);
    }

    public DeviceBuffer<T> Allocate<T>(long length) where T : unmanaged => new(this, length);

    public CudaStream CreateStream() => new(this);

    /// <summary>Loads a CUBIN (cuModuleLoadData) whose architecture must match this device.</summary>
    public CudaModule LoadModule(CompiledKernel kernel)
    {
        if (kernel.Architecture.Major != Architecture.Major || kernel.Architecture.Minor > Architecture.Minor)
            throw new ArgumentException(
                $"CudaDevice.LoadModule: {Path.GetFileName(kernel.SourcePath)} was compiled for {kernel.Architecture}, which " +
                $"cannot run on {Name} ({Architecture}); compile it for {Architecture}.", nameof(kernel));
        return new CudaModule(this, kernel.Image, Path.GetFileName(kernel.SourcePath));
    }

    public void Dispose() => _context.Dispose();

    public override string ToString() => $"{Name} (device {Ordinal}, {Architecture}, {MultiprocessorCount} SMs)";

    private int Attribute(CUdevice_attribute attribute)
    {
        CudaDriver.Check(CudaDriver.cuDeviceGetAttribute(out var value, attribute, _device), nameof(CudaDriver.cuDeviceGetAttribute),
                         $"{attribute}, device {Ordinal}");
        return value;
    }

    private static unsafe string ReadName(int device)
    {
        const int capacity = 256;
        var buffer = stackalloc byte[capacity];
        CudaDriver.Check(CudaDriver.cuDeviceGetName(buffer, capacity, device), nameof(CudaDriver.cuDeviceGetName), $"device {device}");
        var span = new ReadOnlySpan<byte>(buffer, capacity);
        var end = span.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? span : span[..end]);
    }

    private static (int Count, string Reason) Detect()
    {
        try
        {
            if (!CudaLibraries.TryLoad(CudaLibraries.Driver, out var missing)) return (0, missing);
            var status = CudaDriver.cuInit(0);
            if (status == CUresult.CUDA_ERROR_NO_DEVICE) return (0, "the CUDA driver is installed but reports no device (cuInit: CUDA_ERROR_NO_DEVICE).");
            if (status == CUresult.CUDA_ERROR_STUB_LIBRARY)
                return (0, $"the libcuda loaded ({LibraryResolver.LoadedPath(CudaLibraries.Driver) ?? "by the system loader"}) is the " +
                           "CUDA toolkit's link-time stub, not the driver (cuInit: CUDA_ERROR_STUB_LIBRARY). Remove the toolkit's " +
                           "lib/stubs folder from LD_LIBRARY_PATH or set ENGINE_LIB_CUDA=/full/path/libcuda.so.1 of the NVIDIA driver.");
            CudaDriver.Check(status, nameof(CudaDriver.cuInit));
            CudaDriver.Check(CudaDriver.cuDeviceGetCount(out var count), nameof(CudaDriver.cuDeviceGetCount));
            return count > 0 ? (count, "") : (0, "the CUDA driver reports 0 devices (cuDeviceGetCount).");
        }
        catch (Exception e)
        {
            return (0, $"CUDA detection failed: {e.Message}");
        }
    }
}
