// The kernels of one .cu file for the backend: compiled for the device on first use (or read from the
// on-disk cache), loaded once, functions looked up by name and kept. Launches pass either one by-value
// argument struct (the backend's own files) or a list of argument addresses (elementwise.cu's kernels,
// whose parameters are pointers followed by the index map).
using Engine.Cuda.Compilation;

namespace Engine.Cuda.Backend;

internal sealed class KernelSet : IDisposable
{
    private readonly CudaModule _module;
    private readonly Dictionary<string, CudaKernel> _kernels = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    public KernelSet(CudaDevice device, KernelCompiler compiler, string file)
    {
        File = file;
        _module = device.LoadModule(compiler.Compile(file, device.Architecture));
    }

    public string File { get; }

    public CudaKernel this[string name]
    {
        get
        {
            lock (_gate)
            {
                if (!_kernels.TryGetValue(name, out var kernel)) _kernels[name] = kernel = _module.GetKernel(name);
                return kernel;
            }
        }
    }

    public unsafe void Launch<TArgs>(string name, in LaunchConfig config, CudaStream stream, TArgs args) where TArgs : unmanaged =>
        this[name].Launch(config, stream, (nint)(&args));

    public void Dispose() => _module.Dispose();
}
