// Index selection, gather, scatter-add and nonzero written from their index definitions in double, with
// their vector-Jacobian products. Index tensors are RefTensors holding whole numbers; every index must lie
// in [0, size) of the dim it addresses.
namespace Engine.Reference;

public static class IndexingReference
{
    private static int At(RefTensor index, long p) => checked((int)index.Data[p]);

    /// <summary>y[i] = x[i with i[dim] := index[i[dim]]]; index is 1-D.</summary>
    public static RefTensor IndexSelect(RefTensor x, int dim, RefTensor index)
    {
        var shape = (int[])x.Shape.Clone();
        shape[dim] = index.Data.Length;
        var y = RefTensor.Zeros(shape);
        var idx = new int[shape.Length];
        for (long p = 0; p < y.Numel; p++)
        {
            RefTensor.Unravel(p, shape, idx);
            idx[dim] = At(index, idx[dim]);
            y.Data[p] = x.Data[RefTensor.Ravel(idx, x.Shape)];
        }
        return y;
    }

    /// <summary>Gradient of IndexSelect: gx[i with i[dim] := index[j]] += g[i with i[dim] := j] (repeats accumulate).</summary>
    public static RefTensor IndexSelectBackward(RefTensor g, int[] inputShape, int dim, RefTensor index)
    {
        var gx = RefTensor.Zeros(inputShape);
        var idx = new int[g.Shape.Length];
        for (long p = 0; p < g.Numel; p++)
        {
            RefTensor.Unravel(p, g.Shape, idx);
            idx[dim] = At(index, idx[dim]);
            gx.Data[RefTensor.Ravel(idx, inputShape)] += g.Data[p];
        }
        return gx;
    }

    /// <summary>y[p] = x[p with p[dim] := index[p]] for every position p of index.</summary>
    public static RefTensor Gather(RefTensor x, int dim, RefTensor index)
    {
        var y = RefTensor.Zeros(index.Shape);
        var idx = new int[index.Shape.Length];
        for (long p = 0; p < y.Numel; p++)
        {
            RefTensor.Unravel(p, index.Shape, idx);
            idx[dim] = At(index, p);
            y.Data[p] = x.Data[RefTensor.Ravel(idx, x.Shape)];
        }
        return y;
    }

    /// <summary>Gradient of Gather (and the forward of scatter-add into zeros): gx[p with p[dim] := index[p]] += g[p].</summary>
    public static RefTensor GatherBackward(RefTensor g, int[] inputShape, int dim, RefTensor index)
    {
        var gx = RefTensor.Zeros(inputShape);
        var idx = new int[index.Shape.Length];
        for (long p = 0; p < index.Numel; p++)
        {
            RefTensor.Unravel(p, index.Shape, idx);
            var gAt = RefTensor.Ravel(idx, g.Shape);
            idx[dim] = At(index, p);
            gx.Data[RefTensor.Ravel(idx, inputShape)] += g.Data[gAt];
        }
        return gx;
    }

    /// <summary>y = x, then y[p with p[dim] := index[p]] += src[p] for every position p of index.</summary>
    public static RefTensor ScatterAdd(RefTensor x, int dim, RefTensor index, RefTensor src)
    {
        var added = GatherBackward(src, x.Shape, dim, index);
        return new RefTensor(x.Shape, x.Data.Select((v, i) => v + added.Data[i]).ToArray());
    }

    /// <summary>Gradients of ScatterAdd: g for x; for src, g[p with p[dim] := index[p]] at positions p of index, 0 elsewhere.</summary>
    public static (RefTensor Dx, RefTensor Dsrc) ScatterAddBackward(RefTensor g, int dim, RefTensor index, int[] srcShape)
    {
        var dsrc = RefTensor.Zeros(srcShape);
        var idx = new int[index.Shape.Length];
        for (long p = 0; p < index.Numel; p++)
        {
            RefTensor.Unravel(p, index.Shape, idx);
            var srcAt = RefTensor.Ravel(idx, srcShape);
            idx[dim] = At(index, p);
            dsrc.Data[srcAt] = g.Data[RefTensor.Ravel(idx, g.Shape)];
        }
        return (g, dsrc);
    }

    /// <summary>(N, rank) coordinates of the elements that are not 0 (NaN included), in row-major order.</summary>
    public static RefTensor Nonzero(RefTensor x)
    {
        var rank = x.Shape.Length;
        var rows = new List<double>();
        var count = 0;
        var idx = new int[rank];
        for (long p = 0; p < x.Numel; p++)
        {
            if (x.Data[p] == 0) continue;
            RefTensor.Unravel(p, x.Shape, idx);
            rows.AddRange(idx.Select(v => (double)v));
            count++;
        }
        return new RefTensor([count, rank], [.. rows]);
    }

    /// <summary>x at the positions of the broadcast shape where mask is nonzero, row-major, as 1-D.</summary>
    public static RefTensor MaskedSelect(RefTensor x, RefTensor mask)
    {
        var shape = ShapeUtil.Broadcast(x.Shape, mask.Shape, "reference masked_select");
        var values = new List<double>();
        var idx = new int[shape.Length];
        for (long p = 0; p < ShapeUtil.Numel(shape); p++)
        {
            RefTensor.Unravel(p, shape, idx);
            if (mask.Data[mask.BroadcastIndex(idx)] != 0) values.Add(x.Data[x.BroadcastIndex(idx)]);
        }
        return new RefTensor([values.Count], [.. values]);
    }

    /// <summary>Gradient of MaskedSelect: g's entries placed back at the selected positions, summed down to x's shape.</summary>
    public static RefTensor MaskedSelectBackward(RefTensor g, int[] inputShape, RefTensor mask)
    {
        var shape = ShapeUtil.Broadcast(inputShape, mask.Shape, "reference masked_select");
        var full = RefTensor.Zeros(shape);
        var idx = new int[shape.Length];
        var k = 0;
        for (long p = 0; p < full.Numel; p++)
        {
            RefTensor.Unravel(p, shape, idx);
            if (mask.Data[mask.BroadcastIndex(idx)] != 0) full.Data[p] = g.Data[k++];
        }
        return full.SumTo(inputShape);
    }
}
