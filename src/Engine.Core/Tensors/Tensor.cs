// A strided view of reference-counted storage on one device. Tensors are disposable: Dispose releases
// this tensor's reference to the storage immediately (views keep it alive), and DisposeScope disposes
// every tensor created inside a scope except the ones kept. Ops live in Ops/ as partial parts of this
// class (instance methods) and of the static Ops class; the math runs in the device's IBackend.
using System.Runtime.CompilerServices;
using System.Text;

namespace Engine;

public sealed partial class Tensor : IDisposable
{
    private Storage? _storage;
    internal readonly int[] _shape;
    internal readonly long[] _strides;
    private bool _requiresGrad;

    internal Tensor(Storage storage, int[] shape, long[] strides, long offset, DType dtype, bool addRef)
    {
        if (addRef) storage.AddRef();
        _storage = storage;
        _shape = shape;
        _strides = strides;
        Offset = offset;
        DType = dtype;
        DisposeScope.Register(this);
    }

    ~Tensor() => Interlocked.Exchange(ref _storage, null)?.Release();

    public DType DType { get; }
    public long Offset { get; }
    public Device Device => Storage.Device;
    public ReadOnlySpan<int> Shape => _shape;
    public ReadOnlySpan<long> Strides => _strides;
    public int Rank => _shape.Length;
    public long Numel => ShapeUtil.Numel(_shape);
    public bool IsDisposed => _storage is null;
    public string? Name { get; set; }

    /// <summary>Size of dimension <paramref name="dim"/>; negative counts from the end.</summary>
    public int Size(int dim) => _shape[ShapeUtil.NormalizeDim(dim, Rank, "Size")];

    public int[] ShapeArray() => (int[])_shape.Clone();

    public Storage Storage => _storage ?? throw new ObjectDisposedException(
        nameof(Tensor), $"Tensor{ShapeUtil.Format(_shape)} ({DType.Name()}{(Name is null ? "" : $", '{Name}'")}) was disposed and cannot be used. " +
        "Keep it alive (DisposeScope.Keep, or do not dispose it) while it is needed.");

    public bool IsContiguous => ShapeUtil.IsContiguous(_shape, _strides);

    // ---- autograd state ----

    /// <summary>The node that produced this tensor, null for leaves.</summary>
    internal Autograd.Node? GradFn { get; set; }

    public bool IsLeaf => GradFn is null;

    /// <summary>Accumulated gradient of a leaf that requires grad (owned by this tensor).</summary>
    public Tensor? Grad { get; set; }

    public bool RequiresGrad
    {
        get => _requiresGrad || GradFn is not null;
        set
        {
            if (!IsLeaf && !value)
                throw new InvalidOperationException("RequiresGrad can only be cleared on a leaf tensor; use Detach() to cut a result from the graph.");
            if (value && !DType.IsFloatingPoint())
                throw new InvalidOperationException($"Only floating-point tensors can require gradients; this one is {DType.Name()}.");
            _requiresGrad = value;
        }
    }

    /// <summary>Drops the accumulated gradient.</summary>
    public void ZeroGrad()
    {
        Grad?.Dispose();
        Grad = null;
    }

    // ---- lifetime ----

    internal DisposeScope? OwnerScope { get; set; }

    public void Dispose()
    {
        Interlocked.Exchange(ref _storage, null)?.Release();
        OwnerScope?.Forget(this);
        OwnerScope = null;
        GradFn = null;
        Grad?.Dispose();
        Grad = null;
        GC.SuppressFinalize(this);
    }

    /// <summary>Removes the tensor from its DisposeScope: the caller now owns it (e.g. a parameter).</summary>
    public Tensor DetachFromScope()
    {
        OwnerScope?.Forget(this);
        OwnerScope = null;
        return this;
    }

    /// <summary>Moves the tensor to the scope enclosing its current one (or to no scope).</summary>
    public Tensor MoveToOuterScope()
    {
        var outer = OwnerScope?.Outer;
        DetachFromScope();
        outer?.Adopt(this);
        return this;
    }

    // ---- raw data access (CPU) ----

    internal IBackend Backend => Backends.For(Device);

    /// <summary>Address of element 0 of this view (CPU or device pointer).</summary>
    public IntPtr DataPointer => Storage.Pointer + (nint)(Offset * DType.ElementSize());

    public unsafe T* Data<T>() where T : unmanaged
    {
        CheckElementType<T>("Data");
        return (T*)DataPointer;
    }

    /// <summary>The elements of a contiguous CPU tensor, in place.</summary>
    public unsafe Span<T> AsSpan<T>() where T : unmanaged
    {
        CheckElementType<T>("AsSpan");
        if (Device != Device.Cpu) throw new InvalidOperationException($"AsSpan: tensor is on {Device}; copy it with To(Device.Cpu) first.");
        if (!IsContiguous) throw new InvalidOperationException($"AsSpan: tensor{ShapeUtil.Format(_shape)} is a non-contiguous view; call Contiguous() first.");
        return new Span<T>((void*)DataPointer, checked((int)Numel));
    }

    /// <summary>Copies the elements (row-major, any layout or device) to a new array.</summary>
    public T[] ToArray<T>() where T : unmanaged
    {
        CheckElementType<T>("ToArray");
        using var host = Device == Device.Cpu ? ForKernel() : To(Device.Cpu); // a copy to the host is contiguous
        return host.AsSpan<T>().ToArray();
    }

    public float[] ToFloatArray() => DType == DType.Float32 ? ToArray<float>() : ToArray(DType.Float32, t => t.ToArray<float>());
    public long[] ToInt64Array() => DType == DType.Int64 ? ToArray<long>() : ToArray(DType.Int64, t => t.ToArray<long>());

    private T[] ToArray<T>(DType dtype, Func<Tensor, T[]> read)
    {
        using var converted = To(dtype);
        return read(converted);
    }

    /// <summary>The single element of a one-element tensor, as double.</summary>
    public double Item()
    {
        if (Numel != 1) throw new InvalidOperationException($"Item: tensor{ShapeUtil.Format(_shape)} has {Numel} elements; Item needs exactly one.");
        return DType switch
        {
            DType.Float32 => (double)ToArray<float>()[0], // typed double: the arms would otherwise unify to float
            DType.Int32 => ToArray<int>()[0],
            DType.Int64 => ToArray<long>()[0],
            DType.UInt8 => ToArray<byte>()[0],
            _ => throw new NotSupportedException($"Item: dtype {DType.Name()} is not supported."),
        };
    }

    /// <summary>Item of each one-element tensor (all of one dtype and device), read in one transfer: on a GPU one host
    /// wait for all of them instead of one each.</summary>
    public static double[] Items(IReadOnlyList<Tensor> scalars)
    {
        ArgumentNullException.ThrowIfNull(scalars);
        if (scalars.Count == 0) return [];
        for (var i = 0; i < scalars.Count; i++)
            if (scalars[i].Numel != 1)
                throw new InvalidOperationException($"Items: tensor {i} {ShapeUtil.Format(scalars[i].Shape)} has {scalars[i].Numel} elements; Items needs exactly one each.");
        using (GradMode.NoGrad())
        using (DisposeScope.Suspend())
        {
            var flat = scalars.Select(t => t.Reshape(1)).ToList();
            try
            {
                using var all = Cat(flat, 0);
                return all.ToDoubleArray();
            }
            finally
            {
                foreach (var t in flat) t.Dispose();
            }
        }
    }

    /// <summary>A new tensor object sharing this one's storage and layout (no autograd link, no scope).</summary>
    internal Tensor Alias()
    {
        using (DisposeScope.Suspend())
            return new Tensor(Storage, _shape, _strides, Offset, DType, addRef: true);
    }

    /// <summary>A contiguous, unrecorded, unscoped version of this tensor for a backend call (an alias when already
    /// contiguous); the caller disposes it.</summary>
    internal Tensor ForKernel()
    {
        using (GradMode.NoGrad())
        using (DisposeScope.Suspend())
            return IsContiguous ? Alias() : Contiguous();
    }

    internal void CheckElementType<T>(string op) where T : unmanaged
    {
        var expected = ElementTypeOf<T>();
        if (expected != DType)
            throw new InvalidOperationException($"{op}: tensor has dtype {DType.Name()} but was read as {typeof(T).Name} ({expected.Name()}); convert with To(DType.{expected}) first.");
    }

    public static DType ElementTypeOf<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? DType.Float32 :
        typeof(T) == typeof(int) ? DType.Int32 :
        typeof(T) == typeof(long) ? DType.Int64 :
        typeof(T) == typeof(byte) ? DType.UInt8 :
        throw new NotSupportedException($"{typeof(T).Name} is not a tensor element type (float, int, long, byte).");

    public override string ToString()
    {
        if (IsDisposed) return $"Tensor{ShapeUtil.Format(_shape)} {DType.Name()} (disposed)";
        var sb = new StringBuilder($"Tensor{ShapeUtil.Format(_shape)} {DType.Name()} {Device}");
        if (RequiresGrad) sb.Append(GradFn is null ? " requires_grad" : $" grad_fn={GradFn.Op}");
        if (Numel <= 16 && DType != DType.BFloat16)
        {
            sb.Append(" [");
            sb.AppendJoin(", ", DType switch
            {
                DType.Float32 => ToArray<float>().Select(v => v.ToString("G6", System.Globalization.CultureInfo.InvariantCulture)),
                DType.Int32 => ToArray<int>().Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                DType.Int64 => ToArray<long>().Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                _ => ToArray<byte>().Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            });
            sb.Append(']');
        }
        return sb.ToString();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static long ElementOffset(ReadOnlySpan<long> strides, ReadOnlySpan<int> index)
    {
        long o = 0;
        for (var i = 0; i < index.Length; i++) o += strides[i] * index[i];
        return o;
    }
}
