// Concatenation, stacking and slicing written from their index definitions in double, with their
// vector-Jacobian products: the adjoint of a concatenation cuts the gradient into the inputs' slabs, the
// adjoint of taking a slab pads the gradient with zeros.
namespace Engine.Reference;

public static class ConcatReference
{
    /// <summary>y[i] = xs[t][i with i[dim] - offset(t)] where offset(t) ≤ i[dim] &lt; offset(t) + xs[t].size(dim).</summary>
    public static RefTensor Cat(IReadOnlyList<RefTensor> xs, int dim)
    {
        var shape = (int[])xs[0].Shape.Clone();
        shape[dim] = xs.Sum(x => x.Shape[dim]);
        var y = RefTensor.Zeros(shape);
        var idx = new int[shape.Length];
        for (long p = 0; p < y.Numel; p++)
        {
            RefTensor.Unravel(p, shape, idx);
            var t = 0;
            while (idx[dim] >= xs[t].Shape[dim])
            {
                idx[dim] -= xs[t].Shape[dim];
                t++;
            }
            y.Data[p] = xs[t].Data[RefTensor.Ravel(idx, xs[t].Shape)];
        }
        return y;
    }

    /// <summary>Gradients of Cat: gx[t][i] = g[i with i[dim] + offset(t)].</summary>
    public static RefTensor[] CatBackward(RefTensor g, IReadOnlyList<int[]> shapes, int dim)
    {
        var result = new RefTensor[shapes.Count];
        var offset = 0;
        for (var t = 0; t < shapes.Count; t++)
        {
            result[t] = Narrow(g, dim, offset, shapes[t][dim]);
            offset += shapes[t][dim];
        }
        return result;
    }

    /// <summary>y[i] = xs[i[dim]][i without dim].</summary>
    public static RefTensor Stack(IReadOnlyList<RefTensor> xs, int dim)
    {
        var inner = xs[0].Shape;
        var shape = inner.Take(dim).Append(xs.Count).Concat(inner.Skip(dim)).ToArray();
        var y = RefTensor.Zeros(shape);
        var idx = new int[shape.Length];
        for (long p = 0; p < y.Numel; p++)
        {
            RefTensor.Unravel(p, shape, idx);
            var src = idx.Where((_, k) => k != dim).ToArray();
            y.Data[p] = xs[idx[dim]].Data[RefTensor.Ravel(src, inner)];
        }
        return y;
    }

    /// <summary>Gradients of Stack: gx[t][i] = g[i with t inserted at dim].</summary>
    public static RefTensor[] StackBackward(RefTensor g, int count, int dim)
    {
        var inner = g.Shape.Where((_, k) => k != dim).ToArray();
        var result = new RefTensor[count];
        var idx = new int[inner.Length];
        for (var t = 0; t < count; t++)
        {
            result[t] = RefTensor.Zeros(inner);
            for (long p = 0; p < result[t].Numel; p++)
            {
                RefTensor.Unravel(p, inner, idx);
                var full = idx.Take(dim).Append(t).Concat(idx.Skip(dim)).ToArray();
                result[t].Data[p] = g.Data[RefTensor.Ravel(full, g.Shape)];
            }
        }
        return result;
    }

    /// <summary>y[i] = x[i with i[dim] + start], y.size(dim) = length.</summary>
    public static RefTensor Narrow(RefTensor x, int dim, int start, int length)
    {
        var shape = (int[])x.Shape.Clone();
        shape[dim] = length;
        var y = RefTensor.Zeros(shape);
        var idx = new int[shape.Length];
        for (long p = 0; p < y.Numel; p++)
        {
            RefTensor.Unravel(p, shape, idx);
            idx[dim] += start;
            y.Data[p] = x.Data[RefTensor.Ravel(idx, x.Shape)];
        }
        return y;
    }

    /// <summary>Gradient of Narrow: g placed at offset start along dim in zeros of the input's shape.</summary>
    public static RefTensor NarrowBackward(RefTensor g, int[] inputShape, int dim, int start)
    {
        var gx = RefTensor.Zeros(inputShape);
        var idx = new int[g.Shape.Length];
        for (long p = 0; p < g.Numel; p++)
        {
            RefTensor.Unravel(p, g.Shape, idx);
            idx[dim] += start;
            gx.Data[RefTensor.Ravel(idx, inputShape)] += g.Data[p];
        }
        return gx;
    }

    /// <summary>Consecutive slabs of the given sizes along dim.</summary>
    public static RefTensor[] Split(RefTensor x, int[] sizes, int dim)
    {
        var result = new RefTensor[sizes.Length];
        var start = 0;
        for (var i = 0; i < sizes.Length; i++)
        {
            result[i] = Narrow(x, dim, start, sizes[i]);
            start += sizes[i];
        }
        return result;
    }

    /// <summary>Gradient of Split: the sum of each piece's padded gradient (null pieces received none).</summary>
    public static RefTensor SplitBackward(IReadOnlyList<RefTensor?> grads, int[] sizes, int[] inputShape, int dim)
    {
        var gx = RefTensor.Zeros(inputShape);
        var start = 0;
        for (var i = 0; i < sizes.Length; i++)
        {
            if (grads[i] is { } g)
            {
                var padded = NarrowBackward(g, inputShape, dim, start);
                for (var p = 0; p < gx.Data.Length; p++) gx.Data[p] += padded.Data[p];
            }
            start += sizes[i];
        }
        return gx;
    }
}
