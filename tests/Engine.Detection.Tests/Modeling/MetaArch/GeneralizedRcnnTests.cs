// End-to-end tests of the detector built from a tiny configuration (ResNet-18 at width 8, FPN 16, 5 classes,
// 64×64 images): detectron2 parameter names and shapes, a training forward/backward whose four losses are
// finite and whose gradients reach every trainable parameter, inference rescaled to the original size, and a
// short overfit schedule on two synthetic images whose total loss must fall.
using Engine.Config;
using Engine.Detection.Modeling;
using Engine.Detection.Modeling.MetaArch;
using Engine.Optim;
using Engine.Tests;
using Xunit.Abstractions;

namespace Engine.Detection.Tests.Modeling.MetaArch;

public class GeneralizedRcnnTests(ITestOutputHelper output)
{
    internal static EngineConfig TinyConfig() => new()
    {
        Model = new ModelConfig
        {
            Device = "cpu",
            PixelMean = [0.5, 0.5, 0.5],
            PixelStd = [0.25, 0.25, 0.25],
            Backbone = new BackboneConfig { FreezeAt = 0 },
            Resnets = new ResnetsConfig { Depth = 18, Norm = NormType.FrozenBatchNorm, StemOutChannels = 8, WidthPerGroup = 8, Res2OutChannels = 8 },
            Fpn = new FpnConfig { OutChannels = 16 },
            AnchorGenerator = new AnchorGeneratorConfig { Sizes = [[8], [16], [32], [64], [128]] },
            Rpn = new RpnConfig { PreNmsTopkTrain = 200, PreNmsTopkTest = 100, PostNmsTopkTrain = 100, PostNmsTopkTest = 50 },
            RoiHeads = new RoiHeadsConfig { NumClasses = 5, BatchSizePerImage = 64 },
            RoiBoxHead = new RoiBoxHeadConfig { FcDim = 32 },
        },
    };

    /// <summary>Two 64×64 images of noise in [0, 0.2] with filled rectangles of brightness 0.6 + 0.1·class drawn in, and
    /// the rectangles as ground truth.</summary>
    internal static (ImageList Images, List<Instances> Targets) SyntheticBatch(Generator g)
    {
        (float[] Box, long Class)[][] objects =
        [
            [([6, 8, 30, 36], 1), ([36, 34, 58, 60], 3)],
            [([10, 30, 50, 54], 0), ([40, 4, 60, 24], 4)],
        ];
        var images = new List<Tensor>();
        var targets = new List<Instances>();
        foreach (var image in objects)
        {
            var pixels = new float[3 * 64 * 64];
            for (var i = 0; i < pixels.Length; i++) pixels[i] = (float)(0.2 * g.NextDouble());
            foreach (var (box, cls) in image)
                for (var c = 0; c < 3; c++)
                    for (var y = (int)box[1]; y < (int)box[3]; y++)
                        for (var x = (int)box[0]; x < (int)box[2]; x++)
                            pixels[(c * 64 + y) * 64 + x] = 0.6f + 0.1f * cls;
            images.Add(Tensor.From(pixels, 3, 64, 64));
            targets.Add(Instances.FromGroundTruth((64, 64), Tensor.From(image.SelectMany(o => o.Box).ToArray(), image.Length, 4),
                                                  Tensor.From(image.Select(o => o.Class).ToArray(), image.Length)));
        }
        var list = ImageList.FromTensors(images, 32);
        foreach (var t in images) t.Dispose();
        return (list, targets);
    }

    [Fact]
    public void ParameterNamesAndShapesAreDetectron2s()
    {
        var g = TestUtil.Fresh(out _);
        using var model = DetectorBuilder.FromConfig(TinyConfig(), g);
        var shapes = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Shape.ToArray());
        Assert.Equal([8, 8, 3, 3], shapes["backbone.bottom_up.res2.0.conv1.weight"]);
        Assert.Equal([16, 8, 1, 1], shapes["backbone.fpn_lateral2.weight"]);
        Assert.Equal([16, 16, 3, 3], shapes["proposal_generator.rpn_head.conv.weight"]);
        Assert.Equal([3, 16, 1, 1], shapes["proposal_generator.rpn_head.objectness_logits.weight"]);
        Assert.Equal([12, 16, 1, 1], shapes["proposal_generator.rpn_head.anchor_deltas.weight"]);
        Assert.Equal([32, 16 * 7 * 7], shapes["roi_heads.box_head.fc1.weight"]);
        Assert.Equal([32, 32], shapes["roi_heads.box_head.fc2.weight"]);
        Assert.Equal([6, 32], shapes["roi_heads.box_predictor.cls_score.weight"]);
        Assert.Equal([20], shapes["roi_heads.box_predictor.bbox_pred.bias"]);
        Assert.All(shapes.Keys, name => Assert.Matches(@"^(backbone|proposal_generator|roi_heads)\.", name));
    }

    [Fact]
    public void TrainingForwardGivesFiniteLossesAndGradientsOnEveryTrainableParameter()
    {
        var g = TestUtil.Fresh(out var seed);
        using var model = DetectorBuilder.FromConfig(TinyConfig(), g);
        var (images, targets) = SyntheticBatch(g);
        using (images)
        {
            var losses = model.Forward(images, targets).Losses;
            Assert.Equal(["loss_box_reg", "loss_cls", "loss_rpn_cls", "loss_rpn_loc"], losses.Keys.Order().ToArray());
            using var total = Tensor.Stack(losses.Values.ToList(), 0).Sum();
            foreach (var (name, loss) in losses)
                Assert.True(double.IsFinite(loss.Item()) && loss.Item() >= 0, $"{name} = {loss.Item()}, seed {seed}");
            total.Backward();
            foreach (var loss in losses.Values) loss.Dispose();
            foreach (var (name, p) in model.NamedParameters(trainableOnly: true))
            {
                Assert.True(p.Grad is not null, $"{name} has no gradient, seed {seed}");
                var grad = p.Grad!.ToDoubleArray();
                Assert.True(grad.All(double.IsFinite), $"{name} has a non-finite gradient, seed {seed}");
                Assert.True(grad.Any(v => v != 0), $"{name} has an all-zero gradient, seed {seed}");
            }
        }
        foreach (var t in targets) t.Dispose();
    }

    [Fact]
    public void InferenceRescalesDetectionsToTheOriginalSize()
    {
        var g = TestUtil.Fresh(out var seed);
        var config = TinyConfig() with { Test = new TestConfig { DetectionsPerImage = 7 } };
        config = config with { Model = config.Model with { RoiHeads = config.Model.RoiHeads with { ScoreThreshTest = 0.0 } } };
        using var model = DetectorBuilder.FromConfig(config, g);
        model.Eval();
        var (batch, targets) = SyntheticBatch(g);
        foreach (var t in targets) t.Dispose();
        using (batch)
        using (var images = new ImageList(batch.Tensor.Clone(), batch.ImageSizes, [(128, 96), (32, 64)]))
        {
            var detections = model.Forward(images).Detections;
            Assert.Equal(2, detections.Count);
            (int H, int W)[] sizes = [(128, 96), (32, 64)];
            for (var i = 0; i < 2; i++)
                using (var d = detections[i])
                {
                    Assert.Equal(sizes[i], d.ImageSize);
                    Assert.True(d.Count is > 0 and <= 7, $"image {i}: {d.Count} detections, seed {seed}");
                    var b = d.PredBoxes!.ToFloatArray();
                    for (var j = 0; j < b.Length; j += 4)
                        Assert.True(b[j] >= 0 && b[j + 2] <= sizes[i].W && b[j + 1] >= 0 && b[j + 3] <= sizes[i].H && b[j + 2] > b[j] && b[j + 3] > b[j + 1],
                                    $"image {i} box [{string.Join(", ", b.Skip(j).Take(4))}] outside {sizes[i]}, seed {seed}");
                    var s = d.Scores!.ToFloatArray();
                    Assert.True(s.Zip(s.Skip(1)).All(p => p.First >= p.Second), $"scores not descending, seed {seed}");
                }
        }
    }

    [Fact]
    public void OverfitsTwoSyntheticImages()
    {
        var g = TestUtil.Fresh(out var seed);
        using var model = DetectorBuilder.FromConfig(TinyConfig(), g);
        var (images, targets) = SyntheticBatch(g);
        // detectron2's recipe at a small scale: SGD with momentum, linear warm-up, and the gradient norm clipped, since
        // an unnormalized network trained from scratch otherwise takes an occasional step that diverges
        var parameters = model.Parameters(trainableOnly: true);
        using var sgd = new Sgd(parameters, lr: 0.01, momentum: 0.9);
        var schedule = new WarmupMultiStepLr(0.01, 10, 0.1, Engine.Optim.WarmupMethod.Linear, [], 0.1);
        var history = new List<double>();
        using (images)
            for (var it = 0; it < Iterations; it++)
            {
                sgd.Lr = schedule.LrAt(it);
                sgd.ZeroGrad();
                var losses = model.Forward(images, targets).Losses;
                using var total = Tensor.Stack(losses.Values.ToList(), 0).Sum();
                history.Add(total.Item());
                total.Backward();
                foreach (var l in losses.Values) l.Dispose();
                GradientClipping.ClipByGlobalNorm(parameters, 5.0);
                sgd.Step();
            }
        foreach (var t in targets) t.Dispose();
        output.WriteLine($"seed {seed}: total loss {string.Join(" ", history.Select(v => v.ToString("F3")))}");
        var first = history[0];
        var last = history.TakeLast(5).Average();
        Assert.True(history.All(double.IsFinite), $"non-finite loss, seed {seed}: {string.Join(" ", history)}");
        Assert.True(last < first / FallFactor, $"total loss fell from {first:F3} to {last:F3}, less than the factor {FallFactor}; seed {seed}: {string.Join(" ", history.Select(v => v.ToString("F3")))}");
    }

    private const int Iterations = 40;

    // The loss at initialization is nearly seed-independent: near-uniform predictions give loss_rpn_cls ≈ ln 2 (every
    // sampled anchor at p = 1/2, 256 of them per image) and loss_cls ≈ ln 6 (6 outputs), with small box losses, ≈ 2.5 in
    // all. A model that learns only the class priors (everything background) stops near 1.0 (loss_rpn_cls ≈ 0.2, loss_cls
    // ≈ 0.8 at up to 25 % foreground), a fall of about 2.5; requiring 3 (mean of the last 5 iterations) asks for the
    // objects to be found. Measured over 5 fresh seeds the fall was 5.0–9.0 (0.22–0.51 at the end), so 3 leaves a margin.
    private const double FallFactor = 3;
}

public class GeneralizedRcnnErrorTests
{
    [Fact]
    public void TrainingWithoutTargetsSaysWhatIsMissing()
    {
        var g = TestUtil.Fresh(out _);
        using var model = DetectorBuilder.FromConfig(GeneralizedRcnnTests.TinyConfig(), g);
        using var images = new ImageList(Tensor.Zeros([1, 3, 64, 64]), [(64, 64)]);
        var e = Assert.Throws<ArgumentException>(() => model.Forward(images, null));
        Assert.Contains("one ground-truth Instances per image", e.Message);
    }

    [Fact]
    public void WrongChannelCountIsRejected()
    {
        var g = TestUtil.Fresh(out _);
        using var model = DetectorBuilder.FromConfig(GeneralizedRcnnTests.TinyConfig(), g);
        model.Eval();
        using var images = new ImageList(Tensor.Zeros([1, 1, 64, 64]), [(64, 64)]);
        var e = Assert.Throws<ArgumentException>(() => model.Forward(images));
        Assert.Contains("PIXEL_MEAN", e.Message);
    }
}
