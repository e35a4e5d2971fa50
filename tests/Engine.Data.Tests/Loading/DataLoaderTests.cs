// Tests of Loading/DataLoader.cs on the tiny synthetic dataset: the same batches for 1 and 3 workers
// under random timing, batches equal to decoding and transforming by hand, a finite sampler ending in a
// partial batch, a corrupt JPEG surfacing in order with its file name, data time, and disposal with
// workers blocked on a full queue or with the consumer waiting.
using Engine.Data.Imaging;
using Engine.Data.Loading;
using Engine.Data.Records;
using Engine.Data.Samplers;
using Engine.Data.Transforms;

namespace Engine.Data.Tests.Loading;

public class DataLoaderTests
{
    private static readonly TransformPipeline Pipeline = TransformPipeline.Training([48, 56, 64, 72], 96);

    [Fact]
    public void SameBatchesForAnyWorkerCountAndTiming()
    {
        TestSupport.Fresh(out var seed);
        var records = TestSupport.TinyDataset.TrainRecords();
        List<Snapshot> Run(int workers, bool jitter)
        {
            var options = new DataLoaderOptions { BatchSize = 3, Workers = workers, Prefetch = 2, Seed = seed };
            using var loader = new DataLoader(records, new TrainingSampler(records.Count, seed), Pipeline, options, (r, order) =>
            {
                if (jitter) Thread.Sleep(Random.Shared.Next(0, 4));
                return Jpeg.Decode(r.FilePath, order);
            });
            var result = new List<Snapshot>();
            for (var b = 0; b < 16; b++) // 48 samples: more than one epoch of 40
            {
                using var batch = loader.Next()!;
                Assert.Equal(b, batch.Index);
                result.Add(Snapshot.Of(batch));
            }
            return result;
        }
        var one = Run(1, jitter: false);
        var three = Run(3, jitter: true);
        for (var b = 0; b < one.Count; b++) one[b].AssertEqual(three[b], $"batch {b} (seed {seed})");
        // The transforms really are random: several sizes occur.
        Assert.True(one.Select(s => s.Shape[2]).Distinct().Count() > 1, $"every batch had the same padded height (seed {seed})");
    }

    [Fact]
    public void BatchesEqualDecodingAndTransformingByHand()
    {
        TestSupport.Fresh(out var seed);
        var records = TestSupport.TinyDataset.TrainRecords();
        var sampler = new TrainingSampler(records.Count, seed);
        var options = new DataLoaderOptions { BatchSize = 2, Workers = 2, Seed = seed, DecodeOrder = PixelOrder.Rgb, Normalize = Normalize.TorchVision };
        using var loader = new DataLoader(records, sampler, Pipeline, options);
        var order = sampler.Indices().Take(6).ToArray();
        for (var b = 0; b < 3; b++)
        {
            using var batch = loader.Next()!;
            var samples = Enumerable.Range(0, 2).Select(k =>
            {
                var record = records[order[2 * b + k]];
                return Pipeline.Apply(Sample.FromRecord(record, Jpeg.Decode(record.FilePath, PixelOrder.Rgb)), DataLoader.SampleGenerator(seed, 2 * b + k));
            }).ToArray();
            using var expected = ImageBatch.Collate(samples, Normalize.TorchVision, 32, b);
            Snapshot.Of(expected).AssertEqual(Snapshot.Of(batch), $"batch {b} (seed {seed})");
        }
    }

    [Fact]
    public void FiniteSamplerEndsWithAPartialBatch()
    {
        var records = TestSupport.TinyDataset.ValRecords().Take(5).ToArray();
        using var loader = new DataLoader(records, new InferenceSampler(5), TransformPipeline.Inference(64, 64),
            new DataLoaderOptions { BatchSize = 2, Workers = 3 });
        var batches = loader.Batches().ToList();
        Assert.Equal([2, 2, 1], batches.Select(b => b.Count));
        Assert.Equal(records.Select(r => r.ImageId), batches.SelectMany(b => b.ImageIds));
        Assert.Null(loader.Next());
        Assert.Equal(3, loader.BatchesDelivered);
        foreach (var b in batches) b.Dispose();
    }

    [Fact]
    public void CorruptImageFailsInOrderNamingTheFile()
    {
        using var folder = new TempFolder();
        var records = TestSupport.TinyDataset.TrainRecords().Take(8).ToArray();
        var bad = Path.Combine(folder.Path, "broken-image.jpg");
        var bytes = File.ReadAllBytes(records[5].FilePath);
        File.WriteAllBytes(bad, bytes[..(bytes.Length / 3)]);
        records[5] = records[5] with { FilePath = bad };
        using var loader = new DataLoader(records, new InferenceSampler(8), TransformPipeline.Inference(64, 64),
            new DataLoaderOptions { BatchSize = 2, Workers = 3, Prefetch = 4 });
        loader.Next()!.Dispose();
        loader.Next()!.Dispose();
        var e = Assert.Throws<DataLoaderException>(() => loader.Next());
        Assert.Contains("broken-image.jpg", e.Message);
        Assert.Contains($"image id {records[5].ImageId}", e.Message);
        Assert.IsAssignableFrom<IOException>(e.InnerException);
        // The failure stays: the loader does not skip past it.
        Assert.Throws<DataLoaderException>(() => loader.Next());
    }

    [Fact]
    public void DataTimeCountsTheConsumersWait()
    {
        var records = TestSupport.TinyDataset.TrainRecords();
        using var loader = new DataLoader(records, new TrainingSampler(records.Count, 1), Pipeline,
            new DataLoaderOptions { BatchSize = 1, Workers = 1, Prefetch = 1 }, (r, order) =>
            {
                Thread.Sleep(60);
                return Jpeg.Decode(r.FilePath, order);
            });
        for (var i = 0; i < 3; i++) loader.Next()!.Dispose();
        // Each batch takes ≥ 60 ms to read and the queue holds one, so the consumer waits for most of it.
        Assert.True(loader.DataTime >= TimeSpan.FromMilliseconds(100), $"data time {loader.DataTime.TotalMilliseconds:F0} ms");
        Assert.True(loader.LastWait > TimeSpan.Zero);
    }

    [Fact]
    public async Task DisposeStopsWorkersBlockedOnAFullQueue()
    {
        var records = TestSupport.TinyDataset.TrainRecords();
        var loader = new DataLoader(records, new TrainingSampler(records.Count, 2), Pipeline,
            new DataLoaderOptions { BatchSize = 2, Workers = 3, Prefetch = 2 });
        loader.Next()!.Dispose();
        await Task.Delay(100); // let the workers fill the queue and block
        // WaitAsync throws TimeoutException if Dispose hangs on a stuck worker.
        await Task.Run(loader.Dispose).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Throws<ObjectDisposedException>(() => loader.Next());
        loader.Dispose(); // twice is harmless
    }

    [Fact]
    public async Task DisposeReleasesAConsumerWaitingForABatch()
    {
        var records = TestSupport.TinyDataset.TrainRecords();
        using var release = new ManualResetEventSlim(false);
        var loader = new DataLoader(records, new TrainingSampler(records.Count, 3), Pipeline,
            new DataLoaderOptions { BatchSize = 1, Workers = 2 }, (r, order) =>
            {
                release.Wait();
                return Jpeg.Decode(r.FilePath, order);
            });
        var consumer = Task.Run(loader.Next);
        await Task.Delay(100);
        Assert.False(consumer.IsCompleted);
        var dispose = Task.Run(loader.Dispose);
        // Release the workers only once Dispose has closed the loader (it then waits for them), so no batch can slip out.
        while (!loader.IsClosed) await Task.Delay(5);
        release.Set(); // the workers finish their current sample, see the loader closed, and exit
        await dispose.WaitAsync(TimeSpan.FromSeconds(30));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => consumer.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public void BadOptionsAndSamplerIndicesAreReported()
    {
        var records = TestSupport.TinyDataset.TrainRecords();
        Assert.Throws<ArgumentException>(() => new DataLoader(records, new InferenceSampler(3), Pipeline, new DataLoaderOptions { BatchSize = 0 }));
        Assert.Throws<ArgumentException>(() => new DataLoader(records, new InferenceSampler(3), Pipeline, new DataLoaderOptions { Workers = 0 }));
        using var loader = new DataLoader(records.Take(3).ToArray(), new InferenceSampler(10), Pipeline, new DataLoaderOptions { BatchSize = 4 });
        var e = Assert.Throws<DataLoaderException>(() => loader.Next());
        Assert.Contains("outside the dataset of 3", e.Message);
    }

    /// <summary>Everything a batch holds, as arrays, for comparison after the batch is disposed.</summary>
    private sealed record Snapshot(int[] Shape, float[] Pixels, (int, int)[] Sizes, long[] Ids, float[][] Boxes, long[][] Classes)
    {
        public static Snapshot Of(ImageBatch b) => new(b.Images.ShapeArray(), b.Images.ToFloatArray(), b.ImageSizes.ToArray(), b.ImageIds.ToArray(),
            b.Boxes.Select(t => t.ToFloatArray()).ToArray(), b.Classes.Select(t => t.ToInt64Array()).ToArray());

        public void AssertEqual(Snapshot other, string what)
        {
            Assert.True(Shape.SequenceEqual(other.Shape), $"{what}: shape [{string.Join(", ", Shape)}] vs [{string.Join(", ", other.Shape)}]");
            Assert.True(Ids.SequenceEqual(other.Ids), $"{what}: image ids differ");
            Assert.True(Sizes.SequenceEqual(other.Sizes), $"{what}: image sizes differ");
            Assert.True(Pixels.AsSpan().SequenceEqual(other.Pixels), $"{what}: pixels differ");
            for (var i = 0; i < Boxes.Length; i++)
            {
                Assert.True(Boxes[i].AsSpan().SequenceEqual(other.Boxes[i]), $"{what}: boxes of image {i} differ");
                Assert.True(Classes[i].AsSpan().SequenceEqual(other.Classes[i]), $"{what}: classes of image {i} differ");
            }
        }
    }
}
