// The device options of the verbs that run the detector (train, infer, calibrate): --device, and for a cuda device
// --tf32 and --cudnn. DeviceSelection applies them.
using CommandLine;
using Engine.Config;

namespace Engine.Cli.Verbs;

public abstract class DeviceVerb
{
    [Option("device", HelpText = "cpu or cuda (overrides MODEL.DEVICE).")]
    public string? Device { get; set; }

    [Option("tf32", HelpText = "On cuda, let matmuls and convolutions use TF32 tensor cores (faster; about 1e-3 relative error, as PyTorch's allow_tf32).")]
    public bool Tf32 { get; set; }

    [Option("cudnn", HelpText = "On cuda, the cuDNN API of the convolutions: graph (the graph API's engines, up to 10 timed per shape and pass on first use, as PyTorch's cudnn.benchmark; the default) or legacy (cudnnFind* over the legacy algorithms).")]
    public string? Cudnn { get; set; }

    /// <summary>The config with the device this verb runs on; registers the CUDA backends for a cuda device.</summary>
    protected EngineConfig ApplyDevice(string verb, EngineConfig config) => DeviceSelection.Apply(verb, Device, config, Tf32, Cudnn);
}
