// How many training images each synthetic class appears in, and which images. The rule:
//   1. Buckets as in LVIS: rare = 1–10 training images, common = 11–100, frequent = more than 100.
//      round(K/3) classes are rare, round(K/3) frequent, the rest common (K = 40: 13 / 14 / 13).
//   2. Which classes fall in which bucket, and their order inside it, is a seeded permutation, so the rare
//      classes are a random mix of shapes, colours and textures.
//   3. Inside a bucket [lo, hi] the m classes get log-evenly spaced counts from hi down to lo
//      (class j: round(hi · (lo/hi)^(j/(m−1)))), a Zipf-like fall-off; the frequent bucket spans
//      [101, max(101, round(0.4·N))], so with N = 2000 the head class is in 800 of the images.
//   4. Every count is clamped to N (small N cannot populate every bucket: with N ≤ 100 there are no
//      frequent classes). If the counts sum to less than N (every image needs an object), the most
//      frequent class is raised up to N, then the next; if they exceed N·min(maxObjects, K), the most
//      frequent are lowered the same way (down to 1). The rare classes are touched last.
//   5. Each image gets a wished-for number of distinct classes in [1, min(maxObjects, K)]: all start at
//      one and the remaining Σ counts − N are dealt one by one to random images with room. Classes are
//      then placed in decreasing count order, each into the images furthest below their wish (ties
//      broken at random). The wish is soft — an image may exceed it, never the cap — so placement cannot
//      dead-end on an unlucky wish; and an image still empty is always preferred over one at or past its
//      wish, so every image ends with at least one class.
namespace Engine.Data.Synthetic;

public static class LongTail
{
    public const int RareMax = 10;
    public const int CommonMax = 100;

    /// <summary>LVIS frequency bucket of a class from its number of training images: 'r' (1–10), 'c' (11–100), 'f' (&gt;100).</summary>
    public static char Frequency(int trainingImageCount) =>
        trainingImageCount <= RareMax ? 'r' : trainingImageCount <= CommonMax ? 'c' : 'f';

    /// <summary>Target number of training images per class (indexed by class), following rules 1–4.</summary>
    public static int[] ImageCounts(int classes, int trainImages, int maxObjectsPerImage, Generator generator)
    {
        if (classes < 1) throw new ArgumentException($"LongTail.ImageCounts: need at least one class, got {classes}.");
        if (trainImages < 1) throw new ArgumentException($"LongTail.ImageCounts: need at least one training image, got {trainImages}.");
        if (maxObjectsPerImage < 1) throw new ArgumentException($"LongTail.ImageCounts: maxObjectsPerImage must be ≥ 1, got {maxObjectsPerImage}.");
        var rare = (int)Math.Round(classes / 3.0, MidpointRounding.AwayFromZero);
        var frequent = rare;
        var common = classes - rare - frequent;
        var headCount = Math.Max(CommonMax + 1, (int)Math.Round(0.4 * trainImages));

        // byRank[0] is the most frequent class.
        var byRank = new int[classes];
        var r = 0;
        foreach (var v in Spaced(frequent, CommonMax + 1, headCount)) byRank[r++] = v;
        foreach (var v in Spaced(common, RareMax + 1, CommonMax)) byRank[r++] = v;
        foreach (var v in Spaced(rare, 1, RareMax)) byRank[r++] = v;
        for (var i = 0; i < classes; i++) byRank[i] = Math.Min(byRank[i], trainImages);

        var perImage = Math.Min(maxObjectsPerImage, classes);
        long total = byRank.Sum();
        for (var i = 0; i < classes && total < trainImages; i++)
        {
            var add = (int)Math.Min(trainImages - byRank[i], trainImages - total);
            byRank[i] += add;
            total += add;
        }
        for (var i = 0; i < classes && total > (long)trainImages * perImage; i++)
        {
            var cut = (int)Math.Min(byRank[i] - 1, total - (long)trainImages * perImage);
            byRank[i] -= cut;
            total -= cut;
        }

        var order = generator.Permutation(classes);
        var counts = new int[classes];
        for (var rank = 0; rank < classes; rank++) counts[order[rank]] = byRank[rank];
        return counts;
    }

    /// <summary>Distinct classes of each of <paramref name="trainImages"/> images such that class c is in exactly counts[c] of them
    /// (rule 5). Within an image the classes are in random order.</summary>
    public static int[][] AssignClasses(int[] counts, int trainImages, int maxObjectsPerImage, Generator generator)
    {
        var classes = counts.Length;
        var perImage = Math.Min(maxObjectsPerImage, classes);
        long total = counts.Sum(c => (long)c);
        if (total < trainImages || total > (long)trainImages * perImage || counts.Any(c => c < 0 || c > trainImages))
            throw new ArgumentException($"LongTail.AssignClasses: counts summing to {total} cannot fill {trainImages} images with 1..{perImage} distinct classes each.");

        var free = new int[trainImages];
        Array.Fill(free, 1);
        var withRoom = Enumerable.Range(0, trainImages).Where(i => free[i] < perImage).ToList();
        for (var extra = total - trainImages; extra > 0; extra--)
        {
            var pick = (int)generator.NextInt64(withRoom.Count);
            var image = withRoom[pick];
            if (++free[image] == perImage)
            {
                withRoom[pick] = withRoom[^1];
                withRoom.RemoveAt(withRoom.Count - 1);
            }
        }

        var members = new List<int>[trainImages];
        for (var i = 0; i < trainImages; i++) members[i] = new List<int>(free[i]);
        // free = wished-for size minus classes placed so far; it may go negative (a soft target), the cap is hard.
        var classOrder = Enumerable.Range(0, classes).OrderByDescending(c => counts[c]).ThenBy(c => c).ToArray();
        var images = Enumerable.Range(0, trainImages).ToArray();
        var keys = new ulong[trainImages];
        foreach (var c in classOrder)
        {
            for (var i = 0; i < trainImages; i++) keys[i] = generator.NextUInt64();
            Array.Sort(images, (a, b) => free[a] != free[b] ? free[b].CompareTo(free[a]) : keys[a].CompareTo(keys[b]));
            var placed = 0;
            for (var k = 0; k < trainImages && placed < counts[c]; k++)
            {
                var image = images[k];
                if (members[image].Count == perImage) continue;
                free[image]--;
                members[image].Add(c);
                placed++;
            }
            if (placed < counts[c])
                throw new InvalidOperationException($"LongTail.AssignClasses: only {placed} of the {counts[c]} images wanted for class {c} have room for another class (at most {perImage} per image).");
        }

        var result = new int[trainImages][];
        for (var i = 0; i < trainImages; i++)
        {
            var list = members[i].ToArray();
            for (var j = list.Length - 1; j > 0; j--)
            {
                var s = (int)generator.NextInt64(j + 1);
                (list[j], list[s]) = (list[s], list[j]);
            }
            result[i] = list;
        }
        return result;
    }

    private static IEnumerable<int> Spaced(int m, int lo, int hi)
    {
        if (m <= 0) yield break;
        if (m == 1)
        {
            yield return (int)Math.Round(Math.Sqrt((double)lo * hi));
            yield break;
        }
        for (var j = 0; j < m; j++)
            yield return (int)Math.Round(hi * Math.Pow((double)lo / hi, (double)j / (m - 1)));
    }
}
