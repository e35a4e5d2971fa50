// A deliberately plain LVIS evaluator written straight from lvis-eval.md, step by step as the
// official evaluator is described (per image x category x area range, full arrays with ignored
// detections kept, numpy-style searchsorted, ids for matches), with no attempt at speed. The fast
// evaluator is tested against it on random cases. Bbox only; means are plain left-to-right sums.
using Engine.Lvis;

namespace Engine.Evaluation.Tests;

internal sealed class ReferenceLvisEval
{
    public required double[,,,] Precision { get; init; }   // [T, R, K, A]
    public required double[,,] Recall { get; init; }       // [T, K, A]
    public required LvisCategory[] Categories { get; init; }

    private sealed record Det(int Id, long ImageId, int CategoryId, double[] Box, double Score, double Area);

    private sealed record ImgEval(double[] Scores, long[,] DtMatches, bool[,] DtIgnore, bool[] GtIgnore);

    public static ReferenceLvisEval Run(LvisDataset gt, LvisResults results, int maxDetsPerImage, int maxDetsPerCategory = 0)
    {
        double[] iouThrs = new double[10];
        for (int i = 0; i < 10; i++)
            iouThrs[i] = i * ((0.95 - 0.5) / 9) + 0.5;
        iouThrs[9] = 0.95;
        double[] recThrs = new double[101];
        for (int i = 0; i < 101; i++)
            recThrs[i] = i * 0.01;
        (double, double)[] areaRng = [(0, 1e10), (0, 1024), (1024, 9216), (9216, 1e10)];

        // 1. Results: (optional per-category budget), cut per image, ids in the resulting order.
        var raw = Enumerable.Range(0, results.Count).Select(i => (
            Image: results.ImageIds[i], Cat: results.CategoryIds[i], Box: results.Boxes.Slice(4 * i, 4).ToArray(), Score: results.Scores[i])).ToList();
        if (maxDetsPerCategory > 0)
        {
            raw = raw.GroupBy(r => r.Cat).SelectMany(g => g.OrderByDescending(r => r.Score).Take(maxDetsPerCategory)).ToList();
        }
        if (maxDetsPerImage > 0)
        {
            raw = raw.GroupBy(r => r.Image)
                .SelectMany(g => g.Count() <= maxDetsPerImage ? g.ToList() : g.OrderByDescending(r => r.Score).Take(maxDetsPerImage).ToList())
                .ToList();
        }
        var dets = raw.Select((r, i) => new Det(i + 1, r.Image, r.Cat, r.Box, r.Score, r.Box[2] * r.Box[3])).ToList();

        var imgIds = gt.Images.Select(i => i.Id).OrderBy(i => i).ToArray();
        var cats = gt.Categories.OrderBy(c => c.Id).ToArray();
        var catSet = cats.Select(c => c.Id).ToHashSet();

        // 2. Prepare.
        var gts = gt.Annotations.Where(a => catSet.Contains(a.CategoryId) && a.Area > 0 && a.Area < double.PositiveInfinity).ToList();
        var dts = dets.Where(d => catSet.Contains(d.CategoryId) && d.Area > 0 && d.Area < double.PositiveInfinity).ToList();
        var gtMap = new Dictionary<(long, int), List<LvisAnnotation>>();
        foreach (long img in imgIds)
        {
            foreach (var g in gts.Where(g => g.ImageId == img))
            {
                if (!gtMap.TryGetValue((img, g.CategoryId), out var l))
                    gtMap[(img, g.CategoryId)] = l = [];
                l.Add(g);
            }
        }
        var neg = gt.Images.ToDictionary(i => i.Id, i => i.NegCategoryIds!.ToHashSet());
        var notEx = gt.Images.ToDictionary(i => i.Id, i => i.NotExhaustiveCategoryIds!.ToHashSet());
        var present = gts.GroupBy(g => g.ImageId).ToDictionary(g => g.Key, g => g.Select(a => a.CategoryId).ToHashSet());
        var dtMap = new Dictionary<(long, int), List<Det>>();
        foreach (long img in imgIds)
        {
            foreach (var d in dts.Where(d => d.ImageId == img))
            {
                bool ok = neg[img].Contains(d.CategoryId) || (present.TryGetValue(img, out var p) && p.Contains(d.CategoryId));
                if (!ok)
                    continue;
                if (!dtMap.TryGetValue((img, d.CategoryId), out var l))
                    dtMap[(img, d.CategoryId)] = l = [];
                l.Add(d);
            }
        }

        // 3-4. Per image, category, area range.
        var evals = new ImgEval?[cats.Length, 4, imgIds.Length];
        for (int k = 0; k < cats.Length; k++)
        {
            for (int a = 0; a < 4; a++)
            {
                for (int i = 0; i < imgIds.Length; i++)
                {
                    var g = gtMap.GetValueOrDefault((imgIds[i], cats[k].Id)) ?? [];
                    var d = dtMap.GetValueOrDefault((imgIds[i], cats[k].Id)) ?? [];
                    evals[k, a, i] = EvaluateImg(g, d, areaRng[a], notEx[imgIds[i]].Contains(cats[k].Id), iouThrs);
                }
            }
        }

        // 5. Accumulate.
        var precision = new double[10, 101, cats.Length, 4];
        var recall = new double[10, cats.Length, 4];
        for (int t = 0; t < 10; t++)
            for (int k = 0; k < cats.Length; k++)
                for (int a = 0; a < 4; a++)
                {
                    recall[t, k, a] = -1;
                    for (int r = 0; r < 101; r++)
                        precision[t, r, k, a] = -1;
                }
        double eps = Math.Pow(2, -52);
        for (int k = 0; k < cats.Length; k++)
        {
            for (int a = 0; a < 4; a++)
            {
                var E = Enumerable.Range(0, imgIds.Length).Select(i => evals[k, a, i]).Where(e => e is not null).Select(e => e!).ToList();
                if (E.Count == 0)
                    continue;
                var scores = E.SelectMany(e => e.Scores).ToArray();
                var idx = Enumerable.Range(0, scores.Length).OrderBy(i => -scores[i]).ToArray();   // OrderBy is stable
                int numGt = E.Sum(e => e.GtIgnore.Count(x => !x));
                if (numGt == 0)
                    continue;
                for (int t = 0; t < 10; t++)
                {
                    var m = E.SelectMany(e => Enumerable.Range(0, e.Scores.Length).Select(j => e.DtMatches[t, j])).ToArray();
                    var ig = E.SelectMany(e => Enumerable.Range(0, e.Scores.Length).Select(j => e.DtIgnore[t, j])).ToArray();
                    int n = idx.Length;
                    var tp = new double[n];
                    var fp = new double[n];
                    double ctp = 0, cfp = 0;
                    for (int j = 0; j < n; j++)
                    {
                        long mm = m[idx[j]];
                        bool ii = ig[idx[j]];
                        if (mm != 0 && !ii) ctp++;
                        if (mm == 0 && !ii) cfp++;
                        tp[j] = ctp;
                        fp[j] = cfp;
                    }
                    var rc = tp.Select(x => x / numGt).ToArray();
                    recall[t, k, a] = n > 0 ? rc[n - 1] : 0;
                    var pr = Enumerable.Range(0, n).Select(j => tp[j] / (fp[j] + tp[j] + eps)).ToArray();
                    for (int j = n - 1; j > 0; j--)
                        if (pr[j] > pr[j - 1])
                            pr[j - 1] = pr[j];
                    for (int r = 0; r < 101; r++)
                    {
                        int ins = 0;
                        while (ins < n && rc[ins] < recThrs[r])
                            ins++;   // searchsorted, side='left'
                        precision[t, r, k, a] = ins < n ? pr[ins] : 0.0;
                    }
                }
            }
        }
        return new ReferenceLvisEval { Precision = precision, Recall = recall, Categories = cats };
    }

    private static ImgEval? EvaluateImg(List<LvisAnnotation> gt, List<Det> dt, (double Lo, double Hi) rng, bool notExhaustive, double[] iouThrs)
    {
        if (gt.Count == 0 && dt.Count == 0)
            return null;
        var gIgn = gt.Select(g => g.Ignore == true || g.Area < rng.Lo || g.Area > rng.Hi).ToArray();
        var gOrder = Enumerable.Range(0, gt.Count).OrderBy(i => gIgn[i] ? 1 : 0).ToArray();
        var dOrder = Enumerable.Range(0, dt.Count).OrderBy(i => -dt[i].Score).ToArray();
        var G = gOrder.Select(i => gt[i]).ToArray();
        var gIgnSorted = gOrder.Select(i => gIgn[i]).ToArray();
        var D = dOrder.Select(i => dt[i]).ToArray();
        var iou = new double[D.Length, G.Length];
        for (int d = 0; d < D.Length; d++)
            for (int g = 0; g < G.Length; g++)
                iou[d, g] = Iou(D[d].Box, G[g].Bbox!);
        var dtM = new long[10, D.Length];
        var gtM = new long[10, G.Length];
        var dtIg = new bool[10, D.Length];
        for (int t = 0; t < 10; t++)
        {
            if (D.Length == 0 || G.Length == 0)
                break;
            for (int d = 0; d < D.Length; d++)
            {
                double best = Math.Min(iouThrs[t], 1 - 1e-10);
                int m = -1;
                for (int g = 0; g < G.Length; g++)
                {
                    if (gtM[t, g] > 0) continue;
                    if (m > -1 && !gIgnSorted[m] && gIgnSorted[g]) break;
                    if (iou[d, g] < best) continue;
                    best = iou[d, g];
                    m = g;
                }
                if (m == -1) continue;
                dtIg[t, d] = gIgnSorted[m];
                dtM[t, d] = G[m].Id;
                gtM[t, m] = D[d].Id;
            }
        }
        for (int t = 0; t < 10; t++)
            for (int d = 0; d < D.Length; d++)
            {
                bool mask = D[d].Area < rng.Lo || D[d].Area > rng.Hi || notExhaustive;
                dtIg[t, d] = dtIg[t, d] || (dtM[t, d] == 0 && mask);
            }
        return new ImgEval(D.Select(d => d.Score).ToArray(), dtM, dtIg, gIgnSorted);
    }

    /// <summary>Box IoU from its definition: overlap extent from the box corners x and x + w.</summary>
    public static double Iou(double[] d, double[] g)
    {
        double w = Math.Min(d[2] + d[0], g[2] + g[0]) - Math.Max(d[0], g[0]);
        if (w <= 0) return 0;
        double h = Math.Min(d[3] + d[1], g[3] + g[1]) - Math.Max(d[1], g[1]);
        if (h <= 0) return 0;
        double inter = w * h;
        return inter / (d[2] * d[3] + g[2] * g[3] - inter);
    }

    /// <summary>Mean of the entries > -1 (plain left-to-right sum), or -1.</summary>
    public static double MeanDefined(IEnumerable<double> values)
    {
        double s = 0;
        int n = 0;
        foreach (double v in values)
        {
            if (v > -1) { s += v; n++; }
        }
        return n == 0 ? -1 : s / n;
    }
}
