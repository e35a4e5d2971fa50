// One cuDNN graph-API descriptor (cudnnBackendCreateDescriptor), owned: attributes are set through typed
// methods, Finish finalizes it, typed getters read it back, Dispose destroys it. Every status is checked and the
// exception names the descriptor type and the attribute, so a rejected plan says which field cuDNN refused.
using Engine.Cuda.Interop;

namespace Engine.Cuda.Backend;

internal sealed unsafe class CudnnDescriptor : IDisposable
{
    private nint _handle;

    public CudnnDescriptor(cudnnBackendDescriptorType_t type)
    {
        Type = type;
        CuDnn.Check(CuDnn.cudnnBackendCreateDescriptor(type, out _handle), nameof(CuDnn.cudnnBackendCreateDescriptor), type.ToString());
    }

    public cudnnBackendDescriptorType_t Type { get; }

    public nint Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(_handle == 0, this);
            return _handle;
        }
    }

    private void Set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, long count, void* values) =>
        CuDnn.Check(CuDnn.cudnnBackendSetAttribute(Handle, name, type, count, values), nameof(CuDnn.cudnnBackendSetAttribute), $"{Type}.{name}");

    public void Set(cudnnBackendAttributeName_t name, long value) => Set(name, cudnnBackendAttributeType_t.CUDNN_TYPE_INT64, 1, &value);

    public void Set(cudnnBackendAttributeName_t name, ReadOnlySpan<long> values)
    {
        fixed (long* p = values) Set(name, cudnnBackendAttributeType_t.CUDNN_TYPE_INT64, values.Length, p);
    }

    public void Set(cudnnBackendAttributeName_t name, float value) => Set(name, cudnnBackendAttributeType_t.CUDNN_TYPE_FLOAT, 1, &value);

    /// <summary>An attribute whose value is a C enum (data type, convolution mode, heuristic mode): 4 bytes.</summary>
    public void SetEnum(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int value) => Set(name, type, 1, &value);

    public void SetHandle(cudnnBackendAttributeName_t name, nint cudnnHandle) =>
        Set(name, cudnnBackendAttributeType_t.CUDNN_TYPE_HANDLE, 1, &cudnnHandle);

    public void Set(cudnnBackendAttributeName_t name, CudnnDescriptor value)
    {
        var h = value.Handle;
        Set(name, cudnnBackendAttributeType_t.CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &h);
    }

    /// <summary>Device addresses (void* in C).</summary>
    public void SetPointers(cudnnBackendAttributeName_t name, ReadOnlySpan<ulong> addresses)
    {
        fixed (ulong* p = addresses) Set(name, cudnnBackendAttributeType_t.CUDNN_TYPE_VOID_PTR, addresses.Length, p);
    }

    /// <summary>cudnnBackendFinalize: the descriptor is checked and becomes usable (and read-only).</summary>
    public void Finish() => CuDnn.Check(CuDnn.cudnnBackendFinalize(Handle), nameof(CuDnn.cudnnBackendFinalize), Type.ToString());

    /// <summary>cudnnBackendFinalize without throwing: the status, for callers that skip what cuDNN cannot do.</summary>
    public cudnnStatus_t TryFinish() => CuDnn.cudnnBackendFinalize(Handle);

    public long GetInt64(cudnnBackendAttributeName_t name)
    {
        long value = 0;
        CuDnn.Check(CuDnn.cudnnBackendGetAttribute(Handle, name, cudnnBackendAttributeType_t.CUDNN_TYPE_INT64, 1, out _, &value),
                    nameof(CuDnn.cudnnBackendGetAttribute), $"{Type}.{name}");
        return value;
    }

    /// <summary>Up to <paramref name="into"/>.Length enum values of an array attribute (notes); returns how many were written.</summary>
    public int GetEnums(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, Span<int> into)
    {
        long count;
        fixed (int* p = into)
            CuDnn.Check(CuDnn.cudnnBackendGetAttribute(Handle, name, type, into.Length, out count, p), nameof(CuDnn.cudnnBackendGetAttribute),
                        $"{Type}.{name}");
        return (int)Math.Min(count, into.Length);
    }

    /// <summary>How many elements an array attribute holds (a query with no room for any).</summary>
    public long Count(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type)
    {
        CuDnn.Check(CuDnn.cudnnBackendGetAttribute(Handle, name, type, 0, out var count, null), nameof(CuDnn.cudnnBackendGetAttribute),
                    $"{Type}.{name} (count)");
        return count;
    }

    /// <summary>Reads a descriptor-valued array attribute into descriptors the caller created with the right type
    /// (cuDNN fills them in); returns how many were filled.</summary>
    public int GetDescriptors(cudnnBackendAttributeName_t name, IReadOnlyList<CudnnDescriptor> into)
    {
        var handles = new nint[into.Count];
        for (var i = 0; i < handles.Length; i++) handles[i] = into[i].Handle;
        long count;
        fixed (nint* p = handles)
            CuDnn.Check(CuDnn.cudnnBackendGetAttribute(Handle, name, cudnnBackendAttributeType_t.CUDNN_TYPE_BACKEND_DESCRIPTOR, handles.Length,
                                                       out count, p), nameof(CuDnn.cudnnBackendGetAttribute), $"{Type}.{name}");
        return (int)Math.Min(count, handles.Length);
    }

    public void Dispose()
    {
        if (_handle == 0) return;
        CuDnn.cudnnBackendDestroyDescriptor(_handle);
        _handle = 0;
    }
}
