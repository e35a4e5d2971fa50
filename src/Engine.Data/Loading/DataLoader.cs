// The prefetching loader. Batch b holds sample positions b·B … b·B + B − 1 of the sampler's stream.
// Worker threads claim whole batches in order (the sampler is read under a lock, so the stream is the
// same whatever the timing), decode and transform each sample with a generator derived from
// (seed, sample position), collate, and park the batch; the consumer takes batches strictly in order.
// A semaphore of Prefetch slots bounds the batches claimed but not yet consumed, so memory stays
// bounded and a slow consumer stalls the workers rather than piling up batches. The output is
// therefore identical for any number of workers. A failure in a worker is parked like a batch and
// thrown from Next when the consumer reaches it, naming the image; Dispose stops the workers
// (each finishes at most its current batch) and frees batches nobody took.
using System.Diagnostics;
using Engine.Data.Imaging;
using Engine.Data.Records;
using Engine.Data.Samplers;
using Engine.Data.Transforms;

namespace Engine.Data.Loading;

public sealed record DataLoaderOptions
{
    public int BatchSize { get; init; } = 2;
    public int Workers { get; init; } = 2;

    /// <summary>Batches that may be in preparation or waiting at once.</summary>
    public int Prefetch { get; init; } = 4;

    public ulong Seed { get; init; }

    /// <summary>Channel order to decode JPEGs into (Normalize reorders if the model wants the other).</summary>
    public PixelOrder DecodeOrder { get; init; } = PixelOrder.Bgr;

    public Normalize Normalize { get; init; } = Normalize.Detectron2Msra;
    public int SizeDivisibility { get; init; } = 32;
}

/// <summary>A sample could not be loaded; the message names the image, the inner exception says why.</summary>
public sealed class DataLoaderException : InvalidOperationException
{
    public DataLoaderException(string message, Exception inner) : base(message, inner) { }
}

public sealed class DataLoader : IDisposable
{
    private const ulong SampleStream = 0x4C44;

    private readonly IReadOnlyList<DatasetRecord> _records;
    private readonly TransformPipeline _transforms;
    private readonly Func<DatasetRecord, PixelOrder, Image> _readImage;
    private readonly IEnumerator<int> _indices;
    private readonly object _gate = new();
    private readonly Dictionary<long, (ImageBatch? Batch, Exception? Error)> _ready = new();
    private readonly SemaphoreSlim _slots;
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread[] _workers;
    private long _nextToClaim;
    private long _nextToConsume;
    private long _end = long.MaxValue;
    private bool _disposed;
    private long _waitTicks;

    /// <param name="readImage">Decodes a record's image (default: Jpeg.Decode of its FilePath).</param>
    public DataLoader(IReadOnlyList<DatasetRecord> records, IImageSampler sampler, TransformPipeline transforms, DataLoaderOptions options,
                      Func<DatasetRecord, PixelOrder, Image>? readImage = null)
    {
        ArgumentNullException.ThrowIfNull(records);
        ArgumentNullException.ThrowIfNull(sampler);
        ArgumentNullException.ThrowIfNull(transforms);
        ArgumentNullException.ThrowIfNull(options);
        if (options.BatchSize < 1) throw new ArgumentException($"DataLoader: BatchSize {options.BatchSize} must be ≥ 1.");
        if (options.Workers < 1) throw new ArgumentException($"DataLoader: Workers {options.Workers} must be ≥ 1.");
        if (options.Prefetch < 1) throw new ArgumentException($"DataLoader: Prefetch {options.Prefetch} must be ≥ 1 batch.");
        _records = records;
        _transforms = transforms;
        Options = options;
        _readImage = readImage ?? ((r, order) => Jpeg.Decode(r.FilePath, order));
        _indices = sampler.Indices().GetEnumerator();
        _slots = new SemaphoreSlim(options.Prefetch, options.Prefetch);
        _workers = new Thread[options.Workers];
        for (var w = 0; w < _workers.Length; w++)
        {
            _workers[w] = new Thread(WorkerLoop) { IsBackground = true, Name = $"DataLoader worker {w}" };
            _workers[w].Start();
        }
    }

    public DataLoaderOptions Options { get; }

    /// <summary>Total time the consumer spent waiting in Next for batches (the "data time" of a training log).</summary>
    public TimeSpan DataTime => TimeSpan.FromTicks(Interlocked.Read(ref _waitTicks));

    /// <summary>How long the last call to Next waited.</summary>
    public TimeSpan LastWait { get; private set; }

    /// <summary>Dispose has begun: no further batch will be handed out.</summary>
    internal bool IsClosed
    {
        get
        {
            lock (_gate) return _disposed;
        }
    }

    /// <summary>Batches handed out so far.</summary>
    public long BatchesDelivered => Interlocked.Read(ref _nextToConsume);

    /// <summary>The next batch in order, or null when a finite sampler is exhausted. The caller owns (disposes) the batch.</summary>
    /// <exception cref="DataLoaderException">a worker failed on a sample of this batch.</exception>
    public ImageBatch? Next()
    {
        var watch = Stopwatch.StartNew();
        try
        {
            lock (_gate)
            {
                while (true)
                {
                    ObjectDisposedException.ThrowIf(_disposed, this);
                    if (_ready.Remove(_nextToConsume, out var item))
                    {
                        if (item.Error is not null)
                        {
                            // Leave the failure parked so every later call reports it too.
                            _ready[_nextToConsume] = item;
                            throw item.Error;
                        }
                        _nextToConsume++;
                        _slots.Release();
                        return item.Batch;
                    }
                    if (_nextToConsume >= _end) return null;
                    Monitor.Wait(_gate);
                }
            }
        }
        finally
        {
            LastWait = watch.Elapsed;
            Interlocked.Add(ref _waitTicks, watch.Elapsed.Ticks);
        }
    }

    /// <summary>The generator that drives the transforms of the sample at stream position <paramref name="position"/>.</summary>
    public static Generator SampleGenerator(ulong seed, long position) => Seeds.Generator(seed, SampleStream, (ulong)position);

    /// <summary>Batches in order until a finite sampler is exhausted (forever for a training sampler).</summary>
    public IEnumerable<ImageBatch> Batches()
    {
        while (Next() is { } batch) yield return batch;
    }

    private void WorkerLoop()
    {
        while (true)
        {
            try
            {
                _slots.Wait(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            long batchIndex;
            var positions = new List<long>(Options.BatchSize);
            var indices = new List<int>(Options.BatchSize);
            Exception? samplerError = null;
            lock (_gate)
            {
                if (_disposed || _nextToClaim >= _end) return;
                batchIndex = _nextToClaim;
                try
                {
                    while (indices.Count < Options.BatchSize && _indices.MoveNext())
                    {
                        var i = _indices.Current;
                        if ((uint)i >= (uint)_records.Count)
                            throw new InvalidOperationException($"DataLoader: the sampler yielded index {i}, outside the dataset of {_records.Count} records.");
                        positions.Add(batchIndex * Options.BatchSize + indices.Count);
                        indices.Add(i);
                    }
                }
                catch (Exception e)
                {
                    samplerError = e;
                }
                if (samplerError is null && indices.Count == 0)
                {
                    _end = batchIndex;
                    Monitor.PulseAll(_gate);
                    return;
                }
                _nextToClaim++;
                if (samplerError is not null || indices.Count < Options.BatchSize)
                {
                    _end = _nextToClaim;
                    Monitor.PulseAll(_gate);
                }
            }

            (ImageBatch? Batch, Exception? Error) result;
            if (samplerError is not null) result = (null, new DataLoaderException($"DataLoader: the sampler failed while filling batch {batchIndex}: {samplerError.Message}", samplerError));
            else
            {
                try
                {
                    result = (Build(batchIndex, positions, indices), null);
                }
                catch (DataLoaderException e)
                {
                    result = (null, e);
                }
            }

            lock (_gate)
            {
                if (_disposed)
                {
                    result.Batch?.Dispose();
                    return;
                }
                _ready[batchIndex] = result;
                Monitor.PulseAll(_gate);
            }
        }
    }

    private ImageBatch Build(long batchIndex, List<long> positions, List<int> indices)
    {
        var samples = new Sample[indices.Count];
        for (var k = 0; k < indices.Count; k++)
        {
            var record = _records[indices[k]];
            try
            {
                var image = _readImage(record, Options.DecodeOrder);
                var generator = SampleGenerator(Options.Seed, positions[k]);
                samples[k] = _transforms.Apply(Sample.FromRecord(record, image), generator);
            }
            catch (Exception e)
            {
                throw new DataLoaderException(
                    $"DataLoader: loading image id {record.ImageId} ('{record.FilePath}', dataset index {indices[k]}, sample {positions[k]}) failed: {e.Message}", e);
            }
        }
        try
        {
            return ImageBatch.Collate(samples, Options.Normalize, Options.SizeDivisibility, batchIndex);
        }
        catch (Exception e)
        {
            throw new DataLoaderException($"DataLoader: collating batch {batchIndex} failed: {e.Message}", e);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            Monitor.PulseAll(_gate);
        }
        _stop.Cancel();
        foreach (var w in _workers) w.Join();
        lock (_gate)
        {
            foreach (var (_, item) in _ready) item.Batch?.Dispose();
            _ready.Clear();
        }
        _indices.Dispose();
        _slots.Dispose();
        _stop.Dispose();
    }
}
