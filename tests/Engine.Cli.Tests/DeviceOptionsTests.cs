// The device options of the `engine` verbs: train, infer and calibrate all take --device, --tf32 and --cudnn, and
// selftest takes --cudnn; on the CPU --tf32 and --cudnn are refused with a clear line, a misspelt API is named, and
// on cuda the CUDA backend is registered with the chosen API and precision (or refused with the reason where no
// GPU is usable).
using CommandLine;
using Engine.Cli.Verbs;
using Engine.Config;
using Engine.Cuda;
using Engine.Cuda.Backend;
using Engine.Tests;

namespace Engine.Cli.Tests;

public sealed class DeviceOptionsTests
{
    private static object Parse(params string[] args)
    {
        using var parser = EngineProgram.CreateParser(help: null);
        return parser.ParseArguments(args, VerbRegistry.Verbs).MapResult(
            verb => verb,
            errors => throw new ArgumentException($"'{string.Join(' ', args)}' did not parse: {string.Join(", ", errors.Select(e => e.Tag))}"));
    }

    [Theory]
    [InlineData("train", "--config", "c.yaml")]
    [InlineData("infer", "--config", "c.yaml", "--weights", "w.safetensors")]
    [InlineData("calibrate", "--config", "c.yaml")]
    public void EveryDetectorVerbTakesTheDeviceOptions(params string[] args)
    {
        var plain = Assert.IsAssignableFrom<DeviceVerb>(Parse(args));
        Assert.Null(plain.Device);
        Assert.False(plain.Tf32);
        Assert.Null(plain.Cudnn);

        var cuda = Assert.IsAssignableFrom<DeviceVerb>(Parse([.. args, "--device", "cuda:0", "--tf32", "--cudnn", "graph"]));
        Assert.Equal("cuda:0", cuda.Device);
        Assert.True(cuda.Tf32);
        Assert.Equal("graph", cuda.Cudnn);
    }

    [Fact]
    public void SelftestTakesTheCudnnApi() =>
        Assert.Equal("graph", Assert.IsType<SelfTestVerb>(Parse("selftest", "--device", "cuda", "--cudnn", "graph")).Cudnn);

    [Fact]
    public void TheCpuRunsWithoutCudaOptions()
    {
        var config = DeviceSelection.Apply("train", "cpu", new EngineConfig());
        Assert.Equal("cpu", config.Model.Device);
    }

    [Theory]
    [InlineData(false, "graph", "train: --cudnn applies to cuda devices")]
    [InlineData(false, "legacy", "train: --cudnn applies to cuda devices")]
    [InlineData(true, null, "train: --tf32 applies to cuda devices")]
    public void CudaOptionsAreRefusedOnTheCpu(bool tf32, string? cudnn, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => DeviceSelection.Apply("train", "cpu", new EngineConfig(), tf32, cudnn));
        Assert.Contains(message, e.Message);
    }

    [Theory]
    [InlineData("cpu")]
    [InlineData("cuda")]
    public void AMisspeltApiIsNamedBeforeTheDeviceIsTouched(string device)
    {
        var e = Assert.Throws<ArgumentException>(() => DeviceSelection.Apply("infer", device, new EngineConfig(), cudnn: "v8"));
        Assert.Contains("infer: --cudnn: unknown cuDNN API 'v8'; use legacy or graph.", e.Message);
    }

    [Fact]
    public void AnUnknownConfiguredDeviceIsNamedWithItsKey()
    {
        var config = new EngineConfig { Model = new ModelConfig { Device = "tpu" } };
        var e = Assert.Throws<ArgumentException>(() => DeviceSelection.Apply("calibrate", null, config));
        Assert.Contains("calibrate: unknown device 'tpu' (MODEL.DEVICE)", e.Message);
    }

    [Fact]
    public void CudaRegistersTheBackendWithTheChosenOptionsOrIsRefusedWithTheReason()
    {
        if (!CudaDevice.IsAvailable)
        {
            Assert.False(CudaTestEnvironment.DeviceRequired, $"ENGINE_TEST_DEVICE=cuda, but no CUDA device: {CudaDevice.UnavailableReason}");
            var e = Assert.Throws<NotSupportedException>(() => DeviceSelection.Apply("train", "cuda", new EngineConfig(), true, "graph"));
            Assert.Contains("train: device cuda:0 asked for, but CUDA is not usable here: ", e.Message);
            Assert.Contains(CudaDevice.UnavailableReason, e.Message);
            return;
        }
        var config = DeviceSelection.Apply("train", "cuda", new EngineConfig(), true, "graph");
        Assert.Equal("cuda:0", config.Model.Device);
        var options = ((CudaBackend)Backends.For(Device.Cuda(0))).Options;
        Assert.True(options.AllowTf32);
        Assert.Equal(CudnnApi.Graph, options.ConvolutionApi);
    }
}
