// Host mirrors of the by-value argument structs of the backend's kernels (kernels/tensor.cu, reduce.cu,
// softmax.cu, indexing.cu, sort.cu, pooling.cu, normalization.cu). Field order and sizes follow the C
// structs; each .cu file pins its struct's size with a static_assert, and a test compares those sizes with
// these.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Engine.Cuda.Kernels;

namespace Engine.Cuda.Backend;

[InlineArray(StridedIndexMap.MaxDims)]
internal struct DimArray
{
    private long _element;
}

/// <summary>struct tensor_args (344 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct TensorArgs
{
    public ulong Out, A, B, C, Errors;
    public int OutDType, InDType, Op, ErrorOp;
    public double Alpha, Beta;
    public StridedIndexMap Map;
}

/// <summary>struct reduce_args (56 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct ReduceArgs
{
    public ulong X, Values, Indices;
    public long Outer, N, Inner;
    public int Op, Pad;
}

/// <summary>struct softmax_args (56 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct SoftmaxArgs
{
    public ulong X, G, Y;
    public long Outer, N, Inner;
    public int Log, Pad;
}

/// <summary>struct cross_entropy_args (120 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct CrossEntropyArgs
{
    public ulong Logits, Target, Weight, Loss, RowWeight, Lse, GradRow, GradLogits, Errors;
    public long Rows, Classes, IgnoreIndex, GradStride;
    public double Smoothing;
    public int ErrorOp, Pad;
}

/// <summary>struct index_args (320 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IndexArgs
{
    public ulong Out, Src, Index, Errors;
    public long Count, DimSize;
    public int Rank, Dim, DType, ErrorOp;
    public DimArray Shape, OutStrides, SrcStrides, IndexStrides;
}

/// <summary>struct nonzero_args (216 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NonzeroArgs
{
    public ulong X, BlockCounts, BlockOffsets, Total, Coords, Errors;
    public long Count, Chunk, Rows;
    public int Rank, DType, Blocks, ErrorOp;
    public DimArray Shape, Strides;
}

/// <summary>struct sort_args (104 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct SortArgs
{
    public ulong X, Values, Indices, Keys, Positions;
    public long Lines, N, Inner, Padded, M, Stage, Step;
    public int IsFloat, Descending;
}

/// <summary>struct pool_args (88 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct PoolArgs
{
    public ulong X, Y, Indices, Gy, Gx;
    public long Planes;
    public int H, W, OH, OW, KH, KW, SH, SW, PH, PW;
}

/// <summary>struct norm_args (136 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NormArgs
{
    public ulong X, Dy, Weight, Bias, Y, Dx, Mean, Rstd, Variance, Dweight, Dbias, Sums;
    public long N, C, S;
    public int Groups, Training;
    public double Eps;
    public int Relu, Padding;
}
