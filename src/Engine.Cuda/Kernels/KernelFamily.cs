// Shared plumbing of the launchers of one kernel file: compile the .cu file for the device (or read it from the
// cache), load every kernel the launcher names, launch a kernel whose single parameter is a by-value argument
// struct, keep the scratch memory the kernels need between calls, and the argument checks every launcher makes
// (dense float views of the expected shape, buffers long enough, everything on this device).
using System.Runtime.CompilerServices;
using Engine.Cuda.Compilation;

namespace Engine.Cuda.Kernels;

public abstract class KernelFamily : IDisposable
{
    private readonly CudaModule _module;
    private readonly Dictionary<string, CudaKernel> _kernels;
    private readonly Dictionary<string, IDisposable> _scratch = [];
    private bool _disposed;

    protected KernelFamily(CudaDevice device, KernelCompiler compiler, string sourceFile, IReadOnlyList<string> kernelNames)
    {
        Device = device;
        _module = device.LoadModule(compiler.Compile(sourceFile, device.Architecture));
        try
        {
            _kernels = kernelNames.ToDictionary(name => name, _module.GetKernel);
        }
        catch
        {
            _module.Dispose();
            throw;
        }
    }

    public CudaDevice Device { get; }

    /// <summary>Queues kernel <paramref name="name"/> with <paramref name="args"/> as its only (by-value) parameter;
    /// cuLaunchKernel copies the struct at the call, so it may live on the caller's stack.</summary>
    protected unsafe void Launch<TArgs>(string name, in LaunchConfig config, CudaStream? stream, TArgs args) where TArgs : unmanaged
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var address = (nint)(&args);
        _kernels[name].Launch(config, stream, address);
    }

    /// <summary>A 1-D launch of <paramref name="blocks"/> blocks (capped at the device's grid limit; the kernels loop
    /// over any further work) of <paramref name="threads"/> threads.</summary>
    protected LaunchConfig Blocks(long blocks, int threads, uint sharedMemoryBytes = 0) =>
        new(new Dim3((uint)Math.Clamp(blocks, 1, Device.MaxGridDimX)), new Dim3((uint)threads), sharedMemoryBytes);

    /// <summary>Enough blocks to fill the device once (a grid-stride kernel covers the rest), at most <paramref name="needed"/>.</summary>
    protected LaunchConfig Resident(long needed, int threads, uint sharedMemoryBytes = 0)
    {
        var resident = (long)Device.MultiprocessorCount * Math.Max(1, Device.MaxThreadsPerMultiprocessor / threads);
        return Blocks(Math.Min(Math.Max(needed, 1), resident), threads, sharedMemoryBytes);
    }

    /// <summary>Scratch memory of at least <paramref name="length"/> elements kept under <paramref name="key"/> between
    /// calls. Growing it first waits for <paramref name="stream"/> (the legacy default stream when null), so no queued
    /// kernel still uses the memory that is freed. The launches of one family instance share this memory: issue them on
    /// that one stream. Not the whole context (cuCtxSynchronize): that fails while another thread captures a CUDA
    /// graph, and would wait for unrelated work.</summary>
    protected DeviceBuffer<T> Scratch<T>(string key, long length, CudaStream? stream) where T : unmanaged
    {
        if (_scratch.TryGetValue(key, out var existing) && existing is DeviceBuffer<T> buffer && buffer.Length >= Math.Max(length, 1))
            return buffer;
        if (existing is not null)
        {
            if (stream is not null) stream.Synchronize();
            else
            {
                Device.MakeCurrent();
                Interop.CudaDriver.Check(Interop.CudaDriver.cuStreamSynchronize(0), nameof(Interop.CudaDriver.cuStreamSynchronize), Device.Name);
            }
            existing.Dispose();
        }
        var fresh = Device.Allocate<T>(Math.Max(length, 1));
        _scratch[key] = fresh;
        return fresh;
    }

    /// <summary>A dense view with exactly <paramref name="shape"/> on this device.</summary>
    protected void RequireDense(string op, string name, DeviceView view, params long[] shape)
    {
        if (!view.Shape.AsSpan().SequenceEqual(shape))
            throw new ArgumentException(
                $"{op}: {name} has shape {ElementwiseLayout.Format(view.Shape)} but {ElementwiseLayout.Format(shape)} is required.");
        if (view.Count > 0 && !view.Strides.AsSpan().SequenceEqual(ElementwiseLayout.ContiguousStrides(shape)))
            throw new ArgumentException(
                $"{op}: {name} {ElementwiseLayout.Format(view.Shape)} has strides {ElementwiseLayout.Format(view.Strides)}; this kernel reads " +
                $"dense row-major data (strides {ElementwiseLayout.Format(ElementwiseLayout.ContiguousStrides(shape))}). Make it contiguous first.");
        RequireDevice(op, name, view.Buffer.Device);
    }

    /// <summary>A buffer of at least <paramref name="count"/> elements on this device.</summary>
    protected void RequireBuffer<T>(string op, string name, DeviceBuffer<T>? buffer, long count) where T : unmanaged
    {
        if (buffer is null)
            throw new ArgumentNullException(name, $"{op}: {name} is null; pass a buffer of at least {count} {typeof(T).Name} elements.");
        if (buffer.Length < count)
            throw new ArgumentException(
                $"{op}: {name} holds {buffer.Length} {typeof(T).Name} elements but {count} are needed; allocate at least {count}.", name);
        RequireDevice(op, name, buffer.Device);
    }

    protected void RequireDevice(string op, string name, CudaDevice device)
    {
        if (!device.SharesContextWith(Device))
            throw new ArgumentException($"{op}: {name} is on another device than {Device}; move it there first.", name);
    }

    /// <summary>Rejects an output that shares memory with an input (the kernels read inputs while writing outputs).</summary>
    protected static void RequireDistinct(string op, string output, object outputBuffer, params (string Name, object? Buffer)[] inputs)
    {
        foreach (var (name, buffer) in inputs)
            if (ReferenceEquals(buffer, outputBuffer))
                throw new ArgumentException($"{op}: {output} and {name} are the same buffer; in-place launches are not supported, use a separate {output}.");
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var buffer in _scratch.Values) buffer.Dispose();
        _module.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Size in bytes of an argument struct, for the layout checks against the static_asserts of the .cu files.</summary>
    internal static int SizeOf<TArgs>() where TArgs : unmanaged => Unsafe.SizeOf<TArgs>();
}
