// Library loading and status handling of the bindings: NVRTC loads through the project's resolver,
// device detection never throws and explains an absent device, a missing driver library gives a
// message that names it and the fix, and native statuses become exceptions naming call and error.
using Engine.Cuda.Interop;
using Engine.Native;
using Engine.Tests;

namespace Engine.Cuda.Tests.Interop;

public sealed class CudaLibrariesTests
{
    [Fact]
    public void NvrtcLoadsThroughTheResolver()
    {
        Assert.True(CudaLibraries.TryLoad(CudaLibraries.Nvrtc, out var reason), reason);
        Assert.True(Nvrtc.nvrtcVersion(out var major, out _) == nvrtcResult.NVRTC_SUCCESS);
        Assert.True(major >= 11, $"NVRTC {major}.x is older than the 11.2 these bindings need");
    }

    [Fact]
    public void DeviceDetectionNeverThrowsAndExplainsAbsence()
    {
        var available = CudaDevice.IsAvailable;
        Assert.Equal(available, CudaDevice.IsAvailable);
        if (available)
        {
            Assert.True(CudaDevice.DeviceCount > 0);
            Assert.Equal("", CudaDevice.UnavailableReason);
        }
        else
        {
            Assert.Equal(0, CudaDevice.DeviceCount);
            Assert.NotEmpty(CudaDevice.UnavailableReason);
            var e = Assert.Throws<InvalidOperationException>(() => CudaDevice.Open());
            Assert.Contains("no CUDA device", e.Message);
            Assert.Contains(CudaDevice.UnavailableReason, e.Message);
        }
    }

    [Fact]
    public void MissingDriverLibraryNamesItWhereSearchedAndTheFix()
    {
        if (LibraryResolver.TryLoad(CudaLibraries.Driver, out _, out _))
        {
            // A machine with the driver: the same binding call must reach it.
            CudaDriver.Check(CudaDriver.cuDriverGetVersion(out var version), nameof(CudaDriver.cuDriverGetVersion));
            Assert.True(version >= 11020, $"driver API version {version}");
            return;
        }
        Assert.False(CudaDevice.IsAvailable);
        Assert.Contains("libcuda.so.1", CudaDevice.UnavailableReason);
        var e = Assert.Throws<DllNotFoundException>(() => CudaDriver.cuDriverGetVersion(out _));
        Assert.Contains("libcuda.so.1", e.Message);
        Assert.Contains("searched:", e.Message);
        Assert.Contains("/usr/local/cuda", e.Message);
        Assert.Contains("ENGINE_LIB_CUDA", e.Message);
    }

    [Fact]
    public void NvrtcStatusBecomesAnExceptionNamingCallAndError()
    {
        var e = Assert.Throws<NvrtcException>(() => Nvrtc.Check(nvrtcResult.NVRTC_ERROR_COMPILATION, nameof(Nvrtc.nvrtcCompileProgram), "probe.cu"));
        Assert.Equal("nvrtcCompileProgram", e.Call);
        Assert.Contains("nvrtcCompileProgram failed with NVRTC_ERROR_COMPILATION", e.Message);
        Assert.Contains("probe.cu", e.Message);
    }

    [CudaFact]
    public void DriverStatusBecomesAnExceptionNamingCallAndError()
    {
        using var device = CudaDevice.Open();
        // CUDA_ERROR_INVALID_VALUE = 1 (cuda.h); the names and descriptions come from the driver itself.
        var e = Assert.Throws<CudaException>(() => CudaDriver.Check((CUresult)1, nameof(CudaDriver.cuMemAlloc), "probe"));
        Assert.Equal("cuMemAlloc", e.Call);
        Assert.Equal("CUDA_ERROR_INVALID_VALUE", e.StatusName);
        Assert.Contains("cuMemAlloc failed with CUDA_ERROR_INVALID_VALUE", e.Message);
        Assert.Contains("probe", e.Message);
    }
}
