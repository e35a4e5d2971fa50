// The ground truth arranged for evaluation (lvis-eval.md section 2): images and categories sorted by
// id; annotations of a known category with 0 < area < inf, grouped by (category, image) in file order;
// per image the categories whose detections are evaluated (present in its kept GT, or in its
// neg_category_ids — the federated rule) and the not-exhaustive ones. Built once per GT file and
// shared by every evaluation of it (bbox, segm, AP-fixed).
using Engine.Lvis;

namespace Engine.Evaluation;

public sealed class GroundTruthIndex
{
    public LvisDataset Dataset { get; }

    /// <summary>Image ids, ascending; the position is the image index used throughout.</summary>
    public long[] ImageIds { get; }
    public LvisImage[] Images { get; }
    /// <summary>Categories sorted by id; the position is the category index K.</summary>
    public LvisCategory[] Categories { get; }
    public LvisFrequency[] Frequencies { get; }

    // Kept annotations sorted by (category, image, file order); category k owns [CatGtStart[k], CatGtStart[k+1]).
    internal int[] CatGtStart { get; }
    internal int[] GtImage { get; }
    internal double[] GtArea { get; }
    internal bool[] GtIgnore { get; }
    /// <summary>Annotation id 0: the official code tests "matched" as "matched GT id != 0" (section 8).</summary>
    internal bool[] GtIdIsZero { get; }
    internal double[] GtBox { get; }
    internal bool[] GtHasBox { get; }
    /// <summary>Index of the annotation in <see cref="Dataset"/>.Annotations (for its segmentation).</summary>
    internal int[] GtSource { get; }

    /// <summary>Per image: sorted category indices whose detections are evaluated (present or negative).</summary>
    internal int[][] Evaluated { get; }
    /// <summary>Per image: sorted category indices listed as not exhaustively annotated.</summary>
    internal int[][] NotExhaustive { get; }

    /// <summary>Per category: kept annotations and distinct images holding them (for reports).</summary>
    public int[] InstanceCounts { get; }
    public int[] ImageCounts { get; }

    public int GroundTruthZeroArea { get; }
    public int GroundTruthUnknownCategory { get; }

    private readonly Dictionary<long, int> _imageIndex;
    private readonly Dictionary<int, int> _categoryIndex;
    private readonly int[]? _categoryLookup;   // dense id -> index map when ids are small

    public GroundTruthIndex(LvisDataset dataset)
    {
        Dataset = dataset;
        Images = [.. dataset.Images.OrderBy(i => i.Id)];
        ImageIds = [.. Images.Select(i => i.Id)];
        _imageIndex = new Dictionary<long, int>(ImageIds.Length);
        for (int i = 0; i < ImageIds.Length; i++)
        {
            if (!_imageIndex.TryAdd(ImageIds[i], i))
                throw new FormatException($"ground truth: image id {ImageIds[i]} appears twice in \"images\"");
            var img = Images[i];
            if (img.NegCategoryIds is null || img.NotExhaustiveCategoryIds is null)
                throw new FormatException($"ground truth: image {img.Id} has no {(img.NegCategoryIds is null ? "neg_category_ids" : "not_exhaustive_category_ids")}; "
                                          + "LVIS evaluation needs both on every image (is this a COCO file rather than LVIS?)");
        }

        Categories = [.. dataset.Categories.OrderBy(c => c.Id)];
        _categoryIndex = new Dictionary<int, int>(Categories.Length);
        Frequencies = new LvisFrequency[Categories.Length];
        for (int k = 0; k < Categories.Length; k++)
        {
            var c = Categories[k];
            if (!_categoryIndex.TryAdd(c.Id, k))
                throw new FormatException($"ground truth: category id {c.Id} appears twice in \"categories\"");
            Frequencies[k] = c.Frequency ?? throw new FormatException(
                $"ground truth: category {c.Id} ({c.Name}) has no \"frequency\" (r/c/f); LVIS evaluation needs it on every category");
        }
        if (Categories.Length > 0 && Categories[0].Id >= 0 && Categories[^1].Id < 1 << 20)
        {
            _categoryLookup = new int[Categories[^1].Id + 1];
            Array.Fill(_categoryLookup, -1);
            for (int k = 0; k < Categories.Length; k++)
                _categoryLookup[Categories[k].Id] = k;
        }

        // Keep annotations of known categories with 0 < area < inf (section 2.2).
        var anns = dataset.Annotations;
        var keepCat = new int[anns.Count];
        var keepImg = new int[anns.Count];
        int kept = 0, zeroArea = 0, unknownCat = 0;
        for (int a = 0; a < anns.Count; a++)
        {
            var ann = anns[a];
            if (!_imageIndex.TryGetValue(ann.ImageId, out int img))
                throw new FormatException($"ground truth: annotation {ann.Id} refers to image {ann.ImageId}, which is not in \"images\"");
            int k = CategoryIndexOf(ann.CategoryId);
            double area = ann.Area ?? throw new FormatException(
                $"ground truth: annotation {ann.Id} has no \"area\"; LVIS evaluation uses it for the area ranges");
            keepImg[a] = img;
            keepCat[a] = -1;
            if (k < 0)
            {
                unknownCat++;
                continue;
            }
            if (!(area > 0 && area < double.PositiveInfinity))
            {
                zeroArea++;
                continue;
            }
            keepCat[a] = k;
            kept++;
        }
        GroundTruthZeroArea = zeroArea;
        GroundTruthUnknownCategory = unknownCat;

        // Counting sort by category, then image, keeping file order inside a (category, image) group.
        int K = Categories.Length, I = ImageIds.Length;
        var byImage = CountingSort(keepImg, keepCat, I, useAll: false);
        var order = new int[kept];
        CatGtStart = new int[K + 1];
        foreach (int a in byImage)
            CatGtStart[keepCat[a] + 1]++;
        for (int k = 0; k < K; k++)
            CatGtStart[k + 1] += CatGtStart[k];
        var fill = (int[])CatGtStart.Clone();
        foreach (int a in byImage)
            order[fill[keepCat[a]]++] = a;

        GtImage = new int[kept];
        GtArea = new double[kept];
        GtIgnore = new bool[kept];
        GtIdIsZero = new bool[kept];
        GtBox = new double[4 * kept];
        GtHasBox = new bool[kept];
        GtSource = order;
        InstanceCounts = new int[K];
        ImageCounts = new int[K];
        var present = new List<int>[I];
        for (int j = 0; j < kept; j++)
        {
            var ann = anns[order[j]];
            GtImage[j] = keepImg[order[j]];
            GtArea[j] = ann.Area!.Value;
            GtIgnore[j] = ann.Ignore == true;
            GtIdIsZero[j] = ann.Id == 0;
            if (ann.Bbox is { } b)
            {
                b.CopyTo(GtBox, 4 * j);
                GtHasBox[j] = true;
            }
        }
        for (int k = 0; k < K; k++)
        {
            InstanceCounts[k] = CatGtStart[k + 1] - CatGtStart[k];
            for (int j = CatGtStart[k]; j < CatGtStart[k + 1]; j++)
            {
                if (j == CatGtStart[k] || GtImage[j] != GtImage[j - 1])
                {
                    ImageCounts[k]++;
                    (present[GtImage[j]] ??= []).Add(k);
                }
            }
        }

        Evaluated = new int[I][];
        NotExhaustive = new int[I][];
        var set = new SortedSet<int>();
        for (int i = 0; i < I; i++)
        {
            set.Clear();
            if (present[i] is { } p)
                set.UnionWith(p);
            foreach (int id in Images[i].NegCategoryIds!)
            {
                int k = CategoryIndexOf(id);
                if (k >= 0)
                    set.Add(k);
            }
            Evaluated[i] = [.. set];
            set.Clear();
            foreach (int id in Images[i].NotExhaustiveCategoryIds!)
            {
                int k = CategoryIndexOf(id);
                if (k >= 0)
                    set.Add(k);
            }
            NotExhaustive[i] = [.. set];
        }
    }

    public int ImageCount => ImageIds.Length;
    public int CategoryCount => Categories.Length;

    /// <summary>Index of an image id, or -1.</summary>
    public int ImageIndexOf(long imageId) => _imageIndex.TryGetValue(imageId, out int i) ? i : -1;

    /// <summary>Whether detections of this category in this image take part in evaluation (federated rule:
    /// the category is in the image's kept GT or in its neg_category_ids). False for unknown ids.</summary>
    public bool IsEvaluated(long imageId, int categoryId)
    {
        int i = ImageIndexOf(imageId), k = CategoryIndexOf(categoryId);
        return i >= 0 && k >= 0 && Array.BinarySearch(Evaluated[i], k) >= 0;
    }

    /// <summary>Index of a category id, or -1 when the GT has no such category.</summary>
    public int CategoryIndexOf(int categoryId)
    {
        if (_categoryLookup is not null)
            return (uint)categoryId < (uint)_categoryLookup.Length ? _categoryLookup[categoryId] : -1;
        return _categoryIndex.TryGetValue(categoryId, out int k) ? k : -1;
    }

    /// <summary>Stable counting sort of the indices whose <paramref name="filter"/> entry is not negative (all
    /// indices when <paramref name="useAll"/>) by <paramref name="keys"/> in [0, n).</summary>
    internal static int[] CountingSort(int[] keys, int[] filter, int n, bool useAll)
    {
        var start = new int[n + 1];
        int total = 0;
        for (int i = 0; i < keys.Length; i++)
        {
            if (useAll || filter[i] >= 0)
            {
                start[keys[i] + 1]++;
                total++;
            }
        }
        for (int j = 0; j < n; j++)
            start[j + 1] += start[j];
        var order = new int[total];
        for (int i = 0; i < keys.Length; i++)
        {
            if (useAll || filter[i] >= 0)
                order[start[keys[i]]++] = i;
        }
        return order;
    }
}
