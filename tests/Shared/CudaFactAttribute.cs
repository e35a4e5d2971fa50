// [CudaFact] / [CudaTheory]: tests that need a CUDA device. Where no device is found they are skipped
// with the reason, so a machine without a GPU runs the suite cleanly; with ENGINE_TEST_DEVICE=cuda
// they always run, so on a machine meant to test the GPU a missing device fails them instead of
// hiding them. Test projects link this file rather than copy it:
//   <Compile Include="../Shared/CudaFactAttribute.cs" Link="Shared/CudaFactAttribute.cs" />
// and reference src/Engine.Cuda (for CudaDevice.IsAvailable).
using Engine.Cuda;

namespace Engine.Tests;

public static class CudaTestEnvironment
{
    /// <summary>True when ENGINE_TEST_DEVICE=cuda: CUDA tests must run, and fail without a device.</summary>
    public static bool DeviceRequired =>
        string.Equals(Environment.GetEnvironmentVariable("ENGINE_TEST_DEVICE"), "cuda", StringComparison.OrdinalIgnoreCase);

    /// <summary>The skip reason for CUDA tests on this machine, or null when they run.</summary>
    public static string? SkipReason =>
        DeviceRequired || CudaDevice.IsAvailable
            ? null
            : $"No CUDA device ({CudaDevice.UnavailableReason}). Set ENGINE_TEST_DEVICE=cuda to make this a failure.";
}

/// <summary>A fact that runs only where a CUDA device exists, or always with ENGINE_TEST_DEVICE=cuda.</summary>
public sealed class CudaFactAttribute : FactAttribute
{
    public CudaFactAttribute()
    {
        if (CudaTestEnvironment.SkipReason is { } reason) Skip = reason;
    }
}

/// <summary>A theory that runs only where a CUDA device exists, or always with ENGINE_TEST_DEVICE=cuda.</summary>
public sealed class CudaTheoryAttribute : TheoryAttribute
{
    public CudaTheoryAttribute()
    {
        if (CudaTestEnvironment.SkipReason is { } reason) Skip = reason;
    }
}
