// Makes the CUDA backends the ones cuda:N tensors use: Engine.Core's CudaBackend (CudaBackendRegistration) plus the
// detection and long-tail backends built on it. Called once by programs that run on a GPU, before they touch a
// cuda device.
using Engine.Cuda.Backend;
using Engine.Detection;
using Engine.LongTail;

namespace Engine.Cuda.Ops;

public static class CudaOpsRegistration
{
    /// <summary>Registers the CUDA backend, detection backend and long-tail backend factories for DeviceKind.Cuda.
    /// Returns false, with the reason, where no CUDA device is available (nothing is registered then).</summary>
    public static bool TryRegister(out string reason, CudaBackendOptions? options = null)
    {
        if (!CudaBackendRegistration.TryRegister(out reason, options)) return false;
        DetectionBackends.Register(DeviceKind.Cuda, ordinal => new CudaDetectionBackend(CudaTensors.BackendFor(ordinal)));
        LongTailBackends.Register(DeviceKind.Cuda, ordinal => new CudaLongTailBackend(CudaTensors.BackendFor(ordinal)));
        return true;
    }
}
