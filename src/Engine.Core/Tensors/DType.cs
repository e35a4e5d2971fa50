// Element types of tensors. BFloat16 is reserved for mixed precision on the GPU; no op accepts it yet.
namespace Engine;

public enum DType
{
    Float32,
    Int32,
    Int64,
    UInt8,
    BFloat16,
}

public static class DTypeExtensions
{
    public static int ElementSize(this DType dtype) => dtype switch
    {
        DType.Float32 or DType.Int32 => 4,
        DType.Int64 => 8,
        DType.UInt8 => 1,
        DType.BFloat16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
    };

    public static string Name(this DType dtype) => dtype switch
    {
        DType.Float32 => "float32",
        DType.Int32 => "int32",
        DType.Int64 => "int64",
        DType.UInt8 => "uint8",
        DType.BFloat16 => "bfloat16",
        _ => dtype.ToString(),
    };

    public static bool IsFloatingPoint(this DType dtype) => dtype is DType.Float32 or DType.BFloat16;
}
