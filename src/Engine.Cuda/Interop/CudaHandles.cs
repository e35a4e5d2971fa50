// SafeHandles for every native object the engine creates: the retained primary context, device
// allocations, streams, events, pinned host memory, loaded modules and NVRTC programs. Objects that live in a context hold a
// reference on the context handle, so the context is released only after the last of them, and
// each release makes the context current first (finalizers run on a thread that never used it).
using System.Runtime.InteropServices;

namespace Engine.Cuda.Interop;

/// <summary>A retained primary context (cuDevicePrimaryCtxRetain); releasing it calls
/// cuDevicePrimaryCtxRelease on the same device.</summary>
internal sealed class PrimaryContextHandle : SafeHandle
{
    private PrimaryContextHandle(int device) : base(0, ownsHandle: true) => Device = device;

    public int Device { get; }

    public override bool IsInvalid => handle == 0;

    public static PrimaryContextHandle Retain(int device)
    {
        CudaDriver.Check(CudaDriver.cuDevicePrimaryCtxRetain(out var context, device), nameof(CudaDriver.cuDevicePrimaryCtxRetain), $"device {device}");
        var owner = new PrimaryContextHandle(device);
        owner.SetHandle(context);
        return owner;
    }

    /// <summary>Makes the context current on the calling thread (cuCtxSetCurrent is per thread).</summary>
    public void MakeCurrent() =>
        CudaDriver.Check(CudaDriver.cuCtxSetCurrent(handle), nameof(CudaDriver.cuCtxSetCurrent), $"device {Device}");

    protected override bool ReleaseHandle() => CudaDriver.cuDevicePrimaryCtxRelease(Device) == CUresult.CUDA_SUCCESS;
}

/// <summary>A native object that belongs to a context and keeps that context alive.</summary>
internal abstract class ContextBoundHandle : SafeHandle
{
    protected ContextBoundHandle(PrimaryContextHandle context, nint value) : base(0, ownsHandle: true)
    {
        var added = false;
        context.DangerousAddRef(ref added);
        Context = context;
        SetHandle(value);
    }

    public PrimaryContextHandle Context { get; }

    public override bool IsInvalid => handle == 0;

    protected sealed override bool ReleaseHandle()
    {
        try
        {
            return CudaDriver.cuCtxSetCurrent(Context.DangerousGetHandle()) == CUresult.CUDA_SUCCESS
                && Free(handle) == CUresult.CUDA_SUCCESS;
        }
        finally
        {
            Context.DangerousRelease();
        }
    }

    protected abstract CUresult Free(nint value);
}

internal sealed class DeviceMemoryHandle(PrimaryContextHandle context, ulong pointer) : ContextBoundHandle(context, (nint)pointer)
{
    public ulong Pointer => (ulong)handle;

    protected override CUresult Free(nint value) => CudaDriver.cuMemFree((ulong)value);
}

internal sealed class StreamHandle(PrimaryContextHandle context, nint stream) : ContextBoundHandle(context, stream)
{
    protected override CUresult Free(nint value) => CudaDriver.cuStreamDestroy(value);
}

internal sealed class CudaModuleHandle(PrimaryContextHandle context, nint module) : ContextBoundHandle(context, module)
{
    protected override CUresult Free(nint value) => CudaDriver.cuModuleUnload(value);
}

/// <summary>An nvrtcProgram; destroyed with nvrtcDestroyProgram.</summary>
internal sealed class NvrtcProgramHandle : SafeHandle
{
    public NvrtcProgramHandle(nint program) : base(0, ownsHandle: true) => SetHandle(program);

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        var program = handle;
        return Nvrtc.nvrtcDestroyProgram(ref program) == nvrtcResult.NVRTC_SUCCESS;
    }
}

internal sealed class EventHandle(PrimaryContextHandle context, nint cuEvent) : ContextBoundHandle(context, cuEvent)
{
    protected override CUresult Free(nint value) => CudaDriver.cuEventDestroy(value);
}

/// <summary>Page-locked host memory from cuMemHostAlloc; freed with cuMemFreeHost.</summary>
internal sealed unsafe class PinnedHostHandle(PrimaryContextHandle context, nint pointer) : ContextBoundHandle(context, pointer)
{
    protected override CUresult Free(nint value) => CudaDriver.cuMemFreeHost((void*)value);
}
