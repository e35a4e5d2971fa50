// Detection results in the standard LVIS/COCO results format — a JSON array of
// {image_id, category_id, bbox: [x, y, w, h], score[, segmentation]} — held column by column
// (one array per field) because LVIS-val results hold ~1.5 M records: columns avoid an object per
// detection and keep the evaluator's passes over them cache-friendly. Record i is the i-th element of
// the file; the order is kept because the official evaluator breaks score ties by it.
namespace Engine.Lvis;

public sealed class LvisResults
{
    private long[] _imageIds;
    private int[] _categoryIds;
    private double[] _scores;
    private double[] _boxes;
    private bool[] _hasBox;
    private LvisSegmentation?[]? _segmentations;

    public LvisResults(int capacity = 1024, bool withSegmentations = false)
    {
        capacity = Math.Max(capacity, 16);
        _imageIds = new long[capacity];
        _categoryIds = new int[capacity];
        _scores = new double[capacity];
        _boxes = new double[4 * capacity];
        _hasBox = new bool[capacity];
        _segmentations = withSegmentations ? new LvisSegmentation?[capacity] : null;
    }

    public int Count { get; private set; }

    public ReadOnlySpan<long> ImageIds => _imageIds.AsSpan(0, Count);
    public ReadOnlySpan<int> CategoryIds => _categoryIds.AsSpan(0, Count);
    public ReadOnlySpan<double> Scores => _scores.AsSpan(0, Count);
    /// <summary>(Count, 4): [x, y, width, height] per record; zeros where <see cref="HasBox"/> is false.</summary>
    public ReadOnlySpan<double> Boxes => _boxes.AsSpan(0, 4 * Count);
    /// <summary>Whether record i carried a "bbox".</summary>
    public ReadOnlySpan<bool> HasBox => _hasBox.AsSpan(0, Count);
    /// <summary>Whether segmentations were kept at all (a reader told to skip them keeps none).</summary>
    public bool HasSegmentations => _segmentations is not null;

    /// <summary>The segmentation of record i, or null when it had none or it was not kept.</summary>
    public LvisSegmentation? Segmentation(int i) => _segmentations is null ? null : _segmentations[(uint)i < (uint)Count ? i : throw new ArgumentOutOfRangeException(nameof(i))];

    public void Add(long imageId, int categoryId, double score, ReadOnlySpan<double> box, LvisSegmentation? segmentation = null)
    {
        if (!box.IsEmpty && box.Length != 4)
            throw new ArgumentException($"LvisResults.Add: a box is [x, y, width, height], got {box.Length} numbers", nameof(box));
        int i = Reserve();
        _imageIds[i] = imageId;
        _categoryIds[i] = categoryId;
        _scores[i] = score;
        if (!box.IsEmpty)
        {
            box.CopyTo(_boxes.AsSpan(4 * i, 4));
            _hasBox[i] = true;
        }
        if (segmentation is not null)
        {
            if (_segmentations is null)
                throw new InvalidOperationException("LvisResults.Add: this results list was created without segmentations");
            _segmentations[i] = segmentation;
        }
    }

    /// <summary>Appends an empty record and returns its index (used by the reader, which fills fields in place).</summary>
    internal int Reserve()
    {
        if (Count == _imageIds.Length)
            Grow();
        return Count++;
    }

    internal void Set(int i, long imageId, int categoryId, double score, bool hasBox, LvisSegmentation? segmentation)
    {
        _imageIds[i] = imageId;
        _categoryIds[i] = categoryId;
        _scores[i] = score;
        _hasBox[i] = hasBox;
        if (_segmentations is not null)
            _segmentations[i] = segmentation;
    }

    internal Span<double> BoxSlot(int i) => _boxes.AsSpan(4 * i, 4);

    /// <summary>The records of <paramref name="parts"/>, in order, in one list of exactly the right size.</summary>
    internal static LvisResults Concat(IReadOnlyList<LvisResults> parts)
    {
        int total = parts.Sum(p => p.Count);
        bool segs = parts.Count > 0 && parts[0].HasSegmentations;
        var all = new LvisResults(total, segs);
        int at = 0;
        foreach (var p in parts)
        {
            int n = p.Count;
            p.ImageIds.CopyTo(all._imageIds.AsSpan(at));
            p.CategoryIds.CopyTo(all._categoryIds.AsSpan(at));
            p.Scores.CopyTo(all._scores.AsSpan(at));
            p.Boxes.CopyTo(all._boxes.AsSpan(4 * at));
            p.HasBox.CopyTo(all._hasBox.AsSpan(at));
            if (segs && p._segmentations is not null)
                p._segmentations.AsSpan(0, n).CopyTo(all._segmentations.AsSpan(at));
            at += n;
        }
        all.Count = total;
        return all;
    }

    private void Grow()
    {
        int n = checked(_imageIds.Length * 2);
        Array.Resize(ref _imageIds, n);
        Array.Resize(ref _categoryIds, n);
        Array.Resize(ref _scores, n);
        Array.Resize(ref _boxes, 4 * n);
        Array.Resize(ref _hasBox, n);
        if (_segmentations is not null)
            Array.Resize(ref _segmentations, n);
    }
}
