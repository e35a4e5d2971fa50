// The device of a detector verb (train, infer, calibrate): --device, else MODEL.DEVICE. A cuda device registers the
// CUDA backends (Engine.Core's, detection's and long-tail's) before anything is built, and is refused with the reason
// when no GPU or CUDA library is usable; the config that goes on carries the device, so the run's config.yaml says
// where it ran. TF32 (cuBLAS and cuDNN on tensor cores) is off unless a verb's --tf32 turns it on.
using Engine.Config;
using Engine.Cuda.Backend;
using Engine.Cuda.Ops;

namespace Engine.Cli.Verbs;

internal static class DeviceSelection
{
    public static EngineConfig Apply(string verb, string? option, EngineConfig config, bool allowTf32 = false)
    {
        var text = option ?? config.Model.Device;
        Device device;
        try
        {
            device = Device.Parse(text);
        }
        catch (FormatException)
        {
            throw new ArgumentException($"{verb}: unknown device '{text}'{(option is null ? " (MODEL.DEVICE)" : "")}; use cpu, cuda or cuda:N.");
        }
        if (device.Kind == DeviceKind.Cuda)
        {
            if (!CudaOpsRegistration.TryRegister(out var reason, new CudaBackendOptions(AllowTf32: allowTf32)))
                throw new NotSupportedException($"{verb}: device {device} asked for{(option is null ? " (MODEL.DEVICE)" : "")}, but CUDA is not usable here: {reason} Run on the CPU with --device cpu.");
            _ = Backends.For(device); // a device index the machine lacks fails here, before a run folder is made
        }
        else if (allowTf32)
            throw new ArgumentException($"{verb}: --tf32 applies to cuda devices; {device} computes in FP32.");
        return config with { Model = config.Model with { Device = device.ToString() } };
    }
}
