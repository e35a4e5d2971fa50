// The detection backend of each device, found the way Engine.Core finds its IBackend: the CPU one is built
// in, another device kind registers a factory when its assembly is initialized, so ops never name a backend.
namespace Engine.Detection;

public static class DetectionBackends
{
    private static readonly Lock Gate = new();
    private static readonly Dictionary<DeviceKind, Func<int, IDetectionBackend>> Factories = [];
    private static readonly Dictionary<Device, IDetectionBackend> Created = [];

    public static IDetectionBackend Cpu { get; } = new CpuDetectionBackend();

    /// <summary>Makes <paramref name="factory"/> (device index → backend) the detection backend of <paramref name="kind"/>.</summary>
    public static void Register(DeviceKind kind, Func<int, IDetectionBackend> factory)
    {
        if (kind == DeviceKind.Cpu) throw new ArgumentException("DetectionBackends.Register: the CPU detection backend is built in and cannot be replaced.");
        lock (Gate)
        {
            Factories[kind] = factory;
            foreach (var d in Created.Keys.Where(d => d.Kind == kind).ToList()) Created.Remove(d);
        }
    }

    public static IDetectionBackend For(Device device)
    {
        if (device.Kind == DeviceKind.Cpu) return Cpu;
        lock (Gate)
        {
            if (Created.TryGetValue(device, out var b)) return b;
            if (!Factories.TryGetValue(device.Kind, out var factory))
                throw new NotSupportedException(
                    $"Detection ops on {device}: no detection backend is registered for {device.Kind} devices. Register one with " +
                    "DetectionBackends.Register when that device's assembly initializes, or move the tensors to the CPU with To(Device.Cpu).");
            return Created[device] = factory(device.Index);
        }
    }
}
