// Sorting and top-k written from the definition of the order in double: a before b when a's value is
// smaller (larger when descending), NaN being larger than every number, and equal values ordered by their
// original position (stability). Top-k is the first k of that order. The gradient of the selected values
// scatters the upstream gradient back to the positions they came from.
namespace Engine.Reference;

public static class SortingReference
{
    /// <summary>-1, 0, 1 comparing a and b with NaN above every number and NaNs equal to each other.</summary>
    public static int CompareValues(double a, double b)
    {
        if (double.IsNaN(a)) return double.IsNaN(b) ? 0 : 1;
        if (double.IsNaN(b)) return -1;
        return a < b ? -1 : a > b ? 1 : 0;
    }

    /// <summary>Values and positions of every line along dim in sorted order (stable).</summary>
    public static (RefTensor Values, RefTensor Indices) Sort(RefTensor x, int dim, bool descending)
    {
        var n = x.Shape[dim];
        return Select(x, dim, n, descending);
    }

    /// <summary>The first k of the stable sort along dim (descending when largest).</summary>
    public static (RefTensor Values, RefTensor Indices) TopK(RefTensor x, int k, int dim, bool largest) => Select(x, dim, k, largest);

    private static (RefTensor, RefTensor) Select(RefTensor x, int dim, int k, bool descending)
    {
        var n = x.Shape[dim];
        var shape = (int[])x.Shape.Clone();
        shape[dim] = k;
        var values = RefTensor.Zeros(shape);
        var indices = RefTensor.Zeros(shape);
        var lineShape = (int[])x.Shape.Clone();
        lineShape[dim] = 1;
        var idx = new int[shape.Length];
        for (long l = 0; l < ShapeUtil.Numel(lineShape); l++)
        {
            RefTensor.Unravel(l, lineShape, idx);
            var line = new double[n];
            for (var j = 0; j < n; j++)
            {
                idx[dim] = j;
                line[j] = x.Data[RefTensor.Ravel(idx, x.Shape)];
            }
            var order = Enumerable.Range(0, n).ToArray();
            Array.Sort(order, (a, b) =>
            {
                var c = CompareValues(line[a], line[b]);
                if (descending) c = -c;
                return c != 0 ? c : a.CompareTo(b);
            });
            for (var j = 0; j < k; j++)
            {
                idx[dim] = j;
                var at = RefTensor.Ravel(idx, shape);
                values.Data[at] = line[order[j]];
                indices.Data[at] = order[j];
            }
        }
        return (values, indices);
    }

    /// <summary>Gradient of the selected values: gx[p with p[dim] := indices[p]] += g[p].</summary>
    public static RefTensor SelectionBackward(RefTensor g, int[] inputShape, int dim, RefTensor indices) =>
        IndexingReference.GatherBackward(g, inputShape, dim, indices);
}
