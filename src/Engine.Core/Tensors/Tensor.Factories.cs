// Creating tensors: uninitialized, constant, ranges, random (explicitly seeded), from managed arrays,
// and copies to another device or dtype.
namespace Engine;

public sealed partial class Tensor
{
    /// <summary>An uninitialized contiguous tensor (poisoned with NaN when EngineOptions.PoisonAllocations).</summary>
    public static Tensor Empty(ReadOnlySpan<int> shape, DType dtype = DType.Float32, Device? device = null)
    {
        foreach (var s in shape)
            if (s < 0) throw new ArgumentException($"Empty: negative size in shape {ShapeUtil.Format(shape)}.");
        if (dtype == DType.BFloat16) throw new NotSupportedException("bfloat16 tensors are reserved and not implemented yet; use float32.");
        var dev = device ?? Engine.Device.Cpu;
        var storage = Backends.For(dev).Allocate(ShapeUtil.Numel(shape) * dtype.ElementSize());
        return new Tensor(storage, shape.ToArray(), ShapeUtil.ContiguousStrides(shape), 0, dtype, addRef: false);
    }

    /// <summary>A strided tensor over existing storage, holding a new reference to it: for layers that present one
    /// device's memory under another label (a host-memory stand-in for a device in tests, interop buffers). Every
    /// element the strides can reach must lie inside the storage; nothing is copied or initialized.</summary>
    public static Tensor OverStorage(Storage storage, ReadOnlySpan<int> shape, ReadOnlySpan<long> strides, long offset, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(storage);
        if (storage.IsReleased) throw new ObjectDisposedException(nameof(Storage), "OverStorage: the storage was already freed.");
        if (strides.Length != shape.Length)
            throw new ArgumentException($"OverStorage: shape {ShapeUtil.Format(shape)} has {shape.Length} dims but {strides.Length} strides were given.");
        if (dtype == DType.BFloat16) throw new NotSupportedException("bfloat16 tensors are reserved and not implemented yet; use float32.");
        if (offset < 0) throw new ArgumentException($"OverStorage: offset {offset} is negative.");
        long last = offset;
        for (var d = 0; d < shape.Length; d++)
        {
            if (shape[d] < 0) throw new ArgumentException($"OverStorage: negative size in shape {ShapeUtil.Format(shape)}.");
            if (strides[d] < 0) throw new ArgumentException($"OverStorage: stride {strides[d]} of dim {d} is negative.");
            if (shape[d] > 0) last += (shape[d] - 1) * strides[d];
        }
        if (ShapeUtil.Numel(shape) > 0 && (last + 1) * dtype.ElementSize() > storage.ByteLength)
            throw new ArgumentException(
                $"OverStorage: a {dtype.Name()} view {ShapeUtil.Format(shape)} with strides [{string.Join(", ", strides.ToArray())}] at offset {offset} " +
                $"reaches byte {(last + 1) * dtype.ElementSize()}, past the storage's {storage.ByteLength} bytes.");
        return new Tensor(storage, shape.ToArray(), strides.ToArray(), offset, dtype, addRef: true);
    }

    public static Tensor Full(ReadOnlySpan<int> shape, double value, DType dtype = DType.Float32, Device? device = null)
    {
        var t = Empty(shape, dtype, device);
        t.Backend.Fill(t, value);
        return t;
    }

    public static Tensor Zeros(ReadOnlySpan<int> shape, DType dtype = DType.Float32, Device? device = null) => Full(shape, 0, dtype, device);
    public static Tensor Ones(ReadOnlySpan<int> shape, DType dtype = DType.Float32, Device? device = null) => Full(shape, 1, dtype, device);

    public static Tensor Scalar(float value, Device? device = null) => Full([], value, DType.Float32, device);

    public static Tensor ZerosLike(Tensor t) => Zeros(t._shape, t.DType, t.Device);
    public static Tensor OnesLike(Tensor t) => Ones(t._shape, t.DType, t.Device);
    public static Tensor EmptyLike(Tensor t) => Empty(t._shape, t.DType, t.Device);

    /// <summary>start, start+step, ... below end (above end for a negative step).</summary>
    public static Tensor Arange(double start, double end, double step = 1, DType dtype = DType.Int64, Device? device = null)
    {
        if (step == 0 || double.IsNaN(start) || double.IsNaN(end) || double.IsNaN(step))
            throw new ArgumentException($"Arange: invalid range start={start} end={end} step={step}.");
        var n = Math.Max(0, (long)Math.Ceiling((end - start) / step));
        var values = new double[n];
        for (long i = 0; i < n; i++) values[i] = start + i * step;
        return FromDoubles(values, [checked((int)n)], dtype, device);
    }

    public static Tensor Arange(long end, DType dtype = DType.Int64, Device? device = null) => Arange(0, end, 1, dtype, device);

    /// <summary>Uniform in [low, high) from <paramref name="generator"/>.</summary>
    public static Tensor Rand(ReadOnlySpan<int> shape, Generator generator, double low = 0, double high = 1, Device? device = null)
    {
        var values = new double[ShapeUtil.Numel(shape)];
        for (var i = 0; i < values.Length; i++) values[i] = low + (high - low) * generator.NextDouble();
        return FromDoubles(values, shape, DType.Float32, device);
    }

    /// <summary>Normal(mean, std²) from <paramref name="generator"/>.</summary>
    public static Tensor Randn(ReadOnlySpan<int> shape, Generator generator, double mean = 0, double std = 1, Device? device = null)
    {
        var values = new double[ShapeUtil.Numel(shape)];
        for (var i = 0; i < values.Length; i++) values[i] = mean + std * generator.NextNormal();
        return FromDoubles(values, shape, DType.Float32, device);
    }

    /// <summary>Uniform integers in [low, high).</summary>
    public static Tensor RandInt(ReadOnlySpan<int> shape, long low, long high, Generator generator, DType dtype = DType.Int64, Device? device = null)
    {
        if (high <= low) throw new ArgumentException($"RandInt: empty range [{low}, {high}).");
        var values = new double[ShapeUtil.Numel(shape)];
        for (var i = 0; i < values.Length; i++) values[i] = low + generator.NextInt64(high - low);
        return FromDoubles(values, shape, dtype, device);
    }

    /// <summary>A tensor holding a copy of <paramref name="data"/> with the given shape (1-D when omitted; use
    /// Scalar or Reshape() for rank 0).</summary>
    public static unsafe Tensor From<T>(T[] data, params int[] shape) where T : unmanaged => From<T>(data.AsSpan(), shape, null);

    public static unsafe Tensor From<T>(ReadOnlySpan<T> data, ReadOnlySpan<int> shape, Device? device = null) where T : unmanaged
    {
        var dtype = ElementTypeOf<T>();
        int[] s = shape.Length == 0 ? [data.Length] : shape.ToArray();
        if (ShapeUtil.Numel(s) != data.Length)
            throw new ArgumentException($"From: {data.Length} values do not fill shape {ShapeUtil.Format(s)} ({ShapeUtil.Numel(s)} elements).");
        var dev = device ?? Engine.Device.Cpu;
        var t = Empty(s, dtype, dev);
        fixed (T* p = data)
            t.Backend.CopyFromHost((IntPtr)p, t);
        return t;
    }

    /// <summary>Converts doubles to any dtype (used by factories and references).</summary>
    public static unsafe Tensor FromDoubles(ReadOnlySpan<double> values, ReadOnlySpan<int> shape, DType dtype = DType.Float32, Device? device = null)
    {
        if (ShapeUtil.Numel(shape) != values.Length)
            throw new ArgumentException($"FromDoubles: {values.Length} values do not fill shape {ShapeUtil.Format(shape)}.");
        var host = Empty(shape, dtype);
        var p = (byte*)host.DataPointer;
        var e = dtype.ElementSize();
        for (var i = 0; i < values.Length; i++) CpuBackend.WriteDouble(dtype, p + (long)i * e, values[i]);
        if (device is null || device == Engine.Device.Cpu) return host;
        using (host) return host.To(device.Value);
    }

    /// <summary>Elements as doubles, row-major (tests and references).</summary>
    public unsafe double[] ToDoubleArray()
    {
        using var host = Device == Engine.Device.Cpu ? Alias() : To(Engine.Device.Cpu);
        using var c = host.IsContiguous ? host.Alias() : host.Contiguous();
        var result = new double[c.Numel];
        var p = (byte*)c.DataPointer;
        var e = DType.ElementSize();
        for (var i = 0; i < result.Length; i++) result[i] = CpuBackend.ReadDouble(DType, p + (long)i * e);
        return result;
    }

    /// <summary>A copy on <paramref name="device"/> (or this tensor's alias when already there). Differentiable.</summary>
    public Tensor To(Device device)
    {
        if (device == Device) return Alias().Registered();
        using var src = IsContiguous ? Alias() : Contiguous();
        var dst = Empty(_shape, DType, device);
        if (Device == Engine.Device.Cpu) dst.Backend.CopyFromHost(src.DataPointer, dst);
        else if (device == Engine.Device.Cpu) src.Backend.CopyToHost(src, dst.DataPointer);
        else
        {
            using var host = src.To(Engine.Device.Cpu);
            dst.Backend.CopyFromHost(host.DataPointer, dst);
        }
        if (Autograd.Tape.IsNeeded(this))
        {
            var from = Device;
            Autograd.Tape.Record(dst, "to", [this], _ => g => [g.To(from)]);
        }
        return dst;
    }

    /// <summary>A copy converted to <paramref name="dtype"/> (this tensor's alias when it already has it).</summary>
    public Tensor To(DType dtype)
    {
        if (dtype == DType) return Alias().Registered();
        var dst = Empty(_shape, dtype, Device);
        Backend.Copy(this, dst);
        if (Autograd.Tape.IsNeeded(this) && dtype.IsFloatingPoint())
        {
            var from = DType;
            Autograd.Tape.Record(dst, "cast", [this], _ => g => [g.To(from)]);
        }
        return dst;
    }

    /// <summary>A contiguous copy with its own storage. Differentiable.</summary>
    public Tensor Clone()
    {
        var dst = Empty(_shape, DType, Device);
        Backend.Copy(this, dst);
        if (Autograd.Tape.IsNeeded(this)) Autograd.Tape.Record(dst, "clone", [this], _ => g => [g]);
        return dst;
    }

    /// <summary>Writes src (broadcast to this shape) into this tensor in place. Not differentiable.</summary>
    public Tensor CopyFrom(Tensor src)
    {
        CheckWritable("CopyFrom");
        if (src.Device != Device) { using var moved = src.To(Device); return CopyFrom(moved); }
        using var expanded = src.BroadcastView(_shape, "CopyFrom");
        Backend.Copy(expanded, this);
        Storage.BumpVersion();
        return this;
    }

    /// <summary>Sets every element to value in place.</summary>
    public Tensor Fill(double value)
    {
        CheckWritable("Fill");
        Backend.Fill(this, value);
        Storage.BumpVersion();
        return this;
    }

    /// <summary>The tensor as a new graph leaf sharing storage: no gradient flows back through it.</summary>
    public Tensor Detach() => Alias().Registered();

    internal Tensor Registered()
    {
        DisposeScope.Register(this);
        return this;
    }

    internal void CheckWritable(string op)
    {
        if (GradMode.IsEnabledFor(this))
            throw new InvalidOperationException($"{op}: in-place write to a tensor that requires grad; wrap the update in `using (GradMode.NoGrad())` or Detach() first.");
    }
}
