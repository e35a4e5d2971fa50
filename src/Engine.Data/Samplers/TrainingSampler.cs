// The uniform training sampler: an infinite stream of dataset indices, a fresh permutation each epoch.
// Epoch e's permutation comes from its own generator derived from (seed, e), so any epoch can be
// reproduced without replaying the ones before it. With a shard (rank of worldSize), each process takes
// every worldSize-th position of the same stream, so together they read each epoch exactly once.
namespace Engine.Data.Samplers;

public sealed class TrainingSampler : IImageSampler
{
    private const ulong EpochStream = 0x5A4D;

    public TrainingSampler(int datasetSize, ulong seed, bool shuffle = true, int rank = 0, int worldSize = 1)
    {
        if (datasetSize < 1) throw new ArgumentException($"TrainingSampler: the dataset is empty (size {datasetSize}); nothing to sample.");
        Shard.Check(rank, worldSize, nameof(TrainingSampler));
        DatasetSize = datasetSize;
        Seed = seed;
        Shuffle = shuffle;
        Rank = rank;
        WorldSize = worldSize;
    }

    public int DatasetSize { get; }
    public ulong Seed { get; }
    public bool Shuffle { get; }
    public int Rank { get; }
    public int WorldSize { get; }

    /// <summary>The order of epoch <paramref name="epoch"/> (before sharding).</summary>
    public int[] Epoch(long epoch) =>
        Shuffle ? Seeds.Generator(Seed, EpochStream, (ulong)epoch).Permutation(DatasetSize) : Enumerable.Range(0, DatasetSize).ToArray();

    public IEnumerable<int> Indices() => Shard.Take(All(), Rank, WorldSize);

    private IEnumerable<int> All()
    {
        for (long epoch = 0; ; epoch++)
            foreach (var i in Epoch(epoch))
                yield return i;
    }
}

/// <summary>Every index once, in order (evaluation); with a shard, each process reads a contiguous slice.</summary>
public sealed class InferenceSampler : IImageSampler
{
    public InferenceSampler(int datasetSize, int rank = 0, int worldSize = 1)
    {
        if (datasetSize < 0) throw new ArgumentException($"InferenceSampler: negative dataset size {datasetSize}.");
        Shard.Check(rank, worldSize, nameof(InferenceSampler));
        var per = (datasetSize + worldSize - 1) / worldSize;
        Start = Math.Min(datasetSize, rank * per);
        End = Math.Min(datasetSize, Start + per);
    }

    public int Start { get; }
    public int End { get; }

    public IEnumerable<int> Indices() => Enumerable.Range(Start, End - Start);
}
