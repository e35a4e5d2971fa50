// Which images the loader reads, in what order. Samplers are the first of the long-tail plug-in
// points: uniform, repeat-factor (RFS), and later class-aware and RIO image-level sampling. A training
// sampler's stream is infinite and deterministic given its seed; an inference sampler's is finite.
namespace Engine.Data.Samplers;

public interface IImageSampler
{
    /// <summary>Dataset indices in the order they are to be read. Each call starts the stream from the beginning.</summary>
    IEnumerable<int> Indices();
}

internal static class Shard
{
    public static void Check(int rank, int worldSize, string who)
    {
        if (worldSize < 1 || rank < 0 || rank >= worldSize)
            throw new ArgumentException($"{who}: shard rank {rank} of world size {worldSize} is invalid; need 0 ≤ rank < worldSize.");
    }

    /// <summary>Positions rank, rank + worldSize, ... of <paramref name="stream"/> (each process of a data-parallel group reads its share).</summary>
    public static IEnumerable<int> Take(IEnumerable<int> stream, int rank, int worldSize)
    {
        long position = 0;
        foreach (var i in stream)
            if (position++ % worldSize == rank) yield return i;
    }
}
