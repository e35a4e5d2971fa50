// BAGS, balanced group softmax (section 6). Classes are split by training-instance count into foreground groups
// G1..G4 (n < 10, 10–99, 100–999, ≥ 1000 by default); the logits are laid out group by group: G0 = (background,
// foreground), then each Gk = (others, its classes in category-id order), C + 6 in all. A separate softmax runs in
// each group (the fused GroupSoftmax op). Loss: Σ_k Σ_i ω_ik·CE_k(i) / max(Σ_i ω_ik, 1), where in G1..G4 the "others"
// RoIs are subsampled to at most floor(β·in-group count) and a group without in-group RoIs contributes nothing.
// Scores: q^k_pos(c)·q^0_fg for class c of group k, background q^0_bg.
namespace Engine.LongTail;

public sealed class GroupSoftmaxLoss : ClassificationLoss
{
    private readonly Tensor _offsets;
    private readonly Tensor _fgColumns;
    private readonly Tensor _generatorState;
    private readonly int[] _groupOf;
    private readonly int[] _column;
    private readonly long[] _offsetValues;
    private Generator _generator;

    /// <param name="instanceCounts">n_c, training instances of each class (C values).</param>
    /// <param name="generator">the random source of the "others" subsampling (its position is part of the state).</param>
    /// <param name="beta">others-to-in-group ratio (8, the "bg8" configs); double.PositiveInfinity keeps every RoI.</param>
    /// <param name="binEdges">instance-count edges of the foreground groups (10, 100, 1000 → 4 groups).</param>
    public GroupSoftmaxLoss(IReadOnlyList<long> instanceCounts, Generator generator, double beta = 8, IReadOnlyList<long>? binEdges = null)
        : base(instanceCounts.Count, instanceCounts.Count + 2 + ((binEdges?.Count ?? 3) + 1))
    {
        ArgumentNullException.ThrowIfNull(generator);
        if (!(beta >= 0)) throw new ArgumentException($"GroupSoftmaxLoss: beta must be ≥ 0, got {beta}.");
        var edges = (binEdges ?? [10, 100, 1000]).ToArray();
        for (var e = 1; e < edges.Length; e++)
            if (edges[e] <= edges[e - 1]) throw new ArgumentException($"GroupSoftmaxLoss: bin edges [{string.Join(", ", edges)}] must rise strictly.");
        (Beta, _generator) = (beta, generator);
        var fgGroups = edges.Length + 1;
        _groupOf = new int[NumClasses];
        for (var c = 0; c < NumClasses; c++)
        {
            var g = 1;
            while (g <= edges.Length && instanceCounts[c] >= edges[g - 1]) g++;
            _groupOf[c] = g;
        }
        var sizes = new int[fgGroups + 1];
        sizes[0] = 2;
        for (var g = 1; g <= fgGroups; g++) sizes[g] = 1 + _groupOf.Count(x => x == g);
        _offsetValues = new long[fgGroups + 2];
        for (var g = 0; g <= fgGroups; g++) _offsetValues[g + 1] = _offsetValues[g] + sizes[g];
        _column = new int[NumClasses];
        var next = _offsetValues.Take(fgGroups + 1).Select(o => (int)o + 1).ToArray();
        for (var c = 0; c < NumClasses; c++) _column[c] = next[_groupOf[c]]++;
        using (DisposeScope.Suspend())
        {
            _offsets = Tensor.From(_offsetValues, _offsetValues.Length);
            _fgColumns = Tensor.From(_column.Select(x => (long)x).ToArray(), NumClasses);
        }
        _generatorState = AddState("generator", GeneratorState.Save(generator));
    }

    public double Beta { get; }

    /// <summary>Number of groups including G0.</summary>
    public int GroupCount => _offsetValues.Length - 1;

    /// <summary>Column offsets of the groups (GroupCount + 1 values, from 0 to C + GroupCount + 1).</summary>
    public IReadOnlyList<long> Offsets => _offsetValues;

    /// <summary>The foreground group (1..GroupCount−1) of class c.</summary>
    public int GroupOf(int c) => _groupOf[c];

    /// <summary>The logit column of class c.</summary>
    public int ColumnOf(int c) => _column[c];

    /// <summary>Sizes of the foreground groups without their "others" logit.</summary>
    public int[] ForegroundGroupSizes() => Enumerable.Range(1, GroupCount - 1).Select(g => _groupOf.Count(x => x == g)).ToArray();

    public Generator Generator => _generator;

    /// <summary>Per RoI and group: the column of the group label (N, G) and ω_ik / max(Σ_i ω_ik, 1) (N, G), drawing the
    /// "others" subsample from the generator.</summary>
    public (long[] Columns, double[] Weights) Targets(IReadOnlyList<long> labels)
    {
        var n = labels.Count;
        var g = GroupCount;
        var columns = new long[n * g];
        var weights = new double[n * g];
        for (var i = 0; i < n; i++)
        {
            var l = labels[i];
            var fg = l < NumClasses;
            columns[i * g] = fg ? 1 : 0;
            weights[i * g] = 1.0 / Math.Max(n, 1);
            for (var k = 1; k < g; k++)
                columns[i * g + k] = fg && _groupOf[l] == k ? _column[l] : _offsetValues[k];
        }
        var inGroup = new List<int>();
        var others = new List<int>();
        for (var k = 1; k < g; k++)
        {
            inGroup.Clear();
            others.Clear();
            for (var i = 0; i < n; i++) (labels[i] < NumClasses && _groupOf[labels[i]] == k ? inGroup : others).Add(i);
            if (inGroup.Count == 0) continue;
            var keep = others.Count;
            if (others.Count > Beta * inGroup.Count)
            {
                // a uniform subset of floor(β·in-group) others, without replacement: the first `keep` of a partial shuffle
                keep = (int)Math.Floor(Beta * inGroup.Count);
                for (var d = 0; d < keep; d++)
                {
                    var j = d + (int)_generator.NextInt64(others.Count - d);
                    (others[d], others[j]) = (others[j], others[d]);
                }
            }
            var w = 1.0 / Math.Max(inGroup.Count + keep, 1);
            foreach (var i in inGroup) weights[i * g + k] = w;
            for (var d = 0; d < keep; d++) weights[others[d] * g + k] = w;
        }
        return (columns, weights);
    }

    protected override Tensor ComputeLoss(Tensor logits, Tensor labels, long[] hostLabels, LossContext context)
    {
        var (columns, weights) = Targets(hostLabels);
        var n = hostLabels.Length;
        // the offsets stay on the host, where both backends read them (on a device they would be read back every call)
        using var logq = LongTailOps.GroupSoftmax(logits, _offsets, log: true);
        using var index = Tensor.From<long>(columns, [n, GroupCount], logits.Device);
        using var w = Tensor.FromDoubles(weights, [n, GroupCount], DType.Float32, logits.Device);
        using var picked = logq.Gather(1, index);
        using var weighted = picked.Mul(w);
        using var sum = weighted.Sum();
        return sum.Neg();
    }

    protected override Tensor ComputeScores(Tensor logits)
    {
        using var columns = SigmoidWeights.OnDevice(_fgColumns, logits.Device);
        using var q = LongTailOps.GroupSoftmax(logits, _offsets);
        using var byClass = q.IndexSelect(1, columns);
        using var fg = q.Narrow(1, 1, 1);
        using var bg = q.Narrow(1, 0, 1);
        using var scores = byClass.Mul(fg);
        return Tensor.Cat([scores, bg], 1);
    }

    protected override void BeforeSave()
    {
        using var now = GeneratorState.Save(_generator);
        using (GradMode.NoGrad()) _generatorState.CopyFrom(now);
    }

    protected override void AfterLoad() => _generator = GeneratorState.Restore(_generatorState);

    protected override void DisposeOwned()
    {
        _offsets.Dispose();
        _fgColumns.Dispose();
    }
}
