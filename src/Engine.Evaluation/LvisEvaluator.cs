// The LVIS evaluator (lvis-eval.md sections 4-6): per category, in parallel, each image's detections
// are matched greedily to its GT for every area range and IoU threshold, then the matches of all images
// are accumulated in score order into a 101-point interpolated precision and a recall. Only
// (image, category) groups that hold a detection or a GT are visited, which is what makes it fast: the
// official code loops over all 6 M image x category pairs in Python. Memory per worker is bounded by
// the largest category's detections.
using System.Runtime.CompilerServices;
using Engine.Lvis;

namespace Engine.Evaluation;

public sealed class LvisEvalResult
{
    internal LvisEvalResult(GroundTruthIndex gt, double[] precision, double[] recall, int[][] numGt, EvalDiagnostics diagnostics, PooledAp? pooled)
    {
        GroundTruth = gt;
        Precision = precision;
        Recall = recall;
        NumGt = numGt;
        Diagnostics = diagnostics;
        Pooled = pooled;
        PerCategoryAp = new double[gt.CategoryCount];
        var block = new double[EvalParams.T * EvalParams.R];
        for (int k = 0; k < gt.CategoryCount; k++)
        {
            for (int t = 0; t < EvalParams.T; t++)
            {
                for (int r = 0; r < EvalParams.R; r++)
                    block[t * EvalParams.R + r] = PrecisionAt(t, r, k, 0);
            }
            PerCategoryAp[k] = NumpyMean.MeanOfDefinedInPlace(block);
        }
        Summary = Summaries.Compute(this);
    }

    public GroundTruthIndex GroundTruth { get; }

    /// <summary>(T=10, R=101, K, A=4) in C order, as the official eval["precision"]; -1 where a category has no GT in an area range.</summary>
    public double[] Precision { get; }

    /// <summary>(T=10, K, A=4) in C order, as the official eval["recall"].</summary>
    public double[] Recall { get; }

    /// <summary>Non-ignored GT count per category and area range.</summary>
    internal int[][] NumGt { get; }

    public LvisSummary Summary { get; }

    /// <summary>AP at IoU 0.50:0.95, area all, per category index; -1 without GT.</summary>
    public double[] PerCategoryAp { get; }

    public EvalDiagnostics Diagnostics { get; }

    public PooledAp? Pooled { get; }

    public double PrecisionAt(int t, int r, int k, int a) =>
        Precision[((t * EvalParams.R + r) * GroundTruth.CategoryCount + k) * EvalParams.A + a];

    public double RecallAt(int t, int k, int a) => Recall[(t * GroundTruth.CategoryCount + k) * EvalParams.A + a];
}

public static class LvisEvaluator
{
    /// <summary>Detection states per (area range, IoU threshold): true positive, false positive, or ignored
    /// (neither: matched to an ignored GT, or unmatched but outside the area range / of a not-exhaustive category).</summary>
    internal const byte Fp = 0, Tp = 1, Ignored = 2;

    public static LvisEvalResult Evaluate(LvisDataset groundTruth, LvisResults results, LvisEvalOptions? options = null) =>
        Evaluate(new GroundTruthIndex(groundTruth), results, options);

    public static LvisEvalResult Evaluate(GroundTruthIndex gt, LvisResults results, LvisEvalOptions? options = null)
    {
        options ??= new LvisEvalOptions();
        IMaskOps? masks = NeedsMasks(results, options) ? MaskOps.Instance : null;
        var dets = DetectionSelection.Build(gt, results, options, masks);
        IouSource iou = options.IouType == IouType.Bbox
            ? new BoxIouSource(gt, dets)
            : MaskOps.Instance.CreateIouSource(gt, dets, results);

        int K = gt.CategoryCount;
        var precision = new double[EvalParams.T * EvalParams.R * K * EvalParams.A];
        var recall = new double[EvalParams.T * K * EvalParams.A];
        Array.Fill(precision, -1.0);
        Array.Fill(recall, -1.0);
        var numGt = new int[K][];
        byte[]? pooledStates = options.ComputePooled ? new byte[EvalParams.T * dets.Count] : null;

        long done = 0;
        var progress = options.Progress;
        progress?.Report(new EvalProgress("evaluating", 0, K));
        // Large categories first so the tail of the parallel loop is short.
        var cats = Enumerable.Range(0, K)
            .OrderByDescending(k => (long)(dets.CatDetStart[k + 1] - dets.CatDetStart[k]) + (gt.CatGtStart[k + 1] - gt.CatGtStart[k]))
            .ToArray();
        Parallel.ForEach(
            System.Collections.Concurrent.Partitioner.Create(cats, loadBalance: true),
            new ParallelOptions { MaxDegreeOfParallelism = options.MaxDegreeOfParallelism },
            () => new CategoryWorker(gt, dets, iou),
            (k, _, worker) =>
            {
                numGt[k] = worker.Run(k, precision, recall, pooledStates);
                long d = Interlocked.Increment(ref done);
                if (progress is not null && (d % 16 == 0 || d == K))
                    progress.Report(new EvalProgress("evaluating", d, K));
                return worker;
            },
            _ => { });

        PooledAp? pooled = pooledStates is null ? null : PooledEvaluation.Compute(gt, dets, pooledStates, numGt);
        return new LvisEvalResult(gt, precision, recall, numGt, dets.Diagnostics, pooled);
    }

    private static bool NeedsMasks(LvisResults results, LvisEvalOptions options) =>
        options.IouType == IouType.Segm || (results.Count > 0 && !results.HasBox[0]);

    /// <summary>Accumulates detection states given in score order into the 101-point interpolated precision
    /// (written to precision101) and returns the recall (lvis-eval.md section 5). Ignored detections are
    /// skipped: in the official arrays they repeat their predecessor's recall and precision (or 0, 0 at the
    /// start), which changes neither the envelope nor the first index reaching a recall threshold.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static double Accumulate(ReadOnlySpan<byte> statesInScoreOrder, int numGt, Span<double> precision101, Span<double> rcBuffer, Span<double> prBuffer)
    {
        int m = 0;
        double tp = 0, fp = 0;
        double eps = Math.BitIncrement(1.0) - 1.0;   // np.spacing(1) = 2^-52
        foreach (byte s in statesInScoreOrder)
        {
            if (s == Ignored)
                continue;
            if (s == Tp)
                tp += 1;
            else
                fp += 1;
            rcBuffer[m] = tp / numGt;
            prBuffer[m] = tp / ((fp + tp) + eps);
            m++;
        }
        for (int i = m - 1; i > 0; i--)
        {
            if (prBuffer[i] > prBuffer[i - 1])
                prBuffer[i - 1] = prBuffer[i];
        }
        var thresholds = EvalParams.RecallThresholds;
        int p = 0;
        for (int r = 0; r < thresholds.Length; r++)
        {
            while (p < m && rcBuffer[p] < thresholds[r])
                p++;
            precision101[r] = p < m ? prBuffer[p] : 0.0;
        }
        return m > 0 ? rcBuffer[m - 1] : 0.0;
    }

    /// <summary>Per-thread scratch and the per-category pass: matching per image, then accumulation.</summary>
    private sealed class CategoryWorker(GroundTruthIndex gt, DetectionSelection dets, IouSource iouSource)
    {
        private byte[] _states = [];
        private double[] _iou = [];
        private int[] _order = [];
        private bool[] _gtIgnore = [];
        private bool[] _gtMatched = [];
        private byte[] _line = [];
        private double[] _rc = [];
        private double[] _pr = [];
        private readonly double[] _p101 = new double[EvalParams.R];

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public int[] Run(int k, double[] precision, double[] recall, byte[]? pooledStates)
        {
            const int T = EvalParams.T, A = EvalParams.A, R = EvalParams.R;
            int d0 = dets.CatDetStart[k], d1 = dets.CatDetStart[k + 1], g0 = gt.CatGtStart[k], g1 = gt.CatGtStart[k + 1];
            int n = d1 - d0;
            Ensure(ref _states, A * T * n);
            var numGt = new int[A];
            int di = d0, gi = g0;
            while (di < d1 || gi < g1)
            {
                int image = Math.Min(di < d1 ? dets.Image[di] : int.MaxValue, gi < g1 ? gt.GtImage[gi] : int.MaxValue);
                int de = di, ge = gi;
                while (de < d1 && dets.Image[de] == image)
                    de++;
                while (ge < g1 && gt.GtImage[ge] == image)
                    ge++;
                MatchImage(k, image, di, de - di, gi, ge - gi, d0, n, numGt);
                di = de;
                gi = ge;
            }

            if (pooledStates is not null)
            {
                for (int t = 0; t < T; t++)
                {
                    for (int j = 0; j < n; j++)
                        pooledStates[(long)(d0 + j) * T + t] = _states[t * n + j];
                }
            }

            // Accumulation order: score descending; ties by image index, then file order — which is the
            // current (image, score, file) order, so a stable sort by score suffices.
            var perm = new int[n];
            for (int j = 0; j < n; j++)
                perm[j] = d0 + j;
            DetectionSelection.SortByScoreDescending(perm, dets.Score);
            Ensure(ref _line, n);
            Ensure(ref _rc, n);
            Ensure(ref _pr, n);
            int K = gt.CategoryCount;
            for (int a = 0; a < A; a++)
            {
                if (numGt[a] == 0)
                    continue;   // precision and recall stay -1 (section 5.2)
                for (int t = 0; t < T; t++)
                {
                    var states = _states.AsSpan((a * T + t) * n, n);
                    for (int j = 0; j < n; j++)
                        _line[j] = states[perm[j] - d0];
                    double rec = Accumulate(_line.AsSpan(0, n), numGt[a], _p101, _rc, _pr);
                    recall[(t * K + k) * A + a] = rec;
                    for (int r = 0; r < R; r++)
                        precision[((t * R + r) * K + k) * A + a] = _p101[r];
                }
            }
            return numGt;
        }

        /// <summary>Greedy matching of one image's detections of category k (lvis-eval.md section 4) for every
        /// area range and threshold; writes the states of detections [ds, ds + nd) and counts non-ignored GT.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void MatchImage(int k, int image, int ds, int nd, int gs, int ng, int d0, int n, int[] numGt)
        {
            const int T = EvalParams.T, A = EvalParams.A;
            if (nd > 0 && ng > 0)
            {
                Ensure(ref _iou, nd * ng);
                iouSource.Compute(image, ds, nd, gs, ng, _iou.AsSpan(0, nd * ng));
            }
            Ensure(ref _order, ng);
            Ensure(ref _gtIgnore, ng);
            Ensure(ref _gtMatched, ng);
            bool notExhaustive = Array.BinarySearch(gt.NotExhaustive[image], k) >= 0;
            var thresholds = EvalParams.IouThresholds;
            for (int a = 0; a < A; a++)
            {
                var (lo, hi) = EvalParams.AreaRanges[a];
                // GT order: non-ignored first, then ignored, each in file order (a stable sort on the flag).
                int nonIgnored = 0;
                for (int g = 0; g < ng; g++)
                {
                    double area = gt.GtArea[gs + g];
                    if (!(gt.GtIgnore[gs + g] || area < lo || area > hi))
                        _order[nonIgnored++] = g;
                }
                int pos = nonIgnored;
                for (int g = 0; g < ng; g++)
                {
                    double area = gt.GtArea[gs + g];
                    if (gt.GtIgnore[gs + g] || area < lo || area > hi)
                        _order[pos++] = g;
                }
                for (int o = 0; o < ng; o++)
                    _gtIgnore[o] = o >= nonIgnored;
                numGt[a] += nonIgnored;
                if (nd == 0)
                    continue;

                for (int t = 0; t < T; t++)
                {
                    var states = _states.AsSpan((a * T + t) * n + (ds - d0), nd);
                    Array.Clear(_gtMatched, 0, ng);
                    double thr = Math.Min(thresholds[t], 1 - 1e-10);
                    for (int d = 0; d < nd; d++)
                    {
                        double best = thr;
                        int m = -1;
                        var row = _iou.AsSpan(d * ng, ng);
                        for (int o = 0; o < ng; o++)
                        {
                            if (_gtMatched[o])
                                continue;
                            if (m > -1 && !_gtIgnore[m] && _gtIgnore[o])
                                break;
                            double v = row[_order[o]];
                            if (v < best)
                                continue;
                            best = v;
                            m = o;
                        }
                        bool unmatchedIgnore = dets.Area[ds + d] < lo || dets.Area[ds + d] > hi || notExhaustive;
                        if (m == -1)
                        {
                            states[d] = unmatchedIgnore ? Ignored : Fp;
                            continue;
                        }
                        _gtMatched[m] = true;
                        if (gt.GtIdIsZero[gs + _order[m]])
                        {
                            // Matched to a GT with id 0: the official code stores the GT id as the match,
                            // so this detection reads as unmatched, with the GT's ignore flag (section 8).
                            states[d] = _gtIgnore[m] || unmatchedIgnore ? Ignored : Fp;
                        }
                        else
                        {
                            states[d] = _gtIgnore[m] ? Ignored : Tp;
                        }
                    }
                }
            }
        }

        private static void Ensure<T>(ref T[] array, int size)
        {
            if (array.Length < size)
                array = new T[Math.Max(size, array.Length * 2)];
        }
    }
}
