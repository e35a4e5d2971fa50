// RIO object-level resampling (long-tail-methods.md section 5.2): one FIFO queue per bank class (capacity 60) of
// box-head embeddings with their proposal and ground-truth boxes. Per training step, first sample: for every bank
// class among the batch's positives whose queue is not empty, replay k = min(count, q_c) entries (the k most recent,
// or k random ones without replacement); then push every positive of a bank class, dropping the oldest entry when
// full. So replays always come from earlier steps. Replayed rows are appended after the current rows as constants
// (they train only the predictor) with their class labels and stored boxes, so their regression targets are the ones
// of the step that pushed them. Classes are replayed in ascending order; most-recent entries oldest first.
// State (5.5, saved so that a resumed run continues identically): queues oldest first as (B, cap, D) embeddings,
// (B, cap, 8) boxes (proposal then GT), (B) lengths, with the bank class list.
using Engine.Nn;

namespace Engine.LongTail;

public sealed class RioMemoryReplay : IRoiEmbeddingAugmenter
{
    /// <summary>Replay count per class per step of the LVIS configs (MIN_CACHE; the base config uses 5).</summary>
    public const int DefaultReplayCount = 20;

    /// <summary>Queue capacity (MAX_CACHE).</summary>
    public const int DefaultCapacity = 60;

    private readonly int[] _bankClasses;
    private readonly int[] _slotOf;
    private readonly Queue?[] _queues;
    private bool _disposed;

    private sealed class Queue(int capacity, int d)
    {
        public readonly float[] Embeddings = new float[capacity * d];
        public readonly float[] Boxes = new float[capacity * 8];
        public int Head;
        public int Count;

        /// <summary>Physical slot of the i-th entry, oldest first.</summary>
        public int Slot(int i) => (Head + i) % (Embeddings.Length / Math.Max(d, 1));
    }

    /// <param name="bankClasses">the bank class list B (rare plus the rarest common classes; 553 on LVIS v1).</param>
    /// <param name="replayCount">k, entries replayed per present bank class per step; 0 disables the object level.</param>
    /// <param name="randomSelect">replay k random entries instead of the k most recent.</param>
    public RioMemoryReplay(int numClasses, int embeddingDim, IEnumerable<int> bankClasses, int replayCount = DefaultReplayCount,
                           int capacity = DefaultCapacity, bool randomSelect = false)
    {
        ArgumentNullException.ThrowIfNull(bankClasses);
        if (numClasses < 1) throw new ArgumentException($"RioMemoryReplay: C must be ≥ 1, got {numClasses}.");
        if (embeddingDim < 1) throw new ArgumentException($"RioMemoryReplay: embedding width D must be ≥ 1, got {embeddingDim}.");
        if (capacity < 1) throw new ArgumentException($"RioMemoryReplay: queue capacity must be ≥ 1, got {capacity}.");
        if (replayCount < 0) throw new ArgumentException($"RioMemoryReplay: replay count must be ≥ 0, got {replayCount}; 0 disables replay.");
        _bankClasses = bankClasses.Distinct().Order().ToArray();
        foreach (var c in _bankClasses)
            if (c < 0 || c >= numClasses)
                throw new ArgumentException($"RioMemoryReplay: bank class {c} outside the foreground classes 0..{numClasses - 1}.");
        (NumClasses, EmbeddingDim, ReplayCount, Capacity, RandomSelect) = (numClasses, embeddingDim, replayCount, capacity, randomSelect);
        _slotOf = Enumerable.Repeat(-1, numClasses).ToArray();
        for (var i = 0; i < _bankClasses.Length; i++) _slotOf[_bankClasses[i]] = i;
        _queues = new Queue?[_bankClasses.Length];
    }

    /// <summary>The bank class list from per-class training image counts m_c: every class with 1 ≤ m_c ≤ maxImages
    /// (10 = rare only, the base config; 30 = rare plus the rarest common classes, the LVIS configs' "rare_common30").</summary>
    public static int[] BankClassesByImageCount(IReadOnlyList<long> imageCounts, int maxImages)
    {
        ArgumentNullException.ThrowIfNull(imageCounts);
        if (maxImages < 0) throw new ArgumentException($"RioMemoryReplay.BankClassesByImageCount: maxImages must be ≥ 0, got {maxImages}.");
        return Enumerable.Range(0, imageCounts.Count).Where(c => imageCounts[c] >= 1 && imageCounts[c] <= maxImages).ToArray();
    }

    public int NumClasses { get; }
    public int EmbeddingDim { get; }
    public int ReplayCount { get; }
    public int Capacity { get; }
    public bool RandomSelect { get; }
    public IReadOnlyList<int> BankClasses => _bankClasses;

    /// <summary>Entries held for class c (0 for classes outside the bank).</summary>
    public int QueueLength(int c) => c >= 0 && c < NumClasses && _slotOf[c] >= 0 ? _queues[_slotOf[c]]?.Count ?? 0 : 0;

    /// <summary>The queue of class c, oldest first: embeddings (q, D) and boxes (q, 8) as proposal then GT.</summary>
    public (float[] Embeddings, float[] Boxes) Entries(int c)
    {
        var q = c >= 0 && c < NumClasses && _slotOf[c] >= 0 ? _queues[_slotOf[c]] : null;
        var n = q?.Count ?? 0;
        var (e, b) = (new float[n * EmbeddingDim], new float[n * 8]);
        for (var i = 0; i < n; i++)
        {
            var s = q!.Slot(i);
            Array.Copy(q.Embeddings, s * EmbeddingDim, e, i * EmbeddingDim, EmbeddingDim);
            Array.Copy(q.Boxes, s * 8, b, i * 8, 8);
        }
        return (e, b);
    }

    public RoiAugmentation Augment(RoiBatch batch, Generator generator)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(generator);
        var r = Check(batch);
        int d = EmbeddingDim;
        float[] x, proposals, gt;
        long[] y;
        using (GradMode.NoGrad())
        {
            x = batch.Embeddings.ToFloatArray();
            y = batch.Labels.ToInt64Array();
            proposals = batch.Proposals!.ToFloatArray();
            gt = batch.GtBoxes!.ToFloatArray();
        }

        // 1. sample from earlier steps
        var replayEmb = new List<float>();
        var replayBoxes = new List<float>();
        var replayLabels = new List<long>();
        if (ReplayCount > 0)
        {
            var present = y.Where(l => l < NumClasses && _slotOf[l] >= 0).Distinct().Order().ToArray();
            foreach (var c in present)
            {
                var q = _queues[_slotOf[c]];
                if (q is null || q.Count == 0) continue;
                var k = Math.Min(ReplayCount, q.Count);
                foreach (var i in Pick(q.Count, k, generator))
                {
                    var s = q.Slot(i);
                    replayEmb.AddRange(q.Embeddings.AsSpan(s * d, d));
                    replayBoxes.AddRange(q.Boxes.AsSpan(s * 8, 8));
                    replayLabels.Add(c);
                }
            }
        }

        // 2. push this step's positives of bank classes, row order
        for (var n = 0; n < r; n++)
        {
            if (y[n] >= NumClasses || _slotOf[y[n]] < 0) continue;
            var q = _queues[_slotOf[y[n]]] ??= new Queue(Capacity, d);
            int slot;
            if (q.Count < Capacity) slot = q.Slot(q.Count++);
            else { slot = q.Head; q.Head = (q.Head + 1) % Capacity; }
            Array.Copy(x, n * d, q.Embeddings, slot * d, d);
            Array.Copy(proposals, n * 4, q.Boxes, slot * 8, 4);
            Array.Copy(gt, n * 4, q.Boxes, slot * 8 + 4, 4);
        }

        // 3. current rows, then the replayed constants
        var a = replayLabels.Count;
        var device = batch.Embeddings.Device;
        using var appendedX = Tensor.From<float>(replayEmb.ToArray(), [a, d], device);
        using var appendedY = Tensor.From<long>(replayLabels.ToArray(), [a], device);
        var boxes = replayBoxes.ToArray();
        var appendedP = new float[a * 4];
        var appendedG = new float[a * 4];
        for (var i = 0; i < a; i++)
        {
            Array.Copy(boxes, i * 8, appendedP, i * 4, 4);
            Array.Copy(boxes, i * 8 + 4, appendedG, i * 4, 4);
        }
        using var appendedPt = Tensor.From<float>(appendedP, [a, 4], device);
        using var appendedGt = Tensor.From<float>(appendedG, [a, 4], device);
        var embeddings = Tensor.Cat([batch.Embeddings, appendedX], 0);
        using (GradMode.NoGrad())
            return new RoiAugmentation(embeddings, Tensor.Cat([batch.Labels, appendedY], 0), Tensor.Cat([batch.Proposals!, appendedPt], 0),
                                       Tensor.Cat([batch.GtBoxes!, appendedGt], 0), r, AppendedRowsRegress: true);
    }

    /// <summary>Queue positions (oldest = 0) to replay: the k most recent in queue order, or k distinct random ones in
    /// draw order (a partial Fisher–Yates shuffle).</summary>
    private IEnumerable<int> Pick(int count, int k, Generator generator)
    {
        if (!RandomSelect) return Enumerable.Range(count - k, k);
        var idx = Enumerable.Range(0, count).ToArray();
        for (var i = 0; i < k; i++)
        {
            var j = i + (int)generator.NextInt64(count - i);
            (idx[i], idx[j]) = (idx[j], idx[i]);
        }
        return idx.Take(k);
    }

    private int Check(RoiBatch batch)
    {
        var e = batch.Embeddings;
        if (e.Rank != 2 || e.Size(1) != EmbeddingDim || e.DType != DType.Float32)
            throw new ArgumentException($"RioMemoryReplay.Augment: embeddings must be float32 (R, D) with D = {EmbeddingDim}, got {e.DType.Name()} {ShapeUtil.Format(e.Shape)}.");
        var r = e.Size(0);
        if (batch.Labels.Rank != 1 || batch.Labels.Size(0) != r || batch.Labels.DType != DType.Int64)
            throw new ArgumentException($"RioMemoryReplay.Augment: labels must be int64 (R) = ({r}), got {batch.Labels.DType.Name()} {ShapeUtil.Format(batch.Labels.Shape)}.");
        foreach (var (name, t) in new[] { ("proposals", batch.Proposals), ("GT boxes", batch.GtBoxes) })
            if (t is null || t.Rank != 2 || t.Size(0) != r || t.Size(1) != 4 || t.DType != DType.Float32)
                throw new ArgumentException($"RioMemoryReplay.Augment: {name} must be float32 (R, 4) = ({r}, 4), got {(t is null ? "null" : $"{t.DType.Name()} {ShapeUtil.Format(t.Shape)}")}; the bank stores them to rebuild regression targets.");
        foreach (var l in batch.Labels.ToInt64Array())
            if (l < 0 || l > NumClasses)
                throw new ArgumentException($"RioMemoryReplay.Augment: label {l} outside 0..{NumClasses} (C = {NumClasses} is background).");
        return r;
    }

    public StateDict StateDict()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        int b = _bankClasses.Length, cap = Capacity, d = EmbeddingDim;
        var emb = new float[(long)b * cap * d];
        var boxes = new float[b * cap * 8];
        var lengths = new long[b];
        for (var i = 0; i < b; i++)
        {
            var (e, bx) = Entries(_bankClasses[i]);
            e.CopyTo(emb, (long)i * cap * d);
            bx.CopyTo(boxes, i * cap * 8);
            lengths[i] = e.Length / d;
        }
        var dict = new StateDict();
        using (DisposeScope.Suspend())
        {
            dict.Add("bank_classes", Tensor.From<long>(_bankClasses.Select(c => (long)c).ToArray(), [b]));
            dict.Add("lengths", Tensor.From<long>(lengths, [b]));
            dict.Add("embeddings", Tensor.From<float>(emb, [b, cap, d]));
            dict.Add("boxes", Tensor.From<float>(boxes, [b, cap, 8]));
        }
        return dict;
    }

    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(state);
        int b = _bankClasses.Length, cap = Capacity, d = EmbeddingDim;
        var expected = new (string Name, DType Type, int[] Shape)[]
        {
            ("bank_classes", DType.Int64, [b]), ("lengths", DType.Int64, [b]), ("embeddings", DType.Float32, [b, cap, d]), ("boxes", DType.Float32, [b, cap, 8]),
        };
        var errors = StateCheck.Problems(state, expected);
        if (errors.Count == 0 && !state["bank_classes"].ToInt64Array().SequenceEqual(_bankClasses.Select(c => (long)c)))
            errors.Add("'bank_classes' differs from this bank's class list");
        var lengths = errors.Count == 0 ? state["lengths"].ToInt64Array() : [];
        if (lengths.Any(l => l < 0 || l > cap)) errors.Add($"'lengths' outside 0..{cap}");
        if (errors.Count > 0)
            throw new ArgumentException($"RioMemoryReplay.LoadStateDict: {string.Join("; ", errors)}; pass a state saved by a RioMemoryReplay with the same bank classes, capacity {cap} and D = {d}.");
        var emb = state["embeddings"].ToFloatArray();
        var boxes = state["boxes"].ToFloatArray();
        for (var i = 0; i < b; i++)
        {
            if (lengths[i] == 0) { _queues[i] = null; continue; }
            var q = new Queue(cap, d) { Count = (int)lengths[i] };
            Array.Copy(emb, (long)i * cap * d, q.Embeddings, 0, (long)cap * d);
            Array.Copy(boxes, i * cap * 8, q.Boxes, 0, cap * 8);
            _queues[i] = q;
        }
    }

    public void Dispose() => _disposed = true;
}
