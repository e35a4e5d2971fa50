// How the detection and long-tail backends hand tensors to kernels: the device address of a contiguous cuda
// tensor, or a borrowed DeviceBuffer / DeviceView over it for the Engine.Cuda launchers (the tensor keeps
// owning the memory), and the checks that every tensor of a call lives on the backend's device.
using Engine.Cuda.Backend;
using Engine.Cuda.Kernels;

namespace Engine.Cuda.Ops;

internal static class CudaTensors
{
    /// <summary>The CudaBackend of cuda:<paramref name="ordinal"/> (registered by CudaBackendRegistration).</summary>
    public static CudaBackend BackendFor(int ordinal)
    {
        var device = Device.Cuda(ordinal);
        return Backends.For(device) as CudaBackend
               ?? throw new InvalidOperationException(
                   $"{device}: the registered backend is not Engine.Cuda's CudaBackend; register it with CudaOpsRegistration.TryRegister.");
    }

    /// <summary>Device address of the tensor's first element (0 when it is empty).</summary>
    public static ulong Ptr(Tensor t) => t.Numel == 0 ? 0 : (ulong)(long)t.DataPointer;

    public static ulong PtrOrZero(Tensor? t) => t is null ? 0 : Ptr(t);

    /// <summary>Checks that <paramref name="t"/> is a contiguous tensor of <paramref name="dtype"/> on <paramref name="device"/>.</summary>
    public static void Require(string op, string name, Tensor t, Device device, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(t, name);
        if (t.Device != device)
            throw new ArgumentException($"{op}: {name} is on {t.Device}, not {device}; move it with To({device}) first.", name);
        if (t.DType != dtype)
            throw new ArgumentException($"{op}: {name} is {t.DType.Name()} {ShapeUtil.Format(t.Shape)}; the CUDA kernel needs {dtype.Name()}.", name);
        if (!t.IsContiguous)
            throw new ArgumentException($"{op}: {name} {ShapeUtil.Format(t.Shape)} is not contiguous; pass Contiguous() as the ops do.", name);
    }

    /// <summary>A borrowed buffer over the tensor's elements.</summary>
    public static DeviceBuffer<T> Buffer<T>(CudaDevice device, Tensor t) where T : unmanaged => DeviceBuffer<T>.Borrow(device, Ptr(t), t.Numel);

    /// <summary>A dense float view of the tensor with its shape.</summary>
    public static DeviceView View(CudaDevice device, Tensor t)
    {
        var shape = new long[t.Rank];
        for (var d = 0; d < shape.Length; d++) shape[d] = t.Size(d);
        return new DeviceView(Buffer<float>(device, t), shape);
    }
}
