// The CUDA backend's settings are checked before any device is touched, so a bad value fails with its name on a
// machine without a GPU as on one with it.
using Engine.Cuda.Backend;

namespace Engine.Cuda.Tests.Backend;

public sealed class CudaBackendOptionsTests
{
    [Fact]
    public void TheDefaultsAreValidAndTimeTenPlansAsPyTorchDoes()
    {
        CudaBackendOptions.Default.Validate();
        Assert.Equal(10, CudaBackendOptions.Default.ConvolutionSearchLimit);
        new CudaBackendOptions(ConvolutionApi: CudnnApi.Graph, ConvolutionSearchLimit: 1, CublasWorkspaceBytes: 0).Validate();
    }

    public static TheoryData<CudaBackendOptions, string> OutOfRange => new()
    {
        { new CudaBackendOptions(ConvolutionSearchLimit: 0), "ConvolutionSearchLimit" },
        { new CudaBackendOptions(ConvolutionSearchLimit: -3), "ConvolutionSearchLimit" },
        { new CudaBackendOptions(CublasWorkspaceBytes: -1), "CublasWorkspaceBytes" },
        { new CudaBackendOptions(ConvolutionApi: (CudnnApi)7), "ConvolutionApi" },
    };

    [Theory]
    [MemberData(nameof(OutOfRange))]
    public void ASettingOutOfRangeIsNamed(CudaBackendOptions options, string setting)
    {
        Assert.Contains(setting, Assert.Throws<ArgumentException>(options.Validate).Message);
        // registration checks them first, with or without a device
        Assert.Contains(setting, Assert.Throws<ArgumentException>(() => CudaBackendRegistration.TryRegister(out _, options)).Message);
    }
}
