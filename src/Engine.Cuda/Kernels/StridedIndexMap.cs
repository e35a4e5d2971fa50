// Host side of the strided index map in kernels/common.cuh: the by-value kernel argument that lets an
// element-wise kernel read inputs of any strides (views, transposes, stride-0 broadcasts), and the
// layout work done before a launch: NumPy broadcasting of shapes, and merging of dimensions so that a
// dense tensor reaches the kernel as one dimension (no index division per element).
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Engine.Cuda.Kernels;

[InlineArray(StridedIndexMap.MaxDims)]
public struct DimensionArray
{
    private long _element;
}

[InlineArray(StridedIndexMap.MaxOperands * StridedIndexMap.MaxDims)]
public struct OperandStrideArray
{
    private long _element;
}

/// <summary>Mirror of <c>struct strided_index_map</c> (kernels/common.cuh), 272 bytes:
/// count at 0, rank at 8, sizes[8] at 16, strides[3][8] at 80. Strides[k * MaxDims + d] is the element
/// stride of input operand k along dimension d (0 on a broadcast dimension).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct StridedIndexMap
{
    public const int MaxDims = 8;
    public const int MaxOperands = 3;

    public long Count;
    public int Rank;
    public DimensionArray Sizes;
    public OperandStrideArray Strides;

    public readonly long Stride(int operand, int dimension) => Strides[operand * MaxDims + dimension];
}

public static class ElementwiseLayout
{
    /// <summary>Row-major strides of a dense tensor: shape (2, 3, 4) gives (12, 4, 1).</summary>
    public static long[] ContiguousStrides(ReadOnlySpan<long> shape)
    {
        var strides = new long[shape.Length];
        long step = 1;
        for (var d = shape.Length - 1; d >= 0; d--)
        {
            strides[d] = step;
            step *= Math.Max(shape[d], 1);
        }
        return strides;
    }

    /// <summary>NumPy broadcasting: shapes are aligned at their last dimension and each pair of extents
    /// must be equal or contain a 1; (5, 1, 3) with (4, 3) gives (5, 4, 3).</summary>
    public static long[] BroadcastShape(string op, ReadOnlySpan<long> a, ReadOnlySpan<long> b)
    {
        var rank = Math.Max(a.Length, b.Length);
        var shape = new long[rank];
        for (var i = 1; i <= rank; i++)
        {
            var x = i <= a.Length ? a[^i] : 1;
            var y = i <= b.Length ? b[^i] : 1;
            if (x != y && x != 1 && y != 1)
                throw new ArgumentException(
                    $"{op}: shapes {Format(a)} and {Format(b)} cannot be broadcast: dimension {rank - i} (from the left of the " +
                    $"broadcast shape) has extents {x} and {y}; each pair must be equal or contain a 1. Reshape or expand an operand.");
            shape[rank - i] = x == 1 ? y : x;
        }
        return shape;
    }

    /// <summary>Strides that read a tensor of <paramref name="shape"/>/<paramref name="strides"/> as if it had
    /// <paramref name="target"/> shape: right-aligned, stride 0 on added and on size-1 dimensions.</summary>
    public static long[] BroadcastStrides(string op, ReadOnlySpan<long> shape, ReadOnlySpan<long> strides, ReadOnlySpan<long> target)
    {
        if (shape.Length > target.Length)
            throw new ArgumentException($"{op}: shape {Format(shape)} has more dimensions than the target shape {Format(target)}.");
        var result = new long[target.Length];
        var lead = target.Length - shape.Length;
        for (var d = 0; d < shape.Length; d++)
        {
            if (shape[d] == target[lead + d]) result[lead + d] = strides[d];
            else if (shape[d] == 1) result[lead + d] = 0;
            else
                throw new ArgumentException(
                    $"{op}: shape {Format(shape)} cannot be broadcast to {Format(target)} (dimension {d}: {shape[d]} vs {target[lead + d]}).");
        }
        return result;
    }

    /// <summary>Builds the kernel argument for an output of <paramref name="shape"/> (dense, row-major) and
    /// inputs with the given strides (one array per operand, each of shape's rank). Size-1 dimensions are
    /// dropped and neighbouring dimensions merged wherever every operand steps through them as one; the
    /// result must fit in <see cref="StridedIndexMap.MaxDims"/> dimensions. A zero-size shape gives Count 0.</summary>
    public static StridedIndexMap Build(string op, ReadOnlySpan<long> shape, params ReadOnlySpan<long[]> operandStrides)
    {
        if (operandStrides.Length is 0 or > StridedIndexMap.MaxOperands)
            throw new ArgumentException($"{op}: {operandStrides.Length} operands; element-wise kernels take 1..{StridedIndexMap.MaxOperands}.");
        long count = 1;
        foreach (var size in shape)
        {
            if (size < 0) throw new ArgumentException($"{op}: shape {Format(shape)} has a negative extent.");
            count = checked(count * size);
        }
        foreach (var strides in operandStrides)
            if (strides.Length != shape.Length)
                throw new ArgumentException($"{op}: strides {Format(strides)} do not match the rank of shape {Format(shape)}.");

        var map = new StridedIndexMap { Count = count };
        if (count == 0) return map;

        // Merged dimensions, innermost first: (size, stride of each operand).
        var sizes = new List<long>();
        var strideRows = new List<long[]>();
        for (var d = shape.Length - 1; d >= 0; d--)
        {
            if (shape[d] == 1) continue;
            var last = sizes.Count - 1;
            var mergeable = last >= 0;
            for (var k = 0; mergeable && k < operandStrides.Length; k++)
                mergeable = operandStrides[k][d] == strideRows[last][k] * sizes[last];
            if (mergeable)
            {
                sizes[last] *= shape[d];
                continue;
            }
            sizes.Add(shape[d]);
            var row = new long[operandStrides.Length];
            for (var k = 0; k < row.Length; k++) row[k] = operandStrides[k][d];
            strideRows.Add(row);
        }
        if (sizes.Count > StridedIndexMap.MaxDims)
            throw new ArgumentException(
                $"{op}: shape {Format(shape)} with strides {string.Join(" ", operandStrides.ToArray().Select(s => Format(s)))} still has " +
                $"{sizes.Count} dimensions after merging; the kernels take at most {StridedIndexMap.MaxDims}. Make an operand contiguous first.");

        map.Rank = sizes.Count;
        for (var j = 0; j < sizes.Count; j++)
        {
            var d = sizes.Count - 1 - j;
            map.Sizes[d] = sizes[j];
            for (var k = 0; k < operandStrides.Length; k++) map.Strides[k * StridedIndexMap.MaxDims + d] = strideRows[j][k];
        }
        return map;
    }

    public static string Format(ReadOnlySpan<long> values) => $"({string.Join(", ", values.ToArray())})";
}
