// The DataLoader as the trainer's batch source. The loader's stream is a pure function of its seed (the
// sampler's order, and each sample's transforms drawn from a generator derived from the seed and the
// sample's stream position), so batch p of a loader built the same way is the same batch in any run.
// Opening at position p therefore builds a fresh loader and drops its first p batches. That re-reads the
// skipped images once per resume — exact, at the cost of decoding them; ImageBatch.Index is checked
// against the expected position so a loader built differently is caught rather than trained on.
using Engine.Data.Loading;
using Engine.Data.Transforms;

namespace Engine.Training;

public sealed class DataLoaderBatchSource : IBatchSource<ImageBatch>
{
    private readonly DataLoader _loader;

    private DataLoaderBatchSource(DataLoader loader) => _loader = loader;

    /// <param name="createLoader">builds the loader of the run (same records, sampler seed, transforms and options each time).</param>
    /// <param name="position">batches to skip: the position saved in the checkpoint (0 for a fresh run).</param>
    public static DataLoaderBatchSource Open(Func<DataLoader> createLoader, long position)
    {
        ArgumentNullException.ThrowIfNull(createLoader);
        if (position < 0) throw new ArgumentOutOfRangeException(nameof(position), $"DataLoaderBatchSource: position must be ≥ 0, got {position}.");
        var source = new DataLoaderBatchSource(createLoader());
        try
        {
            for (long i = 0; i < position; i++)
                source.Next().Dispose();
        }
        catch
        {
            source.Dispose();
            throw;
        }
        return source;
    }

    public long Position => _loader.BatchesDelivered;

    public ImageBatch Next()
    {
        var expected = _loader.BatchesDelivered;
        var batch = _loader.Next()
                    ?? throw new InvalidOperationException($"DataLoaderBatchSource: the loader ran out of batches at batch {expected}; training needs an infinite sampler (TrainingSampler or RepeatFactorTrainingSampler).");
        if (batch.Index != expected)
        {
            batch.Dispose();
            throw new InvalidOperationException($"DataLoaderBatchSource: the loader delivered batch {batch.Index} where batch {expected} was expected.");
        }
        return batch;
    }

    public void Dispose() => _loader.Dispose();
}
