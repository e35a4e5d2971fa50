// A plain double-precision tensor for references: row-major data and a shape, with broadcasting written
// the obvious way (an index loop per output element). Slow on purpose; tests, selftest and benchmarks
// compare the engine's ops against computations built from it.
namespace Engine.Reference;

public sealed record RefTensor(int[] Shape, double[] Data)
{
    public long Numel => Data.Length;

    public static RefTensor From(Tensor t) => new(t.ShapeArray(), t.ToDoubleArray());

    public Tensor ToTensor(DType dtype = DType.Float32) => Tensor.FromDoubles(Data, Shape, dtype);

    public static RefTensor Zeros(params int[] shape) => new(shape, new double[ShapeUtil.Numel(shape)]);

    /// <summary>Uniform values in [low, high), rounded to float32 so that the engine's float32 inputs hold exactly
    /// the values the double reference sees.</summary>
    public static RefTensor Random(Generator g, int[] shape, double low = -1, double high = 1)
    {
        var d = new double[ShapeUtil.Numel(shape)];
        for (var i = 0; i < d.Length; i++) d[i] = (float)(low + (high - low) * g.NextDouble());
        return new RefTensor(shape, d);
    }

    public RefTensor Map(Func<double, double> f) => new(Shape, Data.Select(f).ToArray());

    /// <summary>Element-wise f(a, b) with NumPy broadcasting.</summary>
    public static RefTensor Zip(RefTensor a, RefTensor b, Func<double, double, double> f)
    {
        var shape = ShapeUtil.Broadcast(a.Shape, b.Shape, "reference");
        var result = new double[ShapeUtil.Numel(shape)];
        var idx = new int[shape.Length];
        for (var i = 0; i < result.Length; i++)
        {
            Unravel(i, shape, idx);
            result[i] = f(a.Data[a.BroadcastIndex(idx)], b.Data[b.BroadcastIndex(idx)]);
        }
        return new RefTensor(shape, result);
    }

    /// <summary>Flat index into this tensor of the broadcast multi-index idx (of a possibly larger rank).</summary>
    public long BroadcastIndex(ReadOnlySpan<int> idx)
    {
        long flat = 0;
        var lead = idx.Length - Shape.Length;
        for (var d = 0; d < Shape.Length; d++) flat = flat * Shape[d] + (Shape[d] == 1 ? 0 : idx[lead + d]);
        return flat;
    }

    public static void Unravel(long flat, ReadOnlySpan<int> shape, Span<int> idx)
    {
        for (var d = shape.Length - 1; d >= 0; d--)
        {
            idx[d] = (int)(flat % shape[d]);
            flat /= shape[d];
        }
    }

    public static long Ravel(ReadOnlySpan<int> idx, ReadOnlySpan<int> shape)
    {
        long flat = 0;
        for (var d = 0; d < shape.Length; d++) flat = flat * shape[d] + idx[d];
        return flat;
    }

    /// <summary>Sum of a broadcast-shaped tensor down to <paramref name="shape"/> (adjoint of broadcasting).</summary>
    public RefTensor SumTo(int[] shape)
    {
        var result = new double[ShapeUtil.Numel(shape)];
        var target = new RefTensor(shape, result);
        var idx = new int[Shape.Length];
        for (var i = 0; i < Data.Length; i++)
        {
            Unravel(i, Shape, idx);
            result[target.BroadcastIndex(idx)] += Data[i];
        }
        return target;
    }

    /// <summary>Reduce over the given dims with f over the values of each slice (keepDim shape).</summary>
    public RefTensor Reduce(int[] dims, Func<IReadOnlyList<double>, double> f)
    {
        var outShape = (int[])Shape.Clone();
        foreach (var d in dims) outShape[d] = 1;
        var groups = new List<double>[ShapeUtil.Numel(outShape)];
        for (var i = 0; i < groups.Length; i++) groups[i] = [];
        var idx = new int[Shape.Length];
        var outRef = new RefTensor(outShape, []);
        for (var i = 0; i < Data.Length; i++)
        {
            Unravel(i, Shape, idx);
            groups[outRef.BroadcastIndex(idx)].Add(Data[i]);
        }
        return new RefTensor(outShape, groups.Select(g => f(g)).ToArray());
    }

    /// <summary>Elements in row-major order of the permuted tensor.</summary>
    public RefTensor Permute(int[] dims)
    {
        var shape = dims.Select(d => Shape[d]).ToArray();
        var result = new double[Data.Length];
        var idx = new int[Shape.Length];
        var src = new int[Shape.Length];
        for (var i = 0; i < result.Length; i++)
        {
            Unravel(i, shape, idx);
            for (var k = 0; k < dims.Length; k++) src[dims[k]] = idx[k];
            result[i] = Data[Ravel(src, Shape)];
        }
        return new RefTensor(shape, result);
    }

    public double Dot(RefTensor other)
    {
        if (other.Data.Length != Data.Length) throw new ArgumentException("Dot: sizes differ.");
        double s = 0;
        for (var i = 0; i < Data.Length; i++) s += Data[i] * other.Data[i];
        return s;
    }
}
