// Host-side layout work of the element-wise launchers, which runs without a GPU: the byte layout of
// the kernel argument, NumPy broadcasting, and dimension merging, which must leave every element's
// input offsets unchanged.
using System.Runtime.CompilerServices;
using Engine.Cuda.Kernels;

namespace Engine.Cuda.Tests.Kernels;

public sealed class StridedIndexMapTests
{
    [Fact]
    public void LayoutMatchesTheKernelStruct()
    {
        // kernels/common.cuh static_asserts sizeof(strided_index_map) == 272 with 8-byte alignment, which puts
        // count at 0, rank at 8, sizes at 16 and strides at 16 + 8·8 = 80.
        var map = new StridedIndexMap();
        Assert.Equal(272, Unsafe.SizeOf<StridedIndexMap>());
        Assert.Equal(8, (int)Unsafe.ByteOffset(ref Unsafe.As<long, byte>(ref map.Count), ref Unsafe.As<int, byte>(ref map.Rank)));
        Assert.Equal(16, (int)Unsafe.ByteOffset(ref Unsafe.As<long, byte>(ref map.Count), ref Unsafe.As<DimensionArray, byte>(ref map.Sizes)));
        Assert.Equal(80, (int)Unsafe.ByteOffset(ref Unsafe.As<long, byte>(ref map.Count), ref Unsafe.As<OperandStrideArray, byte>(ref map.Strides)));
        var header = File.ReadAllText(Path.Combine(Repository.Root, "kernels", "common.cuh"));
        Assert.Contains("sizeof(strided_index_map) == 272", header);
        Assert.Contains($"#define ENGINE_MAX_DIMS {StridedIndexMap.MaxDims}", header);
        Assert.Contains($"#define ENGINE_MAX_OPERANDS {StridedIndexMap.MaxOperands}", header);
    }

    [Theory]
    [InlineData(new long[] { 5, 1, 3 }, new long[] { 4, 3 }, new long[] { 5, 4, 3 })]
    [InlineData(new long[] { }, new long[] { 2, 3 }, new long[] { 2, 3 })]
    [InlineData(new long[] { 0, 1 }, new long[] { 1, 4 }, new long[] { 0, 4 })]
    [InlineData(new long[] { 7 }, new long[] { 7 }, new long[] { 7 })]
    [InlineData(new long[] { 2, 1, 1 }, new long[] { 1, 6, 1 }, new long[] { 2, 6, 1 })]
    public void BroadcastShapeFollowsNumPyRules(long[] a, long[] b, long[] expected)
    {
        Assert.Equal(expected, ElementwiseLayout.BroadcastShape("add_forward_kernel", a, b));
        Assert.Equal(expected, ElementwiseLayout.BroadcastShape("add_forward_kernel", b, a));
    }

    [Fact]
    public void IncompatibleShapesNameTheOpAndBothShapes()
    {
        var e = Assert.Throws<ArgumentException>(() => ElementwiseLayout.BroadcastShape("mul_forward_kernel", [2, 3], [4, 3]));
        Assert.Contains("mul_forward_kernel", e.Message);
        Assert.Contains("(2, 3)", e.Message);
        Assert.Contains("(4, 3)", e.Message);
    }

    [Fact]
    public void BroadcastStridesAreZeroOnAddedAndUnitDimensions()
    {
        Assert.Equal(new long[] { 0, 0, 1 }, ElementwiseLayout.BroadcastStrides("op", [1, 3], [3, 1], [5, 4, 3]));
        Assert.Equal(new long[] { 4, 0, 1 }, ElementwiseLayout.BroadcastStrides("op", [5, 1, 3], [4, 3, 1], [5, 4, 3]));
    }

    [Fact]
    public void DenseOperandsMergeToOneDimension()
    {
        long[] shape = [3, 5, 7, 2];
        var dense = ElementwiseLayout.ContiguousStrides(shape);
        var map = ElementwiseLayout.Build("op", shape, dense, dense);
        Assert.Equal(1, map.Rank);
        Assert.Equal(3 * 5 * 7 * 2, map.Count);
        Assert.Equal(map.Count, map.Sizes[0]);
        Assert.Equal(1, map.Stride(0, 0));
        Assert.Equal(1, map.Stride(1, 0));
    }

    [Fact]
    public void EmptyAndScalarShapes()
    {
        var empty = ElementwiseLayout.Build("op", [4, 0, 3], [0, 3, 1]);
        Assert.Equal(0, empty.Count);
        var scalar = ElementwiseLayout.Build("op", [], Array.Empty<long>());
        Assert.Equal(1, scalar.Count);
        Assert.Equal(0, scalar.Rank);
        var ones = ElementwiseLayout.Build("op", [1, 1, 1], [5, 9, 2]);
        Assert.Equal(1, ones.Count);
        Assert.Equal(0, ones.Rank);
    }

    [Fact]
    public void TooManyUnmergeableDimensionsAreRejected()
    {
        // 9 dimensions of extent 2 with strides that never chain (each stride 3x the next inner one, not 2x).
        var shape = Enumerable.Repeat(2L, 9).ToArray();
        var strides = Enumerable.Range(0, 9).Select(d => (long)Math.Pow(3, 8 - d)).ToArray();
        var e = Assert.Throws<ArgumentException>(() => ElementwiseLayout.Build("exp_forward_kernel", shape, strides));
        Assert.Contains("exp_forward_kernel", e.Message);
        Assert.Contains("9 dimensions", e.Message);
    }

    [Fact]
    public void MergingKeepsEveryOffset()
    {
        // Random ranks 0..10, extents 1..4 (at most 2048 elements), and per operand either dense, permuted, broadcast (stride 0 on
        // random dimensions) or negatively strided layouts; the merged map must give each output element the
        // offsets a naive walk over the original shape gives.
        var random = new SeededRandom();
        for (var trial = 0; trial < 400; trial++)
        {
            var rank = random.Random.Next(0, 11);
            var shape = Enumerable.Range(0, rank).Select(_ => (long)random.Random.Next(1, 5)).ToArray();
            while (shape.Aggregate(1L, (p, s) => p * s) > 2048) shape[random.Random.Next(rank)] = 1;   // keeps the walk quick
            var operands = random.Random.Next(1, StridedIndexMap.MaxOperands + 1);
            var strides = Enumerable.Range(0, operands).Select(_ => RandomStrides(random.Random, shape)).ToArray();
            StridedIndexMap map;
            try
            {
                map = ElementwiseLayout.Build("op", shape, strides);
            }
            catch (ArgumentException) when (rank > StridedIndexMap.MaxDims)
            {
                continue;   // more than 8 dimensions left after merging is rejected by design
            }
            var count = shape.Aggregate(1L, (p, s) => p * s);
            Assert.Equal(count, map.Count);
            Assert.InRange(map.Rank, 0, Math.Min(rank, StridedIndexMap.MaxDims));
            var index = new long[rank];
            for (long i = 0; i < count; i++)
            {
                for (var k = 0; k < operands; k++)
                {
                    long expected = 0;
                    for (var d = 0; d < rank; d++) expected += index[d] * strides[k][d];
                    Assert.True(expected == MergedOffset(map, k, i),
                        $"trial {trial}: shape {ElementwiseLayout.Format(shape)}, operand {k} strides {ElementwiseLayout.Format(strides[k])}, " +
                        $"element {i}: expected offset {expected}, merged map gives {MergedOffset(map, k, i)} (seed {random.Seed})");
                }
                for (var d = rank - 1; d >= 0; d--)
                {
                    if (++index[d] < shape[d]) break;
                    index[d] = 0;
                }
            }
        }
    }

    /// <summary>The offset of input operand k for output element i, decomposing i over the merged sizes.</summary>
    private static long MergedOffset(StridedIndexMap map, int k, long i)
    {
        long offset = 0, rest = i;
        for (var d = map.Rank - 1; d >= 0; d--)
        {
            offset += rest % map.Sizes[d] * map.Stride(k, d);
            rest /= map.Sizes[d];
        }
        return offset;
    }

    private static long[] RandomStrides(Random random, long[] shape)
    {
        var dense = ElementwiseLayout.ContiguousStrides(shape);
        switch (random.Next(4))
        {
            case 0:
                return dense;
            case 1:
            {
                // A permutation of the dimensions of a dense tensor (a transpose view).
                var order = Enumerable.Range(0, shape.Length).OrderBy(_ => random.Next()).ToArray();
                var permutedShape = order.Select(d => shape[d]).ToArray();
                var permutedDense = ElementwiseLayout.ContiguousStrides(permutedShape);
                var strides = new long[shape.Length];
                for (var j = 0; j < order.Length; j++) strides[order[j]] = permutedDense[j];
                return strides;
            }
            case 2:
                return dense.Select(s => random.Next(3) == 0 ? 0 : s).ToArray();
            default:
                return dense.Select(s => random.Next(2) == 0 ? -s : s).ToArray();
        }
    }
}
