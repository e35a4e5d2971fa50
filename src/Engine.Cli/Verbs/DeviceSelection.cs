// The device of a detector verb (train, infer, calibrate): --device, else MODEL.DEVICE. A cuda device registers the
// CUDA backends (Engine.Core's, detection's and long-tail's) before anything is built, and is refused with the reason
// when no GPU or CUDA library is usable; the config that goes on carries the device, so the run's config.yaml says
// where it ran. TF32 (cuBLAS and cuDNN on tensor cores) is off unless a verb's --tf32 turns it on; --cudnn picks the
// cuDNN API of the convolutions (the graph API by default). Both apply to cuda only and are refused on the CPU.
using Engine.Config;
using Engine.Cuda.Backend;
using Engine.Cuda.Ops;

namespace Engine.Cli.Verbs;

internal static class DeviceSelection
{
    public static EngineConfig Apply(string verb, string? option, EngineConfig config, bool allowTf32 = false, string? cudnn = null)
    {
        var api = ParseCudnn(verb, cudnn);
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
            var options = new CudaBackendOptions(AllowTf32: allowTf32, ConvolutionApi: api ?? CudaBackendOptions.Default.ConvolutionApi);
            if (!CudaOpsRegistration.TryRegister(out var reason, options))
                throw new NotSupportedException($"{verb}: device {device} asked for{(option is null ? " (MODEL.DEVICE)" : "")}, but CUDA is not usable here: {reason} Run on the CPU with --device cpu.");
            _ = Backends.For(device); // a device index the machine lacks fails here, before a run folder is made
        }
        else if (allowTf32)
            throw new ArgumentException($"{verb}: --tf32 applies to cuda devices; {device} computes in FP32.");
        else if (api is not null)
            throw new ArgumentException($"{verb}: --cudnn applies to cuda devices; {device} convolves with oneDNN.");
        return config with { Model = config.Model with { Device = device.ToString() } };
    }

    /// <summary>The API a verb's --cudnn names, or null when the option was not given; a misspelling is an ArgumentException.</summary>
    public static CudnnApi? ParseCudnn(string verb, string? cudnn)
    {
        try
        {
            return cudnn is null ? null : CudnnApis.Parse(cudnn);
        }
        catch (FormatException e)
        {
            throw new ArgumentException($"{verb}: --cudnn: {e.Message}", e);
        }
    }
}
