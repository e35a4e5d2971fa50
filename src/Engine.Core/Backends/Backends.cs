// The backend of each device kind. The CPU backend is built in; the CUDA backend registers itself when
// its assembly is loaded and a device is present, so callers never name a backend.
namespace Engine;

public static class Backends
{
    private static readonly Lock Gate = new();
    private static Func<int, IBackend>? _cudaFactory;
    private static readonly Dictionary<int, IBackend> Cuda = [];

    public static IBackend Cpu { get; } = new CpuBackend();

    public static void RegisterCuda(Func<int, IBackend> factory)
    {
        lock (Gate) _cudaFactory = factory;
    }

    public static bool IsCudaRegistered
    {
        get { lock (Gate) return _cudaFactory is not null; }
    }

    public static IBackend For(Device device)
    {
        if (device.Kind == DeviceKind.Cpu) return Cpu;
        lock (Gate)
        {
            if (Cuda.TryGetValue(device.Index, out var b)) return b;
            if (_cudaFactory is null)
                throw new NotSupportedException(
                    $"Device {device} was requested but no CUDA backend is loaded: reference Engine.Cuda and call its initialization, " +
                    "and make sure an NVIDIA driver (libcuda.so.1) is present; or use --device cpu.");
            return Cuda[device.Index] = _cudaFactory(device.Index);
        }
    }
}
