// A loaded CUBIN (cuModuleLoadData) and the kernels in it. CudaKernel.Launch is the thin launcher every
// kernel family uses: grid and block, stream, the addresses of the argument values in the kernel's
// parameter order (cuLaunchKernel copies the values at the call), then the status check.
using Engine.Cuda.Interop;

namespace Engine.Cuda;

public readonly record struct Dim3(uint X, uint Y = 1, uint Z = 1)
{
    public override string ToString() => $"({X}, {Y}, {Z})";
}

public readonly record struct LaunchConfig(Dim3 Grid, Dim3 Block, uint SharedMemoryBytes = 0)
{
    /// <summary>A 1-D launch for a grid-stride loop over <paramref name="count"/> items: enough blocks to
    /// cover them, but no more than can be resident on the device at once (further items are picked up by
    /// the loop), so no block waits for a second wave.</summary>
    public static LaunchConfig GridStride(CudaDevice device, long count, int blockSize = 256)
    {
        if (count <= 0)
            throw new ArgumentOutOfRangeException(nameof(count), $"LaunchConfig.GridStride: {count} items need no launch.");
        if (blockSize <= 0 || blockSize > device.MaxThreadsPerBlock)
            throw new ArgumentOutOfRangeException(nameof(blockSize),
                $"LaunchConfig.GridStride: block size {blockSize} must be in 1..{device.MaxThreadsPerBlock} on {device.Name}.");
        var resident = (long)device.MultiprocessorCount * Math.Max(1, device.MaxThreadsPerMultiprocessor / blockSize);
        var blocks = Math.Min((count + blockSize - 1) / blockSize, Math.Min(resident, device.MaxGridDimX));
        return new LaunchConfig(new Dim3((uint)blocks), new Dim3((uint)blockSize));
    }
}

public sealed class CudaModule : IDisposable
{
    private readonly CudaModuleHandle _module;

    internal unsafe CudaModule(CudaDevice device, byte[] image, string name)
    {
        Device = device;
        Name = name;
        device.MakeCurrent();
        nint module;
        fixed (byte* p = image)
            CudaDriver.Check(CudaDriver.cuModuleLoadData(out module, p), nameof(CudaDriver.cuModuleLoadData), $"{name} on {device}");
        _module = new CudaModuleHandle(device.Context, module);
    }

    public CudaDevice Device { get; }
    public string Name { get; }

    /// <summary>The kernel named <paramref name="name"/> (an extern "C" __global__ function).</summary>
    public CudaKernel GetKernel(string name)
    {
        ObjectDisposedException.ThrowIf(_module.IsClosed, this);
        Device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuModuleGetFunction(out var function, _module.DangerousGetHandle(), name),
                         nameof(CudaDriver.cuModuleGetFunction), $"kernel '{name}' in {Name}");
        return new CudaKernel(this, function, name);
    }

    internal CudaModuleHandle Handle => _module;

    public void Dispose() => _module.Dispose();
}

public sealed class CudaKernel
{
    private readonly nint _function;

    internal CudaKernel(CudaModule module, nint function, string name)
    {
        Module = module;
        _function = function;
        Name = name;
    }

    public CudaModule Module { get; }
    public string Name { get; }

    /// <summary>Queues the kernel. <paramref name="argumentAddresses"/> holds, in parameter order, the address
    /// of each argument value (e.g. of a local ulong device pointer, or of a by-value struct).</summary>
    public unsafe void Launch(in LaunchConfig config, CudaStream? stream, params ReadOnlySpan<nint> argumentAddresses)
    {
        var (grid, block) = (config.Grid, config.Block);
        if (grid.X == 0 || grid.Y == 0 || grid.Z == 0 || block.X == 0 || block.Y == 0 || block.Z == 0)
            throw new ArgumentException($"CudaKernel.Launch({Name}): grid {grid} and block {block} must have no zero dimension.", nameof(config));
        if (stream is not null && !stream.Device.SharesContextWith(Module.Device))
            throw new ArgumentException($"CudaKernel.Launch({Name}): the stream belongs to another device than the kernel's module.", nameof(stream));

        var added = false;
        Module.Handle.DangerousAddRef(ref added);
        try
        {
            Module.Device.MakeCurrent();
            fixed (nint* arguments = argumentAddresses)
                CudaDriver.Check(
                    CudaDriver.cuLaunchKernel(_function, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z,
                                              config.SharedMemoryBytes, stream?.Handle ?? 0, (void**)arguments, null),
                    nameof(CudaDriver.cuLaunchKernel), $"{Name}, grid {grid}, block {block}, {config.SharedMemoryBytes} B shared");
        }
        finally
        {
            if (added) Module.Handle.DangerousRelease();
        }
    }
}
