// A typed block of device memory (cuMemAlloc) owned by a SafeHandle, with synchronous copies to and
// from host spans and a queued device-to-device copy. Copies go through the legacy default stream, which orders them after earlier work
// on blocking streams (every stream this library creates), so a copy back sees finished results.
// A zero-length buffer allocates nothing and has the null device pointer.
using System.Runtime.CompilerServices;
using Engine.Cuda.Interop;

namespace Engine.Cuda;

public sealed class DeviceBuffer<T> : IDisposable where T : unmanaged
{
    private readonly DeviceMemoryHandle? _memory;
    private readonly ulong _borrowed;

    internal DeviceBuffer(CudaDevice device, long length)
    {
        if (length < 0)
            throw new ArgumentOutOfRangeException(nameof(length), $"DeviceBuffer<{typeof(T).Name}>: length {length} is negative.");
        Device = device;
        Length = length;
        if (length == 0) return;
        var bytes = checked(length * Unsafe.SizeOf<T>());
        device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuMemAlloc(out var pointer, (nuint)bytes), nameof(CudaDriver.cuMemAlloc),
                         $"{bytes} bytes for {length} x {typeof(T).Name} on {device.Name}");
        _memory = new DeviceMemoryHandle(device.Context, pointer);
    }

    /// <summary>A buffer over memory someone else owns (a tensor's storage): <paramref name="pointer"/> must stay valid
    /// while the buffer is used; disposing it frees nothing.</summary>
    internal static DeviceBuffer<T> Borrow(CudaDevice device, ulong pointer, long length) => new(device, pointer, length);

    private DeviceBuffer(CudaDevice device, ulong pointer, long length)
    {
        if (length < 0)
            throw new ArgumentOutOfRangeException(nameof(length), $"DeviceBuffer<{typeof(T).Name}>.Borrow: length {length} is negative.");
        if (length > 0 && pointer == 0)
            throw new ArgumentException($"DeviceBuffer<{typeof(T).Name}>.Borrow: a null pointer for {length} elements.", nameof(pointer));
        Device = device;
        Length = length;
        _borrowed = length == 0 ? 0 : pointer;
    }

    public CudaDevice Device { get; }

    /// <summary>Number of elements.</summary>
    public long Length { get; }

    public long ByteLength => Length * Unsafe.SizeOf<T>();

    /// <summary>The CUdeviceptr of element 0 (0 for an empty buffer).</summary>
    public ulong Pointer
    {
        get
        {
            if (_memory is null) return _borrowed;
            ObjectDisposedException.ThrowIf(_memory.IsClosed, this);
            return _memory.Pointer;
        }
    }

    /// <summary>Copies <paramref name="source"/> into elements [offset, offset + source.Length).</summary>
    public unsafe void CopyFrom(ReadOnlySpan<T> source, long offset = 0)
    {
        CheckRange(nameof(CopyFrom), offset, source.Length);
        if (source.IsEmpty) return;
        Device.MakeCurrent();
        fixed (T* host = source)
            CudaDriver.Check(CudaDriver.cuMemcpyHtoD(Pointer + (ulong)(offset * Unsafe.SizeOf<T>()), host,
                                                     (nuint)(source.Length * Unsafe.SizeOf<T>())),
                             nameof(CudaDriver.cuMemcpyHtoD), $"{source.Length} x {typeof(T).Name}");
    }

    /// <summary>Copies elements [offset, offset + destination.Length) into <paramref name="destination"/>.</summary>
    public unsafe void CopyTo(Span<T> destination, long offset = 0)
    {
        CheckRange(nameof(CopyTo), offset, destination.Length);
        if (destination.IsEmpty) return;
        Device.MakeCurrent();
        fixed (T* host = destination)
            CudaDriver.Check(CudaDriver.cuMemcpyDtoH(host, Pointer + (ulong)(offset * Unsafe.SizeOf<T>()),
                                                     (nuint)(destination.Length * Unsafe.SizeOf<T>())),
                             nameof(CudaDriver.cuMemcpyDtoH), $"{destination.Length} x {typeof(T).Name}");
    }

    /// <summary>Queues a copy of all of <paramref name="source"/> into elements [offset, offset + source.Length) on
    /// <paramref name="stream"/> (the default stream when null; cuMemcpyDtoDAsync): ordered with the stream's kernels,
    /// no host wait.</summary>
    public void CopyFrom(DeviceBuffer<T> source, long offset = 0, CudaStream? stream = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (source.Length > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(source), $"DeviceBuffer<{typeof(T).Name}>.CopyFrom: {source.Length} elements; copy at most 2^31 − 1 at once.");
        CheckRange(nameof(CopyFrom), offset, (int)source.Length);
        if (!source.Device.SharesContextWith(Device))
            throw new ArgumentException($"DeviceBuffer<{typeof(T).Name}>.CopyFrom: the source lives on {source.Device.Name}, this buffer on {Device.Name}; " +
                                        "copy through the host between devices.", nameof(source));
        if (source.Length == 0) return;
        Device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuMemcpyDtoDAsync(Pointer + (ulong)(offset * Unsafe.SizeOf<T>()), source.Pointer, (nuint)source.ByteLength,
                                                      stream?.Handle ?? 0),
                         nameof(CudaDriver.cuMemcpyDtoDAsync), $"{source.Length} x {typeof(T).Name}");
    }

    public T[] ToArray()
    {
        var result = new T[checked((int)Length)];
        CopyTo(result);
        return result;
    }

    /// <summary>Sets every element to <paramref name="value"/> (cuMemsetD32); 4-byte element types only.</summary>
    public void Fill(T value)
    {
        if (Unsafe.SizeOf<T>() != sizeof(uint))
            throw new NotSupportedException(
                $"DeviceBuffer<{typeof(T).Name}>.Fill: cuMemsetD32 writes 4-byte words; {typeof(T).Name} has {Unsafe.SizeOf<T>()} bytes.");
        if (Length == 0) return;
        Device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuMemsetD32(Pointer, Unsafe.BitCast<T, uint>(value), (nuint)Length),
                         nameof(CudaDriver.cuMemsetD32), $"{Length} words");
    }

    public void Dispose() => _memory?.Dispose();

    private void CheckRange(string call, long offset, int count)
    {
        if (offset < 0 || offset + count > Length)
            throw new ArgumentOutOfRangeException(nameof(offset),
                $"DeviceBuffer<{typeof(T).Name}>.{call}: elements [{offset}, {offset + count}) are outside the buffer of {Length} elements.");
    }
}
