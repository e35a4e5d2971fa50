// Repeat-factor sampling (RFS), from the LVIS paper (Gupta et al., CVPR 2019, section 5): for each class
// c let f_c be the fraction of training images that contain c; its repeat factor is
// r_c = max(1, sqrt(t / f_c)) for a threshold t (0.001 for LVIS); an image's factor is the largest over
// the classes it contains, r_i = max_c r_c (1 for an image without annotations). Each epoch, image i
// appears ⌊r_i⌋ times plus once more with probability r_i − ⌊r_i⌋ (stochastic rounding, so the
// expected count is exactly r_i), or ⌈r_i⌉ times in the deterministic variant; the epoch is then
// shuffled. Epochs are drawn from generators derived from (seed, epoch).
using Engine.Data.Records;

namespace Engine.Data.Samplers;

public enum RepeatRounding
{
    /// <summary>⌊r⌋ + Bernoulli(r − ⌊r⌋) copies: expected count r (detectron2's RepeatFactorTrainingSampler).</summary>
    Stochastic,

    /// <summary>⌈r⌉ copies every epoch.</summary>
    Ceiling,
}

public sealed class RepeatFactorTrainingSampler : IImageSampler
{
    private const ulong EpochStream = 0x5246;

    public RepeatFactorTrainingSampler(IReadOnlyList<double> repeatFactors, ulong seed, RepeatRounding rounding = RepeatRounding.Stochastic,
                                       int rank = 0, int worldSize = 1)
    {
        if (repeatFactors.Count == 0) throw new ArgumentException("RepeatFactorTrainingSampler: no repeat factors (the dataset is empty).");
        for (var i = 0; i < repeatFactors.Count; i++)
            if (!(repeatFactors[i] >= 1) || double.IsInfinity(repeatFactors[i]))
                throw new ArgumentException($"RepeatFactorTrainingSampler: repeat factor of image {i} is {repeatFactors[i]}; factors must be finite and ≥ 1.");
        Shard.Check(rank, worldSize, nameof(RepeatFactorTrainingSampler));
        RepeatFactors = repeatFactors.ToArray();
        Seed = seed;
        Rounding = rounding;
        Rank = rank;
        WorldSize = worldSize;
    }

    public IReadOnlyList<double> RepeatFactors { get; }
    public ulong Seed { get; }
    public RepeatRounding Rounding { get; }
    public int Rank { get; }
    public int WorldSize { get; }

    /// <summary>Sampler over <paramref name="records"/> with threshold <paramref name="threshold"/> (LVIS: 0.001).</summary>
    public static RepeatFactorTrainingSampler FromRecords(IReadOnlyList<DatasetRecord> records, double threshold, ulong seed,
                                                          RepeatRounding rounding = RepeatRounding.Stochastic, int rank = 0, int worldSize = 1) =>
        new(ComputeRepeatFactors(records.Select(r => (IReadOnlyCollection<int>)r.ClassesPresent()).ToArray(), threshold), seed, rounding, rank, worldSize);

    /// <summary>r_i for each image from the classes each image contains (duplicates allowed), for threshold <paramref name="threshold"/>.</summary>
    public static double[] ComputeRepeatFactors(IReadOnlyList<IReadOnlyCollection<int>> classesPerImage, double threshold)
    {
        if (!(threshold > 0) || double.IsInfinity(threshold))
            throw new ArgumentException($"RepeatFactorTrainingSampler: threshold t = {threshold} must be positive (LVIS uses 0.001).");
        var imagesWithClass = new Dictionary<int, int>();
        foreach (var classes in classesPerImage)
            foreach (var c in classes.Distinct())
                imagesWithClass[c] = imagesWithClass.GetValueOrDefault(c) + 1;
        // f_c is over the images with at least one annotation (section 1.2); an image without any keeps r = 1.
        var n = (double)classesPerImage.Count(classes => classes.Count > 0);
        var classFactor = imagesWithClass.ToDictionary(kv => kv.Key, kv => Math.Max(1.0, Math.Sqrt(threshold / (kv.Value / n))));
        return classesPerImage.Select(classes => classes.Count == 0 ? 1.0 : classes.Max(c => classFactor[c])).ToArray();
    }

    /// <summary>The order of epoch <paramref name="epoch"/> (before sharding): each image repeated by its rounded factor, shuffled.</summary>
    public int[] Epoch(long epoch)
    {
        var g = Seeds.Generator(Seed, EpochStream, (ulong)epoch);
        var list = new List<int>();
        for (var i = 0; i < RepeatFactors.Count; i++)
        {
            var r = RepeatFactors[i];
            var whole = Math.Floor(r);
            // Always draw, so each image consumes one number whatever its factor.
            var u = g.NextDouble();
            var copies = Rounding == RepeatRounding.Ceiling ? (int)Math.Ceiling(r) : (int)whole + (u < r - whole ? 1 : 0);
            for (var k = 0; k < copies; k++) list.Add(i);
        }
        var perm = g.Permutation(list.Count);
        return perm.Select(p => list[p]).ToArray();
    }

    public IEnumerable<int> Indices() => Shard.Take(All(), Rank, WorldSize);

    private IEnumerable<int> All()
    {
        for (long epoch = 0; ; epoch++)
            foreach (var i in Epoch(epoch))
                yield return i;
    }
}
