// BACL's feature hallucination module FHM (long-tail-methods.md section 4.3, 4.4). Per stage-2 training step:
// (1) JitterBoxes makes 16 jittered copies of every GT box (one per sign pattern over (x1, y1, x2, y2), offsets
// s_k·u_{k,p}·(w or h)/6 with u uniform per image and (coordinate, pattern), clamped to the image); (2) the caller runs
// them through RoIAlign and the frozen shared FCs without gradient; (3) UpdateStatistics folds their embeddings into
// per-class mean and unbiased variance (first time: the batch values; then m ← 0.1·batch + 0.9·m, likewise v);
// (4) Augment draws 8 classes with replacement with probability ∝ 1 − K[c][c] (FCBL's per-class accuracy; uniform
// when every weight is 0) and (5) appends 12 features m_c + sqrt(v_c)·e, e ~ N(0, I), per drawn class that has
// statistics, as positive constant rows with the class label (6). Appended rows train only the classifier: they take
// no part in box regression. Inactive (stage 1), Augment passes the rows through.
using Engine.Nn;

namespace Engine.LongTail;

public sealed class FeatureHallucination : IRoiEmbeddingAugmenter
{
    /// <summary>EMA weight of the batch statistics (code).</summary>
    public const double DefaultDecay = 0.1;

    /// <summary>Classes drawn per step, with replacement.</summary>
    public const int DefaultClassesPerStep = 8;

    /// <summary>Features per drawn class (both LVIS configs; the code default is 4).</summary>
    public const int DefaultFeaturesPerClass = 12;

    /// <summary>Jittered boxes per GT box: the 2⁴ sign patterns.</summary>
    public const int JittersPerBox = 16;

    /// <summary>Jitter scale: each coordinate moves by at most this fraction of the box width or height.</summary>
    public const double DefaultJitterScale = 1.0 / 6;

    private readonly Func<Tensor>? _confusion;
    private readonly Tensor _mean;
    private readonly Tensor _variance;
    private readonly Tensor _hasStatistics;
    private bool _disposed;

    /// <param name="confusion">returns FCBL's confusion estimate K (C, C) (e.g. FcblLoss.Confusion); null samples
    /// classes uniformly (the K = 0 start).</param>
    /// <param name="jittersPerGt">jittered boxes per GT box observed (the first this many sign patterns, 1..16).</param>
    /// <param name="jitterScale">largest jitter as a fraction of the box width/height, in (0, 0.5).</param>
    public FeatureHallucination(int numClasses, int embeddingDim, Func<Tensor>? confusion = null, int classesPerStep = DefaultClassesPerStep,
                                int featuresPerClass = DefaultFeaturesPerClass, double decay = DefaultDecay, bool active = true,
                                int jittersPerGt = JittersPerBox, double jitterScale = DefaultJitterScale)
    {
        if (jittersPerGt is < 1 or > JittersPerBox) throw new ArgumentException($"FeatureHallucination: jitters per GT box must be in 1..{JittersPerBox} (one per sign pattern), got {jittersPerGt}.");
        if (!(jitterScale > 0 && jitterScale < 0.5)) throw new ArgumentException($"FeatureHallucination: jitter scale must be in (0, 0.5) so a jittered box keeps positive size, got {jitterScale}.");
        (JittersPerGt, JitterScale) = (jittersPerGt, jitterScale);
        if (numClasses < 1) throw new ArgumentException($"FeatureHallucination: C must be ≥ 1, got {numClasses}.");
        if (embeddingDim < 1) throw new ArgumentException($"FeatureHallucination: embedding width D must be ≥ 1, got {embeddingDim}.");
        if (classesPerStep < 0 || featuresPerClass < 0)
            throw new ArgumentException($"FeatureHallucination: classes per step ({classesPerStep}) and features per class ({featuresPerClass}) must be ≥ 0.");
        if (!(decay > 0 && decay <= 1)) throw new ArgumentException($"FeatureHallucination: decay must be in (0, 1], got {decay}.");
        (NumClasses, EmbeddingDim, _confusion, ClassesPerStep, FeaturesPerClass, Decay, Active) =
            (numClasses, embeddingDim, confusion, classesPerStep, featuresPerClass, decay, active);
        using (DisposeScope.Suspend())
        {
            _mean = Tensor.Zeros([numClasses, embeddingDim]);
            _variance = Tensor.Zeros([numClasses, embeddingDim]);
            _hasStatistics = Tensor.Zeros([numClasses], DType.UInt8);
        }
    }

    public int NumClasses { get; }
    public int EmbeddingDim { get; }
    public int ClassesPerStep { get; }
    public int FeaturesPerClass { get; }
    public double Decay { get; }
    public int JittersPerGt { get; }
    public double JitterScale { get; }

    /// <summary>Whether Augment hallucinates (BACL stage 2, from its first epoch); statistics update regardless.</summary>
    public bool Active { get; set; }

    /// <summary>Copies of the per-class mean and variance (C, D) and the "has statistics" flags (C).</summary>
    public (Tensor Mean, Tensor Variance, bool[] HasStatistics) Statistics()
    {
        using (GradMode.NoGrad())
            return (_mean.Clone(), _variance.Clone(), _hasStatistics.ToArray<byte>().Select(b => b != 0).ToArray());
    }

    /// <summary>The J (16) jittered boxes of every GT box of one image, (J·G, 4) float32: rows Jg..Jg+J−1 belong to GT
    /// g, pattern p moves coordinate k by s_k·u_{k,p}·(w or h)·scale (scale 1/6) with s_k = +1 where bit k of p is set,
    /// else −1, and clamps to [0, width] × [0, height]. u (4 × J) is drawn once for the image and shared by its boxes.</summary>
    public static Tensor JitterBoxes(Tensor gtBoxes, double imageWidth, double imageHeight, Generator generator,
                                     int jitters = JittersPerBox, double scale = DefaultJitterScale)
    {
        ArgumentNullException.ThrowIfNull(generator);
        if (jitters is < 1 or > JittersPerBox || !(scale > 0 && scale < 0.5))
            throw new ArgumentException($"FeatureHallucination.JitterBoxes: jitters {jitters} must be in 1..{JittersPerBox} and scale {scale} in (0, 0.5).");
        if (gtBoxes.Rank != 2 || gtBoxes.Size(1) != 4 || gtBoxes.DType != DType.Float32)
            throw new ArgumentException($"FeatureHallucination.JitterBoxes: GT boxes must be float32 (G, 4) as (x1, y1, x2, y2), got {gtBoxes.DType.Name()} {ShapeUtil.Format(gtBoxes.Shape)}.");
        if (!(imageWidth > 0 && imageHeight > 0))
            throw new ArgumentException($"FeatureHallucination.JitterBoxes: image size must be positive, got {imageWidth} × {imageHeight}.");
        var boxes = gtBoxes.ToFloatArray();
        var g = boxes.Length / 4;
        var u = new double[4 * jitters];
        for (var i = 0; i < u.Length; i++) u[i] = generator.NextDouble();
        var o = new float[g * jitters * 4];
        for (var b = 0; b < g; b++)
        {
            double w = boxes[b * 4 + 2] - boxes[b * 4], h = boxes[b * 4 + 3] - boxes[b * 4 + 1];
            for (var p = 0; p < jitters; p++)
                for (var k = 0; k < 4; k++)
                {
                    var sign = (p >> k & 1) == 1 ? 1 : -1;
                    var size = k % 2 == 0 ? w : h;
                    var limit = k % 2 == 0 ? imageWidth : imageHeight;
                    var v = boxes[b * 4 + k] + sign * u[k * jitters + p] * size * scale;
                    o[(b * jitters + p) * 4 + k] = (float)Math.Clamp(v, 0, limit);
                }
        }
        return Tensor.From<float>(o, [g * jitters, 4], gtBoxes.Device);
    }

    /// <summary>Step 1 for the detector: the jittered boxes of one image's GT boxes, labelled with their GT's class.</summary>
    public (Tensor Boxes, Tensor Labels)? BoxesToObserve(Tensor gtBoxes, Tensor gtClasses, (int Height, int Width) imageSize, Generator generator)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (gtClasses.DType != DType.Int64 || gtClasses.Rank != 1 || gtClasses.Size(0) != gtBoxes.Size(0))
            throw new ArgumentException($"FeatureHallucination.BoxesToObserve: GT classes must be int64 (G) = ({gtBoxes.Size(0)}), got {gtClasses.DType.Name()} {ShapeUtil.Format(gtClasses.Shape)}.");
        var boxes = JitterBoxes(gtBoxes, imageSize.Width, imageSize.Height, generator, JittersPerGt, JitterScale);
        var labels = gtClasses.ToInt64Array().SelectMany(c => Enumerable.Repeat(c, JittersPerGt)).ToArray();
        return (boxes, Tensor.From<long>(labels, [labels.Length], gtBoxes.Device));
    }

    /// <summary>Step 3 for the detector: the jittered boxes' embeddings update the per-class statistics.</summary>
    public void Observe(Tensor embeddings, Tensor labels) => UpdateStatistics(embeddings, labels);

    /// <summary>Step 3: folds the embeddings (M, D) of the jittered GT boxes with labels (M) into the per-class
    /// statistics; classes absent from the batch are unchanged, an empty batch changes nothing.</summary>
    public void UpdateStatistics(Tensor embeddings, Tensor labels)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (embeddings.Rank != 2 || embeddings.Size(1) != EmbeddingDim || embeddings.DType != DType.Float32)
            throw new ArgumentException($"FeatureHallucination.UpdateStatistics: embeddings must be float32 (M, D) with D = {EmbeddingDim}, got {embeddings.DType.Name()} {ShapeUtil.Format(embeddings.Shape)}.");
        var m = embeddings.Size(0);
        if (labels.Rank != 1 || labels.Size(0) != m || labels.DType != DType.Int64)
            throw new ArgumentException($"FeatureHallucination.UpdateStatistics: labels must be int64 (M) = ({m}), got {labels.DType.Name()} {ShapeUtil.Format(labels.Shape)}.");
        var y = labels.ToInt64Array();
        foreach (var l in y)
            if (l < 0 || l >= NumClasses)
                throw new ArgumentException($"FeatureHallucination.UpdateStatistics: label {l} outside the foreground classes 0..{NumClasses - 1}; pass the GT classes of the jittered boxes.");
        if (m == 0) return;
        int d = EmbeddingDim;
        float[] x;
        using (GradMode.NoGrad()) x = embeddings.ToFloatArray();
        var mean = _mean.ToFloatArray();
        var variance = _variance.ToFloatArray();
        var has = _hasStatistics.ToArray<byte>();
        foreach (var group in Enumerable.Range(0, m).GroupBy(i => (int)y[i]))
        {
            var c = group.Key;
            var rows = group.ToArray();
            for (var f = 0; f < d; f++)
            {
                double s = 0;
                foreach (var i in rows) s += x[i * d + f];
                var bm = s / rows.Length;
                double ss = 0;
                foreach (var i in rows) ss += (x[i * d + f] - bm) * (x[i * d + f] - bm);
                var bv = rows.Length > 1 ? ss / (rows.Length - 1) : 0;
                var j = c * d + f;
                mean[j] = (float)(has[c] == 0 ? bm : Decay * bm + (1 - Decay) * mean[j]);
                variance[j] = (float)(has[c] == 0 ? bv : Decay * bv + (1 - Decay) * variance[j]);
            }
            has[c] = 1;
        }
        using (GradMode.NoGrad())
        {
            using var mt = Tensor.From<float>(mean, [NumClasses, d], _mean.Device);
            using var vt = Tensor.From<float>(variance, [NumClasses, d], _mean.Device);
            using var ht = Tensor.From<byte>(has, [NumClasses], _mean.Device);
            _mean.CopyFrom(mt);
            _variance.CopyFrom(vt);
            _hasStatistics.CopyFrom(ht);
        }
    }

    /// <summary>The class sampling distribution of step 4: (1 − K[c][c]) normalized, uniform when all are 0.</summary>
    public double[] ClassProbabilities()
    {
        var c = NumClasses;
        var weights = new double[c];
        if (_confusion is null) Array.Fill(weights, 1.0);
        else
        {
            using var k = _confusion();
            if (k.Rank != 2 || k.Size(0) != c || k.Size(1) != c)
                throw new InvalidOperationException($"FeatureHallucination: the confusion source returned {ShapeUtil.Format(k.Shape)}, expected (C, C) = ({c}, {c}).");
            var values = k.ToDoubleArray();
            for (var j = 0; j < c; j++) weights[j] = Math.Max(0, 1 - values[j * c + j]);
        }
        var total = weights.Sum();
        return total > 0 ? weights.Select(w => w / total).ToArray() : Enumerable.Repeat(1.0 / c, c).ToArray();
    }

    public RoiAugmentation Augment(RoiBatch batch, Generator generator)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(generator);
        var e = batch.Embeddings;
        if (e.Rank != 2 || e.Size(1) != EmbeddingDim || e.DType != DType.Float32)
            throw new ArgumentException($"FeatureHallucination.Augment: embeddings must be float32 (R, D) with D = {EmbeddingDim}, got {e.DType.Name()} {ShapeUtil.Format(e.Shape)}.");
        var r = e.Size(0);
        if (batch.Labels.Rank != 1 || batch.Labels.Size(0) != r || batch.Labels.DType != DType.Int64)
            throw new ArgumentException($"FeatureHallucination.Augment: labels must be int64 (R) = ({r}), got {batch.Labels.DType.Name()} {ShapeUtil.Format(batch.Labels.Shape)}.");

        int d = EmbeddingDim;
        var features = new List<float>();
        var labels = new List<long>();
        if (Active && ClassesPerStep > 0 && FeaturesPerClass > 0)
        {
            var p = ClassProbabilities();
            var mean = _mean.ToFloatArray();
            var sd = _variance.ToFloatArray().Select(v => Math.Sqrt(Math.Max(v, 0))).ToArray();
            var has = _hasStatistics.ToArray<byte>();
            foreach (var c in Draw(p, ClassesPerStep, generator))
            {
                if (has[c] == 0) continue;
                for (var i = 0; i < FeaturesPerClass; i++)
                {
                    for (var f = 0; f < d; f++) features.Add((float)(mean[c * d + f] + sd[c * d + f] * generator.NextNormal()));
                    labels.Add(c);
                }
            }
        }
        using var appendedX = Tensor.From<float>(features.ToArray(), [labels.Count, d], e.Device);
        using var appendedY = Tensor.From<long>(labels.ToArray(), [labels.Count], e.Device);
        var embeddings = Tensor.Cat([e, appendedX], 0);
        Tensor outLabels;
        using (GradMode.NoGrad()) outLabels = Tensor.Cat([batch.Labels, appendedY], 0);
        return new RoiAugmentation(embeddings, outLabels, null, null, r, AppendedRowsRegress: false);
    }

    /// <summary>Inverse-CDF draws with replacement; a uniform number beyond the float sum of the CDF (shortfall) takes the
    /// last class of positive probability, so exactly <paramref name="count"/> classes come back (4.4).</summary>
    public static int[] Draw(double[] probabilities, int count, Generator generator)
    {
        var cdf = new double[probabilities.Length];
        double s = 0;
        for (var j = 0; j < cdf.Length; j++) cdf[j] = s += probabilities[j];
        var last = Array.FindLastIndex(probabilities, q => q > 0);
        if (last < 0 && count > 0)
            throw new ArgumentException($"FeatureHallucination.Draw: no class has positive probability among {probabilities.Length}; pass a distribution (ClassProbabilities falls back to uniform).");
        var draws = new int[count];
        for (var i = 0; i < count; i++)
        {
            var u = generator.NextDouble() * s;
            var j = Array.FindIndex(cdf, v => v > u);
            draws[i] = j < 0 || j > last ? last : j;
        }
        return draws;
    }

    public StateDict StateDict()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var dict = new StateDict();
        using (GradMode.NoGrad())
        using (DisposeScope.Suspend())
        {
            dict.Add("mean", _mean.Clone());
            dict.Add("variance", _variance.Clone());
            dict.Add("has_statistics", _hasStatistics.Clone());
        }
        return dict;
    }

    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(state);
        var targets = new[] { ("mean", _mean), ("variance", _variance), ("has_statistics", _hasStatistics) };
        var errors = StateCheck.Problems(state, StateCheck.Of(targets));
        if (errors.Count > 0)
            throw new ArgumentException($"FeatureHallucination.LoadStateDict: {string.Join("; ", errors)}; pass a state saved by a FeatureHallucination with C = {NumClasses}, D = {EmbeddingDim}.");
        StateCheck.CopyInto(state, targets);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _mean.Dispose();
        _variance.Dispose();
        _hasStatistics.Dispose();
    }
}
