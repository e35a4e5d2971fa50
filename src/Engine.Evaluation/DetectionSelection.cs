// Which detections take part, in which order (lvis-eval.md sections 1-2): the per-image top-300 cut
// over all categories first (or AP-fixed's per-category budget), then the drops that the official code
// makes silently — unknown categories, area outside (0, inf), and the federated rule (a detection
// counts only for categories present in the image's GT or listed in its neg_category_ids). The kept
// detections are grouped by (category, image) and sorted by score descending, ties in file order,
// which is the order the official per-image matching sees them in.
using System.Runtime.CompilerServices;
using Engine.Lvis;

namespace Engine.Evaluation;

internal sealed class DetectionSelection
{
    /// <summary>Category k owns kept detections [CatDetStart[k], CatDetStart[k+1]).</summary>
    public required int[] CatDetStart { get; init; }
    /// <summary>Record index in the results file of each kept detection.</summary>
    public required int[] Source { get; init; }
    public required int[] Image { get; init; }
    public required double[] Score { get; init; }
    /// <summary>Area used for the area ranges: w*h of the box when the first result has a box, else the mask area.</summary>
    public required double[] Area { get; init; }
    /// <summary>(N, 4) boxes [x, y, w, h] of the kept detections (bbox evaluation only; empty otherwise).</summary>
    public required double[] Box { get; init; }
    public required EvalDiagnostics Diagnostics { get; init; }

    public int Count => Source.Length;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static DetectionSelection Build(GroundTruthIndex gt, LvisResults results, LvisEvalOptions options, IMaskOps? masks)
    {
        int n = results.Count;
        var imageIds = results.ImageIds;
        var categoryIds = results.CategoryIds;
        var scores = results.Scores;
        var boxes = results.Boxes;
        var hasBox = results.HasBox;

        // Map image ids (section 1.4: every detection's image must be a GT image).
        var img = new int[n];
        var cat = new int[n];
        long lastId = long.MinValue;
        int lastIdx = -1, unknownImages = 0;
        var unknownExamples = new SortedSet<long>();
        for (int i = 0; i < n; i++)
        {
            long id = imageIds[i];
            if (id != lastId)
            {
                lastId = id;
                lastIdx = gt.ImageIndexOf(id);
            }
            img[i] = lastIdx;
            if (lastIdx < 0)
            {
                unknownImages++;
                if (unknownExamples.Count < 5)
                    unknownExamples.Add(id);
            }
            cat[i] = gt.CategoryIndexOf(categoryIds[i]);
            if (!double.IsFinite(scores[i]))
                throw new ArgumentException($"results: detection #{i} (image {id}, category {categoryIds[i]}) has score {scores[i]}; scores must be finite");
        }
        if (unknownImages > 0)
            throw new ArgumentException($"results: {unknownImages} detection(s) refer to image ids that are not in the ground truth "
                                        + $"(e.g. {string.Join(", ", unknownExamples)}); the results must come from the GT's images "
                                        + "(the official evaluator rejects them too: \"Results do not correspond to current LVIS set\")");

        // Box rule (section 1.2): the first record decides whether areas come from boxes or masks.
        bool boxAreas = n > 0 && hasBox[0];
        for (int i = 0; i < n; i++)
        {
            if (boxAreas && !hasBox[i])
                throw new ArgumentException($"results: detection #{i} (image {imageIds[i]}) has no \"bbox\" but the first one does; either every result has a bbox or none");
            if (hasBox[i])
            {
                double w = boxes[4 * i + 2], h = boxes[4 * i + 3];
                if (!(w >= 0 && h >= 0) || !double.IsFinite(boxes[4 * i]) || !double.IsFinite(boxes[4 * i + 1]) || !double.IsFinite(w) || !double.IsFinite(h))
                    throw new ArgumentException($"results: detection #{i} (image {imageIds[i]}, category {categoryIds[i]}) has bbox "
                                                + $"[{boxes[4 * i]}, {boxes[4 * i + 1]}, {w}, {h}]: width and height must be finite and >= 0 "
                                                + "(boxes are [x, y, width, height]; was it written as [x1, y1, x2, y2]?)");
            }
        }

        var keep = new bool[n];
        Array.Fill(keep, true);
        int byImage = 0, byCategory = 0;
        if (options.MaxDetsPerImage > 0)
            byImage = CutGroups(img, gt.ImageCount, scores, keep, options.MaxDetsPerImage);
        if (options.MaxDetsPerCategory > 0)
            byCategory = CutGroupsByCategory(categoryIds, scores, keep, options.MaxDetsPerCategory);

        int unknownCat = 0, zeroArea = 0, notFederated = 0, kept = 0;
        var area = new double[n];
        var keepCat = new int[n];
        for (int i = 0; i < n; i++)
        {
            keepCat[i] = -1;
            if (!keep[i])
                continue;
            int k = cat[i];
            if (k < 0)
            {
                unknownCat++;
                continue;
            }
            if (Array.BinarySearch(gt.Evaluated[img[i]], k) < 0)
            {
                notFederated++;
                continue;
            }
            double a;
            if (boxAreas)
            {
                a = boxes[4 * i + 2] * boxes[4 * i + 3];
            }
            else
            {
                var seg = results.Segmentation(i) ?? throw new ArgumentException(
                    $"results: detection #{i} (image {imageIds[i]}) has neither a bbox nor a segmentation");
                a = RequireMasks(masks).Area(seg, gt.Images[img[i]]);
            }
            if (!(a > 0 && a < double.PositiveInfinity))
            {
                zeroArea++;
                continue;
            }
            area[i] = a;
            keepCat[i] = k;
            kept++;
        }

        // Group by (category, image), file order inside: stable counting sorts by image, then by category.
        var byImg = GroundTruthIndex.CountingSort(img, keepCat, gt.ImageCount, useAll: false);
        int K = gt.CategoryCount;
        var catStart = new int[K + 1];
        foreach (int i in byImg)
            catStart[keepCat[i] + 1]++;
        for (int k = 0; k < K; k++)
            catStart[k + 1] += catStart[k];
        var fill = (int[])catStart.Clone();
        var order = new int[kept];
        foreach (int i in byImg)
            order[fill[keepCat[i]]++] = i;

        // Score descending inside each (category, image) run; the index breaks ties (file order).
        for (int s = 0; s < kept;)
        {
            int e = s + 1;
            while (e < kept && keepCat[order[e]] == keepCat[order[s]] && img[order[e]] == img[order[s]])
                e++;
            if (e - s > 1)
                SortByScoreDescending(order.AsSpan(s, e - s), scores);
            s = e;
        }

        var selImage = new int[kept];
        var selScore = new double[kept];
        var selArea = new double[kept];
        bool wantBoxes = options.IouType == IouType.Bbox;
        var selBox = wantBoxes ? new double[4 * kept] : [];
        for (int j = 0; j < kept; j++)
        {
            int i = order[j];
            selImage[j] = img[i];
            selScore[j] = scores[i];
            selArea[j] = area[i];
            if (wantBoxes)
            {
                if (hasBox[i])
                {
                    boxes.Slice(4 * i, 4).CopyTo(selBox.AsSpan(4 * j, 4));
                }
                else
                {
                    var seg = results.Segmentation(i) ?? throw new ArgumentException(
                        $"results: detection #{i} (image {imageIds[i]}) has neither a bbox nor a segmentation");
                    RequireMasks(masks).Box(seg, gt.Images[img[i]]).CopyTo(selBox.AsSpan(4 * j, 4));
                }
            }
        }

        return new DetectionSelection
        {
            CatDetStart = catStart, Source = order, Image = selImage, Score = selScore, Area = selArea, Box = selBox,
            Diagnostics = new EvalDiagnostics
            {
                Detections = n, DroppedByImageLimit = byImage, DroppedByCategoryLimit = byCategory, UnknownCategory = unknownCat,
                ZeroArea = zeroArea, NotFederated = notFederated, Evaluated = kept,
                GroundTruthZeroArea = gt.GroundTruthZeroArea, GroundTruthUnknownCategory = gt.GroundTruthUnknownCategory,
            },
        };
    }

    private static IMaskOps RequireMasks(IMaskOps? masks) =>
        masks ?? throw new InvalidOperationException("DetectionSelection: mask operations are needed for results without boxes");

    /// <summary>Sorts record indices by score descending, ties by index ascending (a stable sort of a run
    /// given in file order). Sorting primitive keys first and fixing tie runs afterwards is much faster
    /// than a comparison delegate on large runs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void SortByScoreDescending(Span<int> idx, ReadOnlySpan<double> scores)
    {
        int n = idx.Length;
        if (n <= 16)
        {
            for (int i = 1; i < n; i++)
            {
                int v = idx[i];
                double s = scores[v];
                int j = i - 1;
                while (j >= 0 && (scores[idx[j]] < s || (scores[idx[j]] == s && idx[j] > v)))
                {
                    idx[j + 1] = idx[j];
                    j--;
                }
                idx[j + 1] = v;
            }
            return;
        }
        var keys = new double[n];
        for (int i = 0; i < n; i++)
            keys[i] = -scores[idx[i]];
        var items = idx.ToArray();
        Array.Sort(keys, items);
        for (int s = 0; s < n;)
        {
            int e = s + 1;
            while (e < n && keys[e] == keys[s])
                e++;
            if (e - s > 1)
                Array.Sort(items, s, e - s);
            s = e;
        }
        items.CopyTo(idx);
    }

    /// <summary>Keeps the <paramref name="limit"/> highest scores of each group (ties: file order) and returns how
    /// many were dropped. Groups are images here; each group is sorted only when it is over the limit.</summary>
    private static int CutGroups(int[] group, int groups, ReadOnlySpan<double> scores, bool[] keep, int limit)
    {
        var counts = new int[groups];
        foreach (int g in group)
            counts[g]++;
        var over = new List<int>[groups];
        bool any = false;
        for (int i = 0; i < group.Length; i++)
        {
            if (counts[group[i]] > limit)
            {
                (over[group[i]] ??= []).Add(i);
                any = true;
            }
        }
        if (!any)
            return 0;
        int dropped = 0;
        foreach (var members in over)
        {
            if (members is null)
                continue;
            var idx = members.ToArray();
            SortByScoreDescending(idx, scores);
            for (int j = limit; j < idx.Length; j++)
            {
                keep[idx[j]] = false;
                dropped++;
            }
        }
        return dropped;
    }

    /// <summary>AP-fixed's budget: the <paramref name="limit"/> highest-scoring detections of each category id
    /// (known or not) over the whole results, ties in file order, among those still kept.</summary>
    private static int CutGroupsByCategory(ReadOnlySpan<int> categoryIds, ReadOnlySpan<double> scores, bool[] keep, int limit)
    {
        var members = new Dictionary<int, List<int>>();
        for (int i = 0; i < categoryIds.Length; i++)
        {
            if (!keep[i])
                continue;
            if (!members.TryGetValue(categoryIds[i], out var list))
                members[categoryIds[i]] = list = [];
            list.Add(i);
        }
        int dropped = 0;
        foreach (var list in members.Values)
        {
            if (list.Count <= limit)
                continue;
            var idx = list.ToArray();
            SortByScoreDescending(idx, scores);
            for (int j = limit; j < idx.Length; j++)
            {
                keep[idx[j]] = false;
                dropped++;
            }
        }
        return dropped;
    }
}
