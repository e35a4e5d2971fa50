// The exceptions every native status of the CUDA driver API, NVRTC, cuBLAS and cuDNN turns into. Each
// names the call that failed, the status name and the library's own description of it.
namespace Engine.Cuda.Interop;

/// <summary>A CUDA driver API call returned a status other than CUDA_SUCCESS.</summary>
public sealed class CudaException : Exception
{
    internal CudaException(string call, CUresult status, string name, string description, string? context)
        : base($"{call} failed with {name} ({(int)status}): {description}" + (context is null ? "" : $" [{context}]"))
    {
        Call = call;
        Status = (int)status;
        StatusName = name;
    }

    public string Call { get; }
    public int Status { get; }
    public string StatusName { get; }
}

/// <summary>An NVRTC call failed, or a compilation produced errors (or warnings, where they count as
/// errors). <see cref="Log"/> holds the compiler's log, also quoted in the message.</summary>
public sealed class NvrtcException : Exception
{
    internal NvrtcException(string call, string statusName, string message, string log = "", string? fileName = null)
        : base(message)
    {
        Call = call;
        StatusName = statusName;
        Log = log;
        FileName = fileName;
    }

    public string Call { get; }
    public string StatusName { get; }
    public string Log { get; }
    public string? FileName { get; }
}

/// <summary>A cuBLAS call returned a status other than CUBLAS_STATUS_SUCCESS.</summary>
public sealed class CublasException : Exception
{
    internal CublasException(string call, int status, string name, string description, string? context)
        : base($"{call} failed with {name} ({status}): {description}" + (context is null ? "" : $" [{context}]"))
    {
        Call = call;
        Status = status;
        StatusName = name;
    }

    public string Call { get; }
    public int Status { get; }
    public string StatusName { get; }
}

/// <summary>A cuDNN call returned a status other than CUDNN_STATUS_SUCCESS; the message holds cuDNN's error
/// string and, where cuDNN 9 recorded one, its detailed last-error message.</summary>
public sealed class CudnnException : Exception
{
    internal CudnnException(string call, int status, string name, string detail, string? context)
        : base($"{call} failed with {name} ({status})" + (detail.Length == 0 ? "" : $": {detail}") + (context is null ? "" : $" [{context}]"))
    {
        Call = call;
        Status = status;
        StatusName = name;
    }

    public string Call { get; }
    public int Status { get; }
    public string StatusName { get; }
}
