// The long-tail backend of each device, found the way Engine.Core finds its IBackend: the CPU one is built in,
// another device kind registers a factory when its assembly initializes, so ops never name a backend.
namespace Engine.LongTail;

public static class LongTailBackends
{
    private static readonly Lock Gate = new();
    private static readonly Dictionary<DeviceKind, Func<int, ILongTailBackend>> Factories = [];
    private static readonly Dictionary<Device, ILongTailBackend> Created = [];

    public static ILongTailBackend Cpu { get; } = new CpuLongTailBackend();

    /// <summary>Makes <paramref name="factory"/> (device index → backend) the long-tail backend of <paramref name="kind"/>.</summary>
    public static void Register(DeviceKind kind, Func<int, ILongTailBackend> factory)
    {
        if (kind == DeviceKind.Cpu) throw new ArgumentException("LongTailBackends.Register: the CPU backend is built in and cannot be replaced.");
        lock (Gate)
        {
            Factories[kind] = factory;
            foreach (var d in Created.Keys.Where(d => d.Kind == kind).ToList()) Created.Remove(d);
        }
    }

    public static ILongTailBackend For(Device device)
    {
        if (device.Kind == DeviceKind.Cpu) return Cpu;
        lock (Gate)
        {
            if (Created.TryGetValue(device, out var b)) return b;
            if (!Factories.TryGetValue(device.Kind, out var factory))
                throw new NotSupportedException(
                    $"Long-tail ops on {device}: no long-tail backend is registered for {device.Kind} devices. Register one with " +
                    "LongTailBackends.Register when that device's assembly initializes, or move the tensors to the CPU with To(Device.Cpu).");
            return Created[device] = factory(device.Index);
        }
    }
}
