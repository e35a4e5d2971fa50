// Anchors of the RPN (Ren et al., Faster R-CNN, 2015), as detectron2's DefaultAnchorGenerator makes them: per
// feature level, cell anchors of every (size, aspect ratio) pair centred at (0, 0) — width sqrt(size²/ratio),
// height ratio·width, ratio = height/width, computed in double and stored as float32 with no further rounding
// (unlike the original Detectron, which rounded to whole pixels) — shifted to every grid location
// (x, y) = ((j + offset)·stride, (i + offset)·stride). Anchors of a level are ordered by location (row-major),
// then by cell anchor (size-major, then ratio), i.e. (H·W·A, 4).
namespace Engine.Detection;

public sealed class DefaultAnchorGenerator
{
    private readonly float[][] _cells;

    /// <param name="sizes">anchor sizes (sqrt of area, in image pixels) per level; one list is used for every level.</param>
    /// <param name="aspectRatios">height/width ratios per level; one list is used for every level.</param>
    /// <param name="strides">stride of each feature level.</param>
    /// <param name="offset">grid offset in units of the stride, in [0, 1); detectron2's default config uses 0.</param>
    public DefaultAnchorGenerator(IReadOnlyList<IReadOnlyList<double>> sizes, IReadOnlyList<IReadOnlyList<double>> aspectRatios,
                                  IReadOnlyList<int> strides, double offset = 0.0)
    {
        if (strides.Count == 0 || strides.Any(s => s <= 0))
            throw new ArgumentException($"DefaultAnchorGenerator: strides [{string.Join(", ", strides)}] must be a non-empty list of positive integers.");
        if (!(offset >= 0 && offset < 1)) throw new ArgumentException($"DefaultAnchorGenerator: offset {offset} must lie in [0, 1).");
        var levels = strides.Count;
        Strides = strides.ToArray();
        Offset = offset;
        var sz = Broadcast(sizes, levels, "sizes");
        var ar = Broadcast(aspectRatios, levels, "aspectRatios");
        _cells = new float[levels][];
        for (var l = 0; l < levels; l++) _cells[l] = CellAnchorValues(sz[l], ar[l]);
    }

    /// <summary>detectron2's FPN default: sizes 32..512 on P2..P6 (strides 4..64), ratios (0.5, 1, 2), offset 0.</summary>
    public static DefaultAnchorGenerator ForFpn() =>
        new([[32], [64], [128], [256], [512]], [[0.5, 1.0, 2.0]], [4, 8, 16, 32, 64], 0.0);

    public IReadOnlyList<int> Strides { get; }
    public double Offset { get; }

    /// <summary>Anchors per grid location on each level (A_l).</summary>
    public IReadOnlyList<int> NumCellAnchors => _cells.Select(c => c.Length / 4).ToArray();

    /// <summary>(A, 4) anchors centred at the origin, size-major then ratio.</summary>
    public static Tensor GenerateCellAnchors(IReadOnlyList<double> sizes, IReadOnlyList<double> aspectRatios)
    {
        var v = CellAnchorValues(sizes, aspectRatios);
        return Tensor.From(v, v.Length / 4, 4);
    }

    /// <summary>The cell anchors of level <paramref name="level"/>, (A_l, 4).</summary>
    public Tensor CellAnchors(int level) => Tensor.From(_cells[level], _cells[level].Length / 4, 4);

    /// <summary>Anchors of every level for feature maps of the given (H, W) grid sizes: (H_l·W_l·A_l, 4) each.</summary>
    public Tensor[] GridAnchors(IReadOnlyList<(int Height, int Width)> gridSizes, Device? device = null)
    {
        if (gridSizes.Count != _cells.Length)
            throw new ArgumentException($"GridAnchors: {gridSizes.Count} grid sizes for an anchor generator of {_cells.Length} levels.");
        var result = new Tensor[gridSizes.Count];
        try
        {
            for (var l = 0; l < gridSizes.Count; l++) result[l] = LevelAnchors(l, gridSizes[l].Height, gridSizes[l].Width, device);
        }
        catch
        {
            foreach (var t in result) t?.Dispose();
            throw;
        }
        return result;
    }

    /// <summary>Anchors for the given feature maps (N, C, H_l, W_l), on their device.</summary>
    public Tensor[] Forward(IReadOnlyList<Tensor> features) =>
        GridAnchors(features.Select(f => f.Rank == 4 ? (f.Size(2), f.Size(3))
            : throw new ArgumentException($"DefaultAnchorGenerator: feature maps must be (N, C, H, W), got {ShapeUtil.Format(f.Shape)}.")).ToList(),
            features.Count > 0 ? features[0].Device : null);

    private Tensor LevelAnchors(int level, int height, int width, Device? device)
    {
        if (height < 0 || width < 0) throw new ArgumentException($"GridAnchors: grid size {height}×{width} of level {level} is negative.");
        var cells = _cells[level];
        var a = cells.Length / 4;
        var stride = Strides[level];
        var values = new float[(long)height * width * a * 4];
        // shifts as float32 like torch.arange(offset·stride, size·stride, stride); anchor = shift + cell in float32
        var start = (float)(Offset * stride);
        long o = 0;
        for (var i = 0; i < height; i++)
        {
            var sy = start + i * (float)stride;
            for (var j = 0; j < width; j++)
            {
                var sx = start + j * (float)stride;
                for (var k = 0; k < a; k++)
                {
                    values[o++] = sx + cells[k * 4];
                    values[o++] = sy + cells[k * 4 + 1];
                    values[o++] = sx + cells[k * 4 + 2];
                    values[o++] = sy + cells[k * 4 + 3];
                }
            }
        }
        return Tensor.From<float>(values, [height * width * a, 4], device);
    }

    private static float[] CellAnchorValues(IReadOnlyList<double> sizes, IReadOnlyList<double> aspectRatios)
    {
        if (sizes.Count == 0 || aspectRatios.Count == 0 || sizes.Any(s => !(s > 0)) || aspectRatios.Any(r => !(r > 0)))
            throw new ArgumentException($"DefaultAnchorGenerator: sizes [{string.Join(", ", sizes)}] and aspect ratios [{string.Join(", ", aspectRatios)}] must be non-empty lists of positive numbers.");
        var v = new float[sizes.Count * aspectRatios.Count * 4];
        var o = 0;
        foreach (var size in sizes)
        {
            var area = size * size;
            foreach (var ratio in aspectRatios)
            {
                var w = Math.Sqrt(area / ratio);
                var h = ratio * w;
                v[o++] = (float)(-w / 2);
                v[o++] = (float)(-h / 2);
                v[o++] = (float)(w / 2);
                v[o++] = (float)(h / 2);
            }
        }
        return v;
    }

    private static IReadOnlyList<double>[] Broadcast(IReadOnlyList<IReadOnlyList<double>> p, int levels, string name)
    {
        if (p.Count == 1) return Enumerable.Repeat(p[0], levels).ToArray();
        if (p.Count != levels)
            throw new ArgumentException($"DefaultAnchorGenerator: {p.Count} lists of {name} for {levels} feature levels; give one list per level, or a single list for all.");
        return p.ToArray();
    }
}
