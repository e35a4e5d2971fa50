using Engine.Reference;

namespace Engine.Tests.Tensors;

public class ViewTests
{
    [Fact]
    public void PermuteTransposeAndContiguousReorderElements()
    {
        var g = TestUtil.Fresh(out var seed);
        var r = RefTensor.Random(g, [2, 3, 5]);
        using var x = r.ToTensor();
        using var p = x.Permute(2, 0, 1);
        Assert.False(p.IsContiguous);
        Assert.Equal(x.Storage, p.Storage);
        TestUtil.AssertClose(r.Permute([2, 0, 1]), p, "permute", seed, 0, 1e-7);
        using var c = p.Contiguous();
        Assert.True(c.IsContiguous);
        TestUtil.AssertClose(r.Permute([2, 0, 1]), c, "contiguous", seed, 0, 1e-7);
        using var t = x.Transpose(0, 2);
        TestUtil.AssertClose(r.Permute([2, 1, 0]), t, "transpose", seed, 0, 1e-7);
    }

    [Fact]
    public void ReshapeIsAViewWhenPossibleAndCopiesOtherwise()
    {
        using var x = Tensor.Arange(24, DType.Float32).Reshape(2, 3, 4);
        using var v = x.Reshape(6, -1);
        Assert.Equal(x.Storage, v.Storage);
        Assert.Equal([6, 4], v.ShapeArray());
        using var p = x.Permute(1, 0, 2); // (3, 2, 4): last dim still contiguous
        using var merged = p.Reshape(3, 8);
        var expected = new List<double>();
        for (var i = 0; i < 3; i++)
            for (var j = 0; j < 2; j++)
                for (var k = 0; k < 4; k++) expected.Add(j * 12 + i * 4 + k);
        Assert.Equal(expected, merged.ToDoubleArray());
        var e = Assert.Throws<InvalidOperationException>(() => x.Permute(2, 1, 0).View(24));
        Assert.Contains("View", e.Message);
        var e2 = Assert.Throws<ArgumentException>(() => x.Reshape(5, -1));
        Assert.Contains("Reshape", e2.Message);
    }

    [Fact]
    public void SliceSelectNarrowShareStorageAndReadTheRightElements()
    {
        using var x = Tensor.Arange(60, DType.Float32).Reshape(3, 4, 5);
        using var s = x.Slice(2, 1, 5, 2); // columns 1, 3
        Assert.Equal([3, 4, 2], s.ShapeArray());
        Assert.Equal(Enumerable.Range(0, 12).SelectMany(r => new double[] { r * 5 + 1, r * 5 + 3 }), s.ToDoubleArray());
        using var sel = x.Select(1, -1); // row 3 of each
        Assert.Equal([3, 5], sel.ShapeArray());
        Assert.Equal(new double[] { 15, 16, 17, 18, 19 }, sel.ToDoubleArray().Take(5));
        using var n = x.Narrow(0, 1, 2);
        Assert.Equal(20.0, n.ToDoubleArray()[0]);
        using var clamped = x.Slice(0, -2, 100);
        Assert.Equal(2, clamped.Size(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => x.Select(1, 4));
    }

    [Fact]
    public void ExpandUnsqueezeSqueezeFlatten()
    {
        using var x = Tensor.From([1f, 2f, 3f], 3, 1);
        using var e = x.Expand(2, 3, 4);
        Assert.Equal([2, 3, 4], e.ShapeArray());
        Assert.Equal(0, e.Strides[0]);
        Assert.Equal(0, e.Strides[2]);
        Assert.Equal(new double[] { 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3 }, e.ToDoubleArray().Take(12));
        using var u = x.Unsqueeze(0);
        Assert.Equal([1, 3, 1], u.ShapeArray());
        using var sq = u.Squeeze();
        Assert.Equal([3], sq.ShapeArray());
        Assert.Throws<ArgumentException>(() => x.Squeeze(0));
        Assert.Throws<ArgumentException>(() => x.Expand(2, 4, 4));
        using var f = e.Flatten(1);
        Assert.Equal([2, 12], f.ShapeArray());
    }

    [Fact]
    public void ViewBackwardsMapGradientsBackOntoTheSource()
    {
        var g = TestUtil.Fresh(out var seed);
        var r = RefTensor.Random(g, [3, 4, 5]);
        using var x = r.ToTensor().RequireGrad();
        // y = sum over a chain of views of w * view; gradient = w mapped back
        using var p = x.Permute(2, 0, 1);              // (5, 3, 4)
        using var s = p.Slice(0, 1, 5, 2);              // rows 1, 3 of dim 0 → (2, 3, 4)
        using var sel = s.Select(2, 3);                 // (2, 3)
        using var un = sel.Unsqueeze(-1);               // (2, 3, 1)
        using var ex = un.Expand(2, 3, 7);              // (2, 3, 7)
        using var re = ex.Reshape(6, 7);
        var w = RefTensor.Random(g, [6, 7]);
        using var wt = w.ToTensor();
        using var prod = re * wt;
        using var total = prod.Sum();
        total.Backward();
        var expected = new double[60];
        for (var a = 0; a < 2; a++)
            for (var b = 0; b < 3; b++)
            {
                double sum = 0;
                for (var k = 0; k < 7; k++) sum += w.Data[(a * 3 + b) * 7 + k];
                var col = 1 + 2 * a; // dim 0 of p = dim 2 of x
                expected[b * 20 + 3 * 5 + col] = sum;
            }
        TestUtil.AssertClose(expected, x.Grad!.ToDoubleArray(), "view chain backward", seed);
    }

    [Fact]
    public void EmptyTensorsReshapeExpandAndReduce()
    {
        using var x = Tensor.Zeros([4, 0]).RequireGrad();
        using var r = x.Reshape(0, 4);
        Assert.Equal([0, 4], r.ShapeArray());
        using var e = Tensor.Zeros([1, 0]).Expand(3, 0);
        Assert.Equal(0, e.Numel);
        using var s = r.Sum();
        Assert.Equal(0.0, s.Item());
        s.Backward();
        Assert.Equal([4, 0], x.Grad!.ShapeArray());
    }
    [Fact]
    public void OverStorageViewsTheElementsItsStridesReachAndKeepsTheStorageAlive()
    {
        var g = TestUtil.Fresh(out var seed);
        var r = RefTensor.Random(g, [3, 5]);
        var x = r.ToTensor();
        // A transposed (5, 3) window over the same memory, then a strided column: both read the source's elements.
        using var t = Tensor.OverStorage(x.Storage, [5, 3], [1, 5], 0, DType.Float32);
        Assert.Same(x.Storage, t.Storage);
        TestUtil.AssertClose(r.Permute([1, 0]), t, "transposed view", seed, 0, 1e-7);
        using var column = Tensor.OverStorage(x.Storage, [3], [5], 2, DType.Float32);
        Assert.Equal(Enumerable.Range(0, 3).Select(i => (double)(float)r.Data[i * 5 + 2]), column.ToDoubleArray());
        // The view holds its own reference: disposing the source leaves the memory readable through it.
        x.Dispose();
        Assert.False(t.Storage.IsReleased);
        TestUtil.AssertClose(r.Permute([1, 0]), t, "view after the source was disposed", seed, 0, 1e-7);
        using var empty = Tensor.OverStorage(t.Storage, [0, 4], [4, 1], 15, DType.Float32);
        Assert.Equal(0, empty.Numel);
    }

    [Fact]
    public void OverStorageRejectsViewsPastTheStorage()
    {
        using var x = Tensor.Zeros([2, 3]);
        var past = Assert.Throws<ArgumentException>(() => Tensor.OverStorage(x.Storage, [2, 3], [3, 1], 1, DType.Float32));
        Assert.Contains("past the storage's 24 bytes", past.Message);
        Assert.Throws<ArgumentException>(() => Tensor.OverStorage(x.Storage, [4], [1], 0, DType.Int64));
        Assert.Throws<ArgumentException>(() => Tensor.OverStorage(x.Storage, [2, 3], [3], 0, DType.Float32));
        Assert.Throws<ArgumentException>(() => Tensor.OverStorage(x.Storage, [2], [-1], 1, DType.Float32));
        Assert.Throws<ArgumentException>(() => Tensor.OverStorage(x.Storage, [2], [1], -1, DType.Float32));
    }
}
