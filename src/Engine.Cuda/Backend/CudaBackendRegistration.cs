// Makes the CUDA backend the one Engine.Core uses for cuda:N tensors (Backends.RegisterCuda), where a device
// exists. Called once by programs that can run on a GPU (the engine CLI) before they touch a cuda device.
namespace Engine.Cuda.Backend;

public static class CudaBackendRegistration
{
    private static readonly Lock Gate = new();

    /// <summary>Registers a factory that opens device N and builds its backend on first use. Returns false, with
    /// the reason, where no CUDA device is available (nothing is registered then).</summary>
    public static bool TryRegister(out string reason, CudaBackendOptions? options = null)
    {
        options?.Validate();
        lock (Gate)
        {
            if (!CudaDevice.IsAvailable)
            {
                reason = CudaDevice.UnavailableReason;
                return false;
            }
            if (!Backends.IsCudaRegistered) Backends.RegisterCuda(ordinal => new CudaBackend(CudaDevice.Open(ordinal), options));
            reason = "";
            return true;
        }
    }
}
