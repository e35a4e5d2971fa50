// Pooled AP, AP-pool (Dave, Dollár, Ramanan, Kirillov, Girshick, "Evaluating Large-Vocabulary Object
// Detectors: The Devil is in the Details", arXiv:2102.01066, 2021, and its reference implementation
// LVISPooledEval in achalddave/large-vocab-devil): matching is unchanged (per image and category), but
// precision and recall are accumulated once over all detections of a group of categories (all, rare,
// common, frequent) sorted together by score, with num_gt the group's total. AP-pool therefore depends
// on how scores compare across categories — calibration — which per-category AP ignores. Area "all".
using Engine.Lvis;

namespace Engine.Evaluation;

internal static class PooledEvaluation
{
    public static PooledAp Compute(GroundTruthIndex gt, DetectionSelection dets, byte[] states, int[][] numGt)
    {
        return new PooledAp(
            Pool(gt, dets, states, numGt, null),
            Pool(gt, dets, states, numGt, LvisFrequency.Rare),
            Pool(gt, dets, states, numGt, LvisFrequency.Common),
            Pool(gt, dets, states, numGt, LvisFrequency.Frequent));
    }

    private static double Pool(GroundTruthIndex gt, DetectionSelection dets, byte[] states, int[][] numGt, LvisFrequency? group)
    {
        const int T = EvalParams.T, R = EvalParams.R;
        int total = 0;
        var members = new List<int>();
        for (int k = 0; k < gt.CategoryCount; k++)
        {
            if (group is not null && gt.Frequencies[k] != group)
                continue;
            total += numGt[k][0];
            for (int d = dets.CatDetStart[k]; d < dets.CatDetStart[k + 1]; d++)
                members.Add(d);
        }
        if (total == 0)
            return -1.0;
        // The reference concatenates per-(image, category) results image by image, categories in index order
        // inside an image, then sorts stably by score: ties go to the lower image, then the lower category,
        // then file order.
        var order = members.ToArray();
        Array.Sort(order, (x, y) =>
        {
            int c = dets.Score[y].CompareTo(dets.Score[x]);
            if (c != 0)
                return c;
            c = dets.Image[x].CompareTo(dets.Image[y]);
            return c != 0 ? c : x.CompareTo(y);   // selection order is (category, image, score, file)
        });
        var line = new byte[order.Length];
        var rc = new double[order.Length];
        var pr = new double[order.Length];
        var p101 = new double[R];
        var all = new double[T * R];
        for (int t = 0; t < T; t++)
        {
            for (int j = 0; j < order.Length; j++)
                line[j] = states[(long)order[j] * T + t];
            LvisEvaluator.Accumulate(line, total, p101, rc, pr);
            p101.CopyTo(all, t * R);
        }
        return NumpyMean.MeanOfDefined(all);
    }
}
