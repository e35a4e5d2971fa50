// The long-tail components inside the detector: every method config of configs/synth builds (its MODEL.LONG_TAIL
// section on the tiny detector of GeneralizedRcnnTests) with the classifier width of its loss and the classifier
// layer it names, and one training step gives finite named losses whose gradients reach the predictor; the softmax
// head's loss is the plain cross-entropy bit for bit; and the section 8 reductions that involve the detector:
// CRAT with λ_b = 0 gives the plain detector's gradients, EQLv2 at its initial state gives the sigmoid BCE detector's
// loss and gradients, RIO with replay count 0 gives the plain detector's losses. Refused combinations name their keys.
using Engine.Config;
using Engine.Detection.Modeling;
using Engine.Detection.Modeling.MetaArch;
using Engine.Detection.Modeling.RoiHeads;
using Engine.LongTail;
using Engine.LongTail.Nn;
using Engine.Nn;
using Engine.Tests;
using Engine.Detection.Tests.Modeling.MetaArch;

namespace Engine.Detection.Tests.Modeling;

public class LongTailDetectorTests
{
    private const int Classes = 5;

    /// <summary>The class counts of the two synthetic images (classes 1, 3 and 0, 4; class 2 absent).</summary>
    private static readonly ClassStatistics Statistics = ClassStatistics.FromAnnotations(Classes, [[1, 3], [0, 4]]);

    private static string ConfigPath(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Engine.sln"))) return Path.Combine(dir.FullName, "configs", "synth", name);
        throw new FileNotFoundException($"configs/synth/{name} not found above {AppContext.BaseDirectory}.");
    }

    public static TheoryData<string> MethodConfigs() =>
        new(Directory.GetFiles(Path.GetDirectoryName(ConfigPath("eqlv2.yaml"))!, "*.yaml").Select(Path.GetFileName).Order()!);

    /// <summary>The tiny detector with the long-tail section (and trainable groups) of a shipped config.</summary>
    private static EngineConfig WithLongTail(LongTailConfig lt)
    {
        var tiny = GeneralizedRcnnTests.TinyConfig();
        return tiny with { Model = tiny.Model with { LongTail = lt } };
    }

    private static Dictionary<string, double> Step(GeneralizedRcnn model, Generator g, bool backward = true)
    {
        var (images, targets) = GeneralizedRcnnTests.SyntheticBatch(g);
        using (images)
        {
            var losses = model.Forward(images, targets).Losses;
            var values = losses.ToDictionary(kv => kv.Key, kv => kv.Value.Item());
            if (backward)
            {
                using var total = Tensor.Stack(losses.Values.ToList(), 0).Sum();
                total.Backward();
            }
            foreach (var l in losses.Values) l.Dispose();
            foreach (var t in targets) t.Dispose();
            return values;
        }
    }

    [Theory]
    [MemberData(nameof(MethodConfigs))]
    public void EveryMethodConfigBuildsAndTrainsOneStep(string file)
    {
        var g = TestUtil.Fresh(out var seed);
        var lt = ConfigLoader.Load(ConfigPath(file)).Model.LongTail;
        using var model = DetectorBuilder.FromConfig(WithLongTail(lt), g, Statistics);
        var predictor = model.RoiHeads.BoxPredictor;
        var logits = predictor.ClassificationLoss.LogitCount;
        var expectedCount = lt.ClassificationLoss switch
        {
            Engine.Config.ClassificationLoss.Eql => Classes,
            Engine.Config.ClassificationLoss.Seesaw => Classes + 2,
            Engine.Config.ClassificationLoss.GroupSoftmax => Classes + 2 + lt.Bags.GroupBoundaries.Count + 1,
            _ => Classes + 1,
        };
        Assert.Equal(expectedCount, logits);
        var classifierType = lt.Classifier.Type switch
        {
            ClassifierType.NormedLinear => typeof(NormalizedLinear),
            ClassifierType.Cosine => typeof(CosineClassifier),
            _ => typeof(Linear),
        };
        Assert.IsType(classifierType, predictor.ClsScore);
        Assert.Equal(lt.Calibrator != Engine.Config.Calibrator.None, predictor.Calibration is not null);
        Assert.Equal(lt.GradientTransfuser != Engine.Config.GradientTransfuser.None, predictor.Transfuser is not null);
        Assert.Equal(lt.EmbeddingAugmenter != Engine.Config.EmbeddingAugmenter.None, model.RoiHeads.EmbeddingAugmenter is not null);

        var losses = Step(model, g);
        string[] expected = predictor.Transfuser is null
            ? ["loss_box_reg", "loss_cls", "loss_rpn_cls", "loss_rpn_loc"]
            : ["loss_box_reg", "loss_box_trans", "loss_cls", "loss_rpn_cls", "loss_rpn_loc"];
        Assert.Equal(expected, losses.Keys.Order().ToArray());
        Assert.True(losses.Values.All(double.IsFinite), $"{file}: {string.Join(", ", losses.Select(kv => $"{kv.Key}={kv.Value}"))}, seed {seed}");
        foreach (var (name, p) in model.NamedParameters(trainableOnly: true).Where(p => p.Name.StartsWith("roi_heads.box_predictor.", StringComparison.Ordinal)))
        {
            Assert.True(p.Grad is not null, $"{file}: {name} has no gradient, seed {seed}");
            Assert.True(p.Grad!.ToDoubleArray().All(double.IsFinite), $"{file}: {name} has a non-finite gradient, seed {seed}");
        }
        // a second step runs on the state the first one left (EQLv2 sums, Seesaw counts, queues, Fisher bank)
        var again = Step(model, g, backward: false);
        Assert.True(again.Values.All(double.IsFinite), $"{file}: second step {string.Join(", ", again.Select(kv => $"{kv.Key}={kv.Value}"))}, seed {seed}");
    }

    [Fact]
    public void SoftmaxHeadLossIsThePlainCrossEntropyBitForBit()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (n, k) in new[] { (1, 1), (17, 5), (64, 40) })
        {
            using var predictor = new FastRcnnOutputLayers(8, k, g, Box2BoxTransform.ForRoiHeads(), new SoftmaxCrossEntropyLoss(k));
            using var logits = Tensor.Randn([n, k + 1], g);
            using var labels = Tensor.RandInt([n], 0, k + 1, g);
            using var deltas = Tensor.Zeros([n, 4 * k]);
            using var boxes = Tensor.From(Enumerable.Range(0, n).SelectMany(_ => new[] { 0f, 0, 10, 10 }).ToArray(), n, 4);
            var losses = predictor.Losses(logits, deltas, labels, boxes, boxes);
            using var plain = Engine.Losses.CrossEntropy(logits, labels);
            Assert.True(plain.Item() == losses["loss_cls"].Item(), $"N = {n}, K = {k}: {losses["loss_cls"].Item()} vs {plain.Item()}, seed {seed}");
            foreach (var l in losses.Values) l.Dispose();
        }
    }

    /// <summary>Gradients of every trainable parameter after one step of a detector built from <paramref name="config"/>
    /// with generator seed <paramref name="seed"/>, and the loss values.</summary>
    private static (Dictionary<string, double[]> Grads, Dictionary<string, double> Losses) Gradients(EngineConfig config, ulong seed)
    {
        using var model = DetectorBuilder.FromConfig(config, new Generator(seed), Statistics);
        var losses = Step(model, new Generator(seed + 1));
        return (model.NamedParameters(trainableOnly: true).ToDictionary(p => p.Name, p => p.Parameter.Grad!.ToDoubleArray()), losses);
    }

    [Fact]
    public void CratWithZeroBoxWeightGivesThePlainGradients()
    {
        TestUtil.Fresh(out var seed);
        var eqlv2 = new LongTailConfig { ClassificationLoss = Engine.Config.ClassificationLoss.Eqlv2 };
        var (plain, plainLosses) = Gradients(WithLongTail(eqlv2), seed);
        var (crat, cratLosses) = Gradients(WithLongTail(eqlv2 with
        {
            GradientTransfuser = Engine.Config.GradientTransfuser.Crat, Crat = new CratConfig { BoxWeight = 0 },
        }), seed);
        Assert.Equal(0, cratLosses["loss_box_trans"]);
        foreach (var key in plainLosses.Keys) Assert.True(plainLosses[key] == cratLosses[key], $"{key}: {plainLosses[key]} vs {cratLosses[key]}, seed {seed}");
        foreach (var (name, g) in plain) Assert.True(g.SequenceEqual(crat[name]), $"{name}: CRAT with λ_b = 0 changed the gradient, seed {seed}");
        // with λ_b > 0 the regressor of the other classes receives the transfused signal
        var (transfused, _) = Gradients(WithLongTail(eqlv2 with { GradientTransfuser = Engine.Config.GradientTransfuser.Crat, Crat = new CratConfig { BoxWeight = 1 } }), seed);
        Assert.False(plain["roi_heads.box_predictor.bbox_pred.weight"].SequenceEqual(transfused["roi_heads.box_predictor.bbox_pred.weight"]),
                     $"CRAT with λ_b = 1 left the regressor gradient unchanged, seed {seed}");
    }

    [Fact]
    public void Eqlv2AtItsInitialStateIsTheSigmoidDetector()
    {
        TestUtil.Fresh(out var seed);
        // r = 100 gives q = σ(12·99.2) = 1 and p = 1 + 4·(1 − q) = 1 in float: every weight 1, the BCE head over C+1 outputs
        var (sigmoid, sigmoidLosses) = Gradients(WithLongTail(new LongTailConfig { ClassificationLoss = Engine.Config.ClassificationLoss.Sigmoid }), seed);
        var (eqlv2, eqlv2Losses) = Gradients(WithLongTail(new LongTailConfig { ClassificationLoss = Engine.Config.ClassificationLoss.Eqlv2 }), seed);
        foreach (var key in sigmoidLosses.Keys) Assert.True(sigmoidLosses[key] == eqlv2Losses[key], $"{key}: {sigmoidLosses[key]} vs {eqlv2Losses[key]}, seed {seed}");
        foreach (var (name, g) in sigmoid) Assert.True(g.SequenceEqual(eqlv2[name]), $"{name}: EQLv2 at r = 100 differs from BCE, seed {seed}");
    }

    [Fact]
    public void RioWithoutReplayIsThePlainDetector()
    {
        TestUtil.Fresh(out var seed);
        var (plain, plainLosses) = Gradients(WithLongTail(new LongTailConfig()), seed);
        var rio = new LongTailConfig { EmbeddingAugmenter = Engine.Config.EmbeddingAugmenter.Rio, Rio = new RioConfig { ReplayPerClass = 0, BankMaxImages = 10 } };
        var (replay0, replay0Losses) = Gradients(WithLongTail(rio), seed);
        foreach (var key in plainLosses.Keys) Assert.True(plainLosses[key] == replay0Losses[key], $"{key}: {plainLosses[key]} vs {replay0Losses[key]}, seed {seed}");
        foreach (var (name, g) in plain) Assert.True(g.SequenceEqual(replay0[name]), $"{name}: RIO with replay 0 changed the gradient, seed {seed}");
    }

    [Fact]
    public void RioReplaysEarlierEmbeddingsIntoTheLossRows()
    {
        var g = TestUtil.Fresh(out var seed);
        var rio = new LongTailConfig { EmbeddingAugmenter = Engine.Config.EmbeddingAugmenter.Rio, Rio = new RioConfig { ReplayPerClass = 5, BankMaxImages = 10 } };
        using var model = DetectorBuilder.FromConfig(WithLongTail(rio), g, Statistics);
        var replay = (RioMemoryReplay)model.RoiHeads.EmbeddingAugmenter!;
        Assert.Equal([0, 1, 3, 4], replay.BankClasses);
        Step(model, g, backward: false);
        // every positive of a bank class was pushed; the classes of the two images are all bank classes
        Assert.True(new[] { 0, 1, 3, 4 }.All(c => replay.QueueLength(c) > 0), $"queues after one step: {string.Join(", ", replay.BankClasses.Select(replay.QueueLength))}, seed {seed}");
    }

    [Fact]
    public void CalibratorStatisticsAreModelBuffersAndSetTheScores()
    {
        var g = TestUtil.Fresh(out var seed);
        using var model = DetectorBuilder.FromConfig(WithLongTail(new LongTailConfig { Calibrator = Engine.Config.Calibrator.Logn }), g);
        var buffers = model.NamedBuffers().Select(b => b.Name).Where(n => n.Contains("calibrator", StringComparison.Ordinal)).Order().ToArray();
        Assert.Equal(["roi_heads.box_predictor.calibrator.running_mean", "roi_heads.box_predictor.calibrator.running_var"], buffers);
        var predictor = model.RoiHeads.BoxPredictor;
        using var logits = Tensor.Randn([7, Classes + 1], g);
        using var deltas = Tensor.Zeros([7, 4 * Classes]);
        using var boxes = Tensor.From(Enumerable.Range(0, 7).SelectMany(i => new[] { i, 0f, i + 20, 20 }).ToArray(), 7, 4);
        using (var detections = predictor.Inference(logits, deltas, [boxes], [(64, 64)])[0])
        using (var plain = logits.Softmax(1))
        {
            // μ = 0, v = 1: the calibrated scores are the softmax's (section 2.5), up to the two float softmax implementations
            var top = detections.Scores!.ToFloatArray().Max();
            var best = plain.ToFloatArray().Where((_, i) => i % (Classes + 1) != Classes).Max();
            Assert.True(Math.Abs(top - best) <= 1e-6, $"top calibrated score {top} vs softmax {best}, seed {seed}");
        }
        // statistics written into the buffers reach the scores: a large mean on class 0 lowers its calibrated scores
        var mean = model.NamedBuffers().Single(b => b.Name == "roi_heads.box_predictor.calibrator.running_mean").Buffer.Value;
        var classOneMean = new float[Classes + 1];
        classOneMean[1] = 5;
        using (var m = Tensor.From(classOneMean, Classes + 1)) mean.CopyFrom(m);
        using var calibrated = predictor.Calibrator!.Scores(logits);
        predictor.Calibration!.Push();
        using var after = predictor.Calibrator!.Scores(logits);
        var before = calibrated.ToFloatArray();
        var shifted = after.ToFloatArray();
        for (var i = 0; i < 7; i++)
            Assert.True(shifted[i * (Classes + 1) + 1] < before[i * (Classes + 1) + 1], $"row {i}: class 1's score did not fall with its mean, seed {seed}");
    }

    [Fact]
    public void CalibratorAndBuffersCopyOnlyWhatChanged()
    {
        // the predictor pushes before every use and pulls after every loss: a side that did not change is not copied, a
        // side that did is
        var g = TestUtil.Fresh(out var seed);
        using var model = DetectorBuilder.FromConfig(WithLongTail(new LongTailConfig { Calibrator = Engine.Config.Calibrator.Logn }), g);
        var state = model.RoiHeads.BoxPredictor.Calibration!;
        var calibrator = (LogitNormCalibrator)state.Calibrator;
        var mean = model.NamedBuffers().Single(b => b.Name == "roi_heads.box_predictor.calibrator.running_mean").Buffer.Value;
        state.Push();
        var revision = calibrator.Revision;
        var version = mean.Storage.Version;
        state.Push();
        state.Pull();
        Assert.Equal(revision, calibrator.Revision);
        Assert.Equal(version, mean.Storage.Version);

        // a write into the buffers (a checkpoint load) reaches the calibrator
        var written = Enumerable.Range(0, Classes + 1).Select(j => 0.5f * j - 1).ToArray();
        using (var m = Tensor.From(written, Classes + 1)) mean.CopyFrom(m);
        state.Push();
        Assert.NotEqual(revision, calibrator.Revision);
        using (var m = calibrator.Mean()) Assert.Equal(written, m.ToFloatArray());

        // an update of the calibrator reaches the buffers, and the push after the pull loads nothing
        using (var logits = Tensor.Randn([9, Classes + 1], g)) calibrator.Accumulate(logits);
        state.Pull();
        using (var m = calibrator.Mean())
        {
            Assert.Equal(m.ToFloatArray(), mean.ToFloatArray());
            Assert.NotEqual(written, m.ToFloatArray());
        }
        revision = calibrator.Revision;
        version = mean.Storage.Version;
        state.Push();
        state.Pull();
        Assert.True(revision == calibrator.Revision && version == mean.Storage.Version, $"a push and pull with nothing changed copied (seed {seed})");
    }

    [Fact]
    public void RefusedCombinationsNameTheirKeys()
    {
        var g = TestUtil.Fresh(out _);
        var cosinePrior = Assert.Throws<ArgumentException>(() => DetectorBuilder.FromConfig(WithLongTail(new LongTailConfig
        {
            Classifier = new ClassifierConfig { Type = ClassifierType.Cosine, PriorProb = 0.01 },
        }), g));
        Assert.Contains("CLASSIFIER.PRIOR_PROB", cosinePrior.Message);
        var fhm = Assert.Throws<ArgumentException>(() => DetectorBuilder.FromConfig(WithLongTail(new LongTailConfig { EmbeddingAugmenter = Engine.Config.EmbeddingAugmenter.Fhm }), g));
        Assert.Contains("CLASSIFICATION_LOSS", fhm.Message);
        var stats = Assert.Throws<ArgumentException>(() => DetectorBuilder.FromConfig(WithLongTail(new LongTailConfig { ClassificationLoss = Engine.Config.ClassificationLoss.Eql }), g));
        Assert.Contains("ClassStatistics", stats.Message);
        var mask = Assert.Throws<ArgumentException>(() => DetectorBuilder.FromConfig(WithLongTail(new LongTailConfig { Crat = new CratConfig { MaskWeights = CratMaskWeights.Mask } }), g));
        Assert.Contains("CRAT.MASK_WEIGHTS", mask.Message);
        var tiny = GeneralizedRcnnTests.TinyConfig();
        var agnostic = Assert.Throws<ArgumentException>(() => DetectorBuilder.FromConfig(tiny with
        {
            Model = tiny.Model with
            {
                RoiBoxHead = tiny.Model.RoiBoxHead with { ClsAgnosticBboxReg = true },
                LongTail = new LongTailConfig { GradientTransfuser = Engine.Config.GradientTransfuser.Crat },
            },
        }, g));
        Assert.Contains("CLS_AGNOSTIC_BBOX_REG", agnostic.Message);
        var maskOn = Assert.Throws<ArgumentException>(() => DetectorBuilder.FromConfig(tiny with { Model = tiny.Model with { MaskOn = true } }, g));
        Assert.Contains("MODEL.MASK_ON", maskOn.Message);
    }
}
