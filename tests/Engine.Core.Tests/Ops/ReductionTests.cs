using Engine.Reference;

namespace Engine.Tests.Ops;

public class ReductionTests
{
    private static readonly int[][] DimSets = [[0], [1], [2], [0, 2], [1, 2], [0, 1, 2], []];

    private static int[] Drop(int[] shape, int[] dims, bool keep) =>
        keep ? shape.Select((s, i) => dims.Contains(i) ? 1 : s).ToArray() : shape.Where((_, i) => !dims.Contains(i)).ToArray();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SumAndMeanMatchReferenceOverEveryDimSet(bool keepDim)
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var dims in DimSets)
        {
            var shape = TestUtil.RandomShape(g, 3, 9);
            var r = RefTensor.Random(g, shape);
            var all = dims.Length == 0 ? [0, 1, 2] : dims;
            using var x = TestUtil.NonContiguous(r);
            using var s = x.Sum(dims, keepDim);
            using var m = x.Mean(dims, keepDim);
            var rs = r.Reduce(all, v => v.Sum());
            var rm = r.Reduce(all, v => v.Average());
            var outShape = Drop(shape, all, keepDim);
            TestUtil.AssertClose(new RefTensor(outShape, rs.Data), s, $"sum dims=[{string.Join(",", dims)}]", seed);
            TestUtil.AssertClose(new RefTensor(outShape, rm.Data), m, $"mean dims=[{string.Join(",", dims)}]", seed);
        }
    }

    [Fact]
    public void LargeSumsAccumulateWithoutFloatDrift()
    {
        var g = TestUtil.Fresh(out var seed);
        var r = RefTensor.Random(g, [3, 300_001], 0, 1);
        using var x = r.ToTensor();
        using var s = x.Sum(1);
        // float accumulation of 3e5 values in [0,1) would be off by ~1e-3 relative; the engine sums in double
        TestUtil.AssertClose(r.Reduce([1], v => v.Sum()).Data, s.ToDoubleArray(), "sum 300001", seed, 1e-3, 1e-6);
    }

    [Fact]
    public void SumBackwardBroadcastsTheGradientAndMeanDividesIt()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var dims in DimSets)
        {
            var shape = TestUtil.RandomShape(g, 3, 6);
            var all = dims.Length == 0 ? [0, 1, 2] : dims;
            var r = RefTensor.Random(g, shape);
            using var x = r.ToTensor().RequireGrad();
            using var s = x.Mean(dims);
            var u = RefTensor.Random(g, s.ShapeArray());
            using var gu = u.ToTensor();
            s.Backward(gu);
            var count = all.Aggregate(1, (p, d) => p * shape[d]);
            var kept = new RefTensor(Drop(shape, all, true), u.Data);
            var expected = RefTensor.Zip(kept, RefTensor.Zeros(shape), (a, _) => a / count);
            TestUtil.AssertClose(expected, x.Grad!, $"mean backward dims=[{string.Join(",", dims)}]", seed);

            // reference VJP of mean passes gradcheck
            var result = Gradcheck.Check(
                inp => new RefTensor(shape, inp[0]).Reduce(all, v => v.Average()).Data,
                (inp, uu) => [RefTensor.Zip(new RefTensor(Drop(shape, all, true), uu), RefTensor.Zeros(shape), (a, _) => a / count).Data],
                [r.Data.ToArray()], g);
            Assert.True(result.Passed, $"{result} (seed {seed})");
        }
    }

    [Fact]
    public void MaxMinArgmaxPickTheFirstExtremeAndRouteGradients()
    {
        var g = TestUtil.Fresh(out var seed);
        for (var dim = 0; dim < 3; dim++)
        {
            var shape = TestUtil.RandomShape(g, 3, 7);
            // few distinct values so ties are frequent
            var r = RefTensor.Random(g, shape).Map(v => Math.Round(v * 2));
            using var x = r.ToTensor().RequireGrad();
            var (mx, ix) = x.Max(dim);
            var (mn, iN) = x.Min(dim, keepDim: true);
            using (mx) using (ix) using (mn) using (iN)
            {
                var idx = new int[3];
                var n = shape[dim];
                var outShape = Drop(shape, [dim], true);
                var emax = new double[ShapeUtil.Numel(outShape)];
                var eidx = new double[emax.Length];
                var emin = new double[emax.Length];
                var eidxMin = new double[emax.Length];
                for (var o = 0; o < emax.Length; o++)
                {
                    RefTensor.Unravel(o, outShape, idx);
                    double best = double.NegativeInfinity, worst = double.PositiveInfinity;
                    for (var k = 0; k < n; k++)
                    {
                        idx[dim] = k;
                        var v = r.Data[RefTensor.Ravel(idx, shape)];
                        if (v > best) { best = v; eidx[o] = k; }
                        if (v < worst) { worst = v; eidxMin[o] = k; }
                    }
                    (emax[o], emin[o]) = (best, worst);
                }
                TestUtil.AssertClose(emax, mx.ToDoubleArray(), $"max dim {dim}", seed, 0, 0);
                TestUtil.AssertClose(eidx, ix.ToDoubleArray(), $"argmax dim {dim}", seed, 0, 0);
                TestUtil.AssertClose(emin, mn.ToDoubleArray(), $"min dim {dim}", seed, 0, 0);
                TestUtil.AssertClose(eidxMin, iN.ToDoubleArray(), $"argmin dim {dim}", seed, 0, 0);
                using var am = x.ArgMax(dim);
                Assert.Equal(eidx, am.ToDoubleArray());

                using var s = mx.Sum();
                s.Backward();
                var grad = new double[r.Data.Length];
                for (var o = 0; o < emax.Length; o++)
                {
                    RefTensor.Unravel(o, outShape, idx);
                    idx[dim] = (int)eidx[o];
                    grad[RefTensor.Ravel(idx, shape)] = 1;
                }
                TestUtil.AssertClose(grad, x.Grad!.ToDoubleArray(), $"max backward dim {dim}", seed, 0, 0);
            }
        }
    }

    [Fact]
    public void ReducingAnEmptyDimIsAClearError()
    {
        using var x = Tensor.Zeros([3, 0]);
        var e = Assert.Throws<ArgumentException>(() => x.Max(1));
        Assert.Contains("max", e.Message);
        using var s = x.Sum(1);
        Assert.Equal([0.0, 0.0, 0.0], s.ToDoubleArray());
    }
}
