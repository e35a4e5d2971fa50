// Training through the real DataLoader (worker threads, resize and random flip per sample) on in-memory
// images: a small conv net classifies each image's object by colour and regresses its box centre. Half the
// schedule, a resume in a fresh model, and the other half must equal the whole schedule bit for bit.
using Engine.Data.Imaging;
using Engine.Data.Loading;
using Engine.Data.Records;
using Engine.Data.Samplers;
using Engine.Data.Transforms;
using Engine.Nn;
using Engine.Optim;

namespace Engine.Training.Tests;

public sealed class DataLoaderTrainingTests
{
    private const int Classes = 3;
    private static readonly byte[][] Colors = [[230, 40, 40], [40, 230, 40], [40, 40, 230]];

    /// <summary>Image i: a (Classes-coloured) rectangle of class i % 3 on grey, at a place and size drawn from i.</summary>
    private static List<DatasetRecord> Records(int count)
    {
        var records = new List<DatasetRecord>();
        for (var i = 0; i < count; i++)
        {
            var g = new Generator((ulong)i + 100);
            int w = 40 + (int)g.NextInt64(17), h = 36 + (int)g.NextInt64(13);
            float x1 = g.NextInt64(w / 2), y1 = g.NextInt64(h / 2);
            float x2 = x1 + 6 + g.NextInt64(w / 2 - 6), y2 = y1 + 6 + g.NextInt64(h / 2 - 6);
            records.Add(new DatasetRecord(i + 1, $"mem://{i}", h, w, [new InstanceAnnotation(i % Classes, [x1, y1, x2, y2], [])]));
        }
        return records;
    }

    private static Image Draw(DatasetRecord r, PixelOrder order)
    {
        var image = Image.Create(r.Width, r.Height, 3, PixelOrder.Rgb);
        var a = r.Instances[0];
        var color = Colors[a.CategoryIndex];
        for (var y = 0; y < r.Height; y++)
            for (var x = 0; x < r.Width; x++)
            {
                var inside = x >= a.BoxXyxy[0] && x < a.BoxXyxy[2] && y >= a.BoxXyxy[1] && y < a.BoxXyxy[3];
                for (var c = 0; c < 3; c++) image[y, x, c] = inside ? color[c] : (byte)128;
            }
        return order == PixelOrder.Rgb ? image : new Image(image.Width, image.Height, 3, SwapRb(image.Data), PixelOrder.Bgr);
    }

    private static byte[] SwapRb(byte[] rgb)
    {
        var bgr = (byte[])rgb.Clone();
        for (var i = 0; i < bgr.Length; i += 3) (bgr[i], bgr[i + 2]) = (rgb[i + 2], rgb[i]);
        return bgr;
    }

    private sealed class Net : Module
    {
        public Net(Generator init)
        {
            Conv = RegisterModule("conv", new Conv2d(3, 6, 3, init, padding: 1));
            Cls = RegisterModule("cls", new Linear(6, Classes, init));
            Box = RegisterModule("box", new Linear(6, 2, init));
        }

        public Conv2d Conv { get; }
        public Linear Cls { get; }
        public Linear Box { get; }
    }

    private sealed class Classifier(ulong initSeed) : ITrainable<ImageBatch>
    {
        public Net Net { get; } = new(new Generator(initSeed));
        public Module Module => Net;

        public IReadOnlyDictionary<string, Tensor> Losses(ImageBatch batch)
        {
            var features = Net.Conv.Forward(batch.Images).Relu().Mean([2, 3]); // (N, 6)
            var labels = Tensor.From(batch.Classes.Select(c => c.ToInt64Array()[0]).ToArray(), batch.Count);
            // Box centre in [0, 1] of the padded canvas, (N, 2).
            var (hp, wp) = (batch.Images.Size(2), batch.Images.Size(3));
            var centres = batch.Boxes.SelectMany(b =>
            {
                var v = b.ToFloatArray();
                return new[] { (v[0] + v[2]) / 2 / wp, (v[1] + v[3]) / 2 / hp };
            }).ToArray();
            var target = Tensor.From(centres, batch.Count, 2);
            return new Dictionary<string, Tensor>
            {
                ["loss_cls"] = Engine.Losses.CrossEntropy(Net.Cls.Forward(features), labels),
                ["loss_box"] = Engine.Losses.L1(Net.Box.Forward(features), target),
            };
        }
    }

    private static Trainer<ImageBatch> Build(Classifier model, Sgd optimizer, string dir, long maxIter, IReadOnlyList<DatasetRecord> records)
    {
        DataLoader Loader() => new(records, new TrainingSampler(records.Count, seed: 21), TransformPipeline.Training([32, 36], 64),
                                   new DataLoaderOptions { BatchSize = 4, Workers = 2, Seed = 21, Normalize = Normalize.TorchVision }, Draw);
        return new Trainer<ImageBatch>(model, optimizer, new WarmupMultiStepLr(0.05, 3, 0.1, WarmupMethod.Linear, [8], 0.5),
                                       p => DataLoaderBatchSource.Open(Loader, p),
                                       new TrainerOptions { OutputDir = dir, MaxIter = maxIter, CheckpointPeriod = 3, LogPeriod = 1 });
    }

    private static Sgd Optimizer(Classifier m) => new(ParamGroups.Build(m.Module, 1e-4), 0.05, momentum: 0.9);

    [Fact]
    public void HalfRunPlusResumeEqualsWholeRunBitForBit()
    {
        var records = Records(10);
        const long n = 12;
        var straight = new Classifier(3);
        using var _ = straight.Net;
        using var optStraight = Optimizer(straight);
        Build(straight, optStraight, Toy.TempDir(), n, records).Run();

        var dir = Toy.TempDir();
        var first = new Classifier(3);
        using (first.Net)
        using (var optFirst = Optimizer(first))
            Build(first, optFirst, dir, n / 2, records).Run();

        var resumed = new Classifier(44);
        using var __ = resumed.Net;
        using var optResumed = Optimizer(resumed);
        var summary = Build(resumed, optResumed, dir, n, records).Run(resume: true);
        Assert.Equal(n / 2, summary.StartIteration);

        var expected = Toy.Bits(straight.Net);
        var actual = Toy.Bits(resumed.Net);
        foreach (var (name, bits) in expected)
            Assert.True(bits.SequenceEqual(actual[name]), $"parameter '{name}' differs bit-wise between the whole run and half + resume + half");
        var log = TrainingLog.Read(Path.Combine(dir, TrainingLog.FileName));
        Assert.Equal(Enumerable.Range(0, (int)n).Select(i => (long)i), log.Select(e => e.Iteration));
        Assert.True(log.TakeLast(3).Average(e => e.TotalLoss) < log.Take(3).Average(e => e.TotalLoss),
                    $"loss should fall: first {string.Join(", ", log.Take(3).Select(e => e.TotalLoss))}, last {string.Join(", ", log.TakeLast(3).Select(e => e.TotalLoss))}");
    }

    [Fact]
    public void SourceOpenedAtPositionDeliversTheSameBatchesAsOneThatWalkedThere()
    {
        var records = Records(7);
        DataLoader Loader() => new(records, new TrainingSampler(records.Count, seed: 5), TransformPipeline.Training([32], 64),
                                   new DataLoaderOptions { BatchSize = 3, Workers = 2, Seed = 5, Normalize = Normalize.TorchVision }, Draw);
        using var walked = DataLoaderBatchSource.Open(Loader, 0);
        for (var i = 0; i < 5; i++) walked.Next().Dispose();
        using var jumped = DataLoaderBatchSource.Open(Loader, 5);
        Assert.Equal(5, jumped.Position);
        using var a = walked.Next();
        using var b = jumped.Next();
        Assert.Equal(5, b.Index);
        Assert.Equal(a.ImageIds, b.ImageIds);
        Assert.Equal(a.Images.ToFloatArray(), b.Images.ToFloatArray());
        Assert.Equal(6, jumped.Position);
    }
}
