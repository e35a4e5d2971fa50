// The long-tail components of one detector, built from MODEL.LONG_TAIL (long-tail-methods.md section 7) and the
// training set's class statistics: the classification loss (which fixes the classifier width and the test-time
// score function), the classifier layer, the embedding augmenter, the post-hoc logit calibrator and the gradient
// transfuser. Every hyperparameter of LongTailConfig reaches its component here; a choice the detector cannot
// serve is refused with the keys that make it. Components that draw random numbers (Federated's class sampling,
// BAGS's "others" subsampling) get their own generator seeded from the detector's seed, so choosing them does not
// move the detector's initialization, and their positions are part of their checkpointed state.
using Engine.Config;
using Engine.LongTail;
using Engine.LongTail.Nn;
using Engine.Nn;
using AugmenterChoice = Engine.Config.EmbeddingAugmenter;
using CalibratorChoice = Engine.Config.Calibrator;
using LossChoice = Engine.Config.ClassificationLoss;
using TransfuserChoice = Engine.Config.GradientTransfuser;

namespace Engine.Detection.Modeling;

/// <summary>Per-class counts of the training set: m_c (images containing class c), n_c (instances of class c) and I
/// (images with at least one annotation), as long-tail-methods.md 0.1 defines them.</summary>
public sealed record ClassStatistics(IReadOnlyList<long> ImageCounts, IReadOnlyList<long> InstanceCounts, long ImagesWithAnnotations)
{
    public int NumClasses => ImageCounts.Count;

    /// <summary>Counts from the class indices present in each training image's annotations (one entry per instance).</summary>
    public static ClassStatistics FromAnnotations(int numClasses, IEnumerable<IReadOnlyList<int>> classesPerImage)
    {
        ArgumentNullException.ThrowIfNull(classesPerImage);
        var images = new long[numClasses];
        var instances = new long[numClasses];
        long annotated = 0;
        foreach (var classes in classesPerImage)
        {
            if (classes.Count > 0) annotated++;
            foreach (var c in classes)
            {
                if (c < 0 || c >= numClasses)
                    throw new ArgumentException($"ClassStatistics: class index {c} outside 0..{numClasses - 1}; MODEL.ROI_HEADS.NUM_CLASSES must cover the training set's categories.");
                instances[c]++;
            }
            foreach (var c in classes.Distinct()) images[c]++;
        }
        return new ClassStatistics(images, instances, annotated);
    }
}

public sealed class LongTailComponents
{
    private LongTailComponents(IClassificationLoss loss, Func<int, int, Module<Tensor, Tensor>>? classifier, double classifierBias,
                               IRoiEmbeddingAugmenter? augmenter, ILogitCalibrator? calibrator, IGradientTransfuser? transfuser)
    {
        ClassificationLoss = loss;
        Classifier = classifier;
        ClassifierBias = classifierBias;
        EmbeddingAugmenter = augmenter;
        Calibrator = calibrator;
        GradientTransfuser = transfuser;
    }

    public IClassificationLoss ClassificationLoss { get; }

    /// <summary>Builds the classifier layer from (input width, logit count); null for the plain linear layer.</summary>
    public Func<int, int, Module<Tensor, Tensor>>? Classifier { get; }

    /// <summary>The initial bias of the plain linear classifier (0, or the sigmoid prior).</summary>
    public double ClassifierBias { get; }

    public IRoiEmbeddingAugmenter? EmbeddingAugmenter { get; }
    public ILogitCalibrator? Calibrator { get; }
    public IGradientTransfuser? GradientTransfuser { get; }

    /// <summary>Whether the configured components need the training set's class statistics (EQL and Federated: image
    /// counts; BAGS and the re-weighting baselines: instance counts; RIO: its bank classes by image count).</summary>
    public static bool NeedsClassStatistics(LongTailConfig lt) =>
        lt.ClassificationLoss is LossChoice.Eql or LossChoice.Federated or LossChoice.GroupSoftmax
        || (lt.ClassificationLoss == LossChoice.Softmax && lt.Reweight.Type != ReweightType.None)
        || lt.EmbeddingAugmenter == AugmenterChoice.Rio;

    /// <param name="embeddingDim">D, the box head's output width.</param>
    /// <param name="generator">the detector's generator (only its seed is read).</param>
    public static LongTailComponents FromConfig(ModelConfig model, int embeddingDim, ClassStatistics? statistics, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(generator);
        const string P = "MODEL.LONG_TAIL.";
        var lt = model.LongTail;
        var c = model.RoiHeads.NumClasses;
        if (NeedsClassStatistics(lt))
        {
            if (statistics is null)
                throw new ArgumentException($"LongTailComponents: {P}CLASSIFICATION_LOSS \"{KeyNames.ValueOf(lt.ClassificationLoss)}\" / {P}EMBEDDING_AUGMENTER \"{KeyNames.ValueOf(lt.EmbeddingAugmenter)}\" " +
                                            $"(or {P}REWEIGHT.TYPE) need the training set's per-class image and instance counts; build the detector with the ClassStatistics of DATASETS.TRAIN.");
            if (statistics.NumClasses != c || statistics.InstanceCounts.Count != c)
                throw new ArgumentException($"LongTailComponents: the class statistics cover {statistics.NumClasses} classes, MODEL.ROI_HEADS.NUM_CLASSES is {c}.");
        }
        if (lt.Calibrator == CalibratorChoice.Logn && lt.Logn.Mode == LognMode.Repo && lt.Reweight.Type != ReweightType.None)
            throw new ArgumentException($"LongTailComponents: {P}LOGN.MODE \"repo\" trains with its own standardized softmax loss, which has no per-class weights; set {P}REWEIGHT.TYPE to \"none\".");
        if (lt.Crat.MaskWeights == CratMaskWeights.Mask)
            throw new ArgumentException($"LongTailComponents: {P}CRAT.MASK_WEIGHTS \"mask\" needs the mask Fisher bank, which the engine does not keep (the released code updates it without using it); use \"box\".");
        if (lt.Classifier.Type == ClassifierType.Cosine && lt.Classifier.PriorProb is not null)
            throw new ArgumentException($"LongTailComponents: {P}CLASSIFIER.PRIOR_PROB sets a bias, but the cosine classifier of {P}CLASSIFIER.TYPE has none; use \"normed_linear\" or \"linear\", or PRIOR_PROB null.");

        // components that draw random numbers get a generator of their own, derived from the detector's seed
        var componentSeed = unchecked(generator.Seed * 0x9E3779B97F4A7C15UL + 0x4C5447656E);
        var calibrator = lt.Calibrator switch
        {
            CalibratorChoice.None => null,
            // the model keeps μ and v (EMA form); an exact statistics pass writes its plain mean and variance into them
            CalibratorChoice.Logn => new LogitNormCalibrator(c, LogitStatisticsMode.Ema, lt.Logn.StatisticsMomentum, lt.Logn.VarianceFloor),
            _ => throw new ArgumentException($"LongTailComponents: {P}CALIBRATOR {lt.Calibrator} is not built."),
        };
        IClassificationLoss loss;
        try
        {
            loss = BuildLoss(lt, c, statistics, componentSeed, calibrator);
        }
        catch
        {
            calibrator?.Dispose();
            throw;
        }
        IRoiEmbeddingAugmenter? augmenter = lt.EmbeddingAugmenter switch
        {
            AugmenterChoice.None => null,
            AugmenterChoice.Rio => new RioMemoryReplay(c, embeddingDim, RioMemoryReplay.BankClassesByImageCount(statistics!.ImageCounts, lt.Rio.BankMaxImages),
                                                          lt.Rio.ReplayPerClass, lt.Rio.QueueCapacity, lt.Rio.RandomSelect),
            AugmenterChoice.Fhm when loss is FcblLoss fcbl =>
                new FeatureHallucination(c, embeddingDim, fcbl.Confusion, lt.Bacl.Fhm.NumClasses, lt.Bacl.Fhm.FeaturesPerClass, lt.Bacl.Fhm.Decay, active: true,
                                         lt.Bacl.Fhm.JittersPerGt, lt.Bacl.Fhm.JitterScale),
            AugmenterChoice.Fhm => throw new ArgumentException($"LongTailComponents: {P}EMBEDDING_AUGMENTER \"fhm\" draws classes from FCBL's confusion matrix; set {P}CLASSIFICATION_LOSS to \"fcbl\"."),
            _ => throw new ArgumentException($"LongTailComponents: {P}EMBEDDING_AUGMENTER {lt.EmbeddingAugmenter} is not built."),
        };
        IGradientTransfuser? transfuser = lt.GradientTransfuser switch
        {
            TransfuserChoice.None => null,
            TransfuserChoice.Crat => new CratTransfuser(c, embeddingDim, lt.Crat.Query == Engine.Config.CratQuery.PerSample ? Engine.LongTail.CratQuery.PerSample : Engine.LongTail.CratQuery.FirstSample,
                                                          lt.Crat.FisherMomentum, lt.Crat.Temperature, lt.Crat.BoxWeight, lt.Crat.MaskWeight),
            _ => throw new ArgumentException($"LongTailComponents: {P}GRADIENT_TRANSFUSER {lt.GradientTransfuser} is not built."),
        };

        // sigmoid heads start at the prior p: bias −ln((1 − p)/p)
        var bias = lt.Classifier.PriorProb is { } p ? -Math.Log((1 - p) / p) : 0.0;
        var scale = lt.Classifier.Scale;
        Func<int, int, Module<Tensor, Tensor>>? classifier = lt.Classifier.Type switch
        {
            ClassifierType.Linear => null,
            ClassifierType.NormedLinear => (inputs, outputs) =>
            {
                var layer = new NormalizedLinear(inputs, outputs, generator, scale);
                using (GradMode.NoGrad()) layer.Bias!.Value.Fill(bias);
                return layer;
            },
            ClassifierType.Cosine => (inputs, outputs) => new CosineClassifier(inputs, outputs, generator, scale),
            _ => throw new ArgumentException($"LongTailComponents: {P}CLASSIFIER.TYPE {lt.Classifier.Type} is not built."),
        };
        return new LongTailComponents(loss, classifier, bias, augmenter, calibrator, transfuser);
    }

    private static IClassificationLoss BuildLoss(LongTailConfig lt, int c, ClassStatistics? statistics, ulong seed, LogitNormCalibrator? calibrator)
    {
        const string P = "MODEL.LONG_TAIL.";
        switch (lt.ClassificationLoss)
        {
            case LossChoice.Softmax when calibrator is not null && lt.Logn.Mode == LognMode.Repo:
                return new LogitNormSoftmaxLoss(calibrator, lt.Logn.Momentum, lt.Logn.Eps);
            case LossChoice.Softmax:
                var rw = lt.Reweight;
                var weights = rw.Type switch
                {
                    ReweightType.None => null,
                    ReweightType.InverseFrequency => ClassWeights.InverseFrequency(statistics!.InstanceCounts, rw.ClipMin, rw.ClipMax),
                    ReweightType.EffectiveNumber => ClassWeights.ClassBalanced(statistics!.InstanceCounts, rw.Beta, rw.ClipMin, rw.ClipMax),
                    _ => throw new ArgumentException($"LongTailComponents: {P}REWEIGHT.TYPE {rw.Type} is not built."),
                };
                return new SoftmaxCrossEntropyLoss(c, weights);
            case LossChoice.Sigmoid:
                return new SigmoidBceLoss(c);
            case LossChoice.Eql:
                return new EqlLoss(statistics!.ImageCounts, statistics.ImagesWithAnnotations, lt.Eql.Lambda);
            case LossChoice.Eqlv2:
                return new Eqlv2Loss(c, lt.Eqlv2.Gamma, lt.Eqlv2.Mu, lt.Eqlv2.Alpha, lt.Eqlv2.TestWithObjectness);
            case LossChoice.Seesaw:
                return new SeesawLoss(c, lt.Seesaw.P, lt.Seesaw.Q, lt.Seesaw.Eps, lt.Seesaw.LossWeight);
            case LossChoice.Federated:
                return new FederatedLoss(statistics!.ImageCounts, new Generator(seed), lt.Federated.NumClasses, lt.Federated.FreqWeightPower);
            case LossChoice.GroupSoftmax:
                return new GroupSoftmaxLoss(statistics!.InstanceCounts, new Generator(seed), lt.Bags.OthersSampleRatio, lt.Bags.GroupBoundaries.Select(b => (long)b).ToArray());
            case LossChoice.Fcbl:
                return new FcblLoss(c, lt.Bacl.Fcbl.Alpha, lt.Bacl.Fcbl.ProbThresh, lt.Bacl.Fcbl.LossWeight, lt.Bacl.Fcbl.Reweight);
            default:
                throw new ArgumentException($"LongTailComponents: {P}CLASSIFICATION_LOSS {lt.ClassificationLoss} is not built.");
        }
    }
}
