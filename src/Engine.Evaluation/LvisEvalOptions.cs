// Options and results of one LVIS evaluation run.
namespace Engine.Evaluation;

public enum IouType
{
    Bbox,
    Segm,
}

/// <summary>Progress of an evaluation: a stage name and how far through it (Done of Total units).</summary>
public readonly record struct EvalProgress(string Stage, long Done, long Total);

public sealed record LvisEvalOptions
{
    public IouType IouType { get; init; } = IouType.Bbox;

    /// <summary>Keep only the highest-scoring detections of each image, counted over all categories, before
    /// anything else (the official LVISResults max_dets = 300). 0 or less: no limit.</summary>
    public int MaxDetsPerImage { get; init; } = EvalParams.DefaultMaxDetsPerImage;

    /// <summary>Keep only the highest-scoring detections of each category over the whole dataset (AP-fixed
    /// uses 10,000 with no per-image limit). 0 or less: no limit.</summary>
    public int MaxDetsPerCategory { get; init; }

    /// <summary>Also compute pooled AP (all categories of a frequency group accumulated as one).</summary>
    public bool ComputePooled { get; init; }

    public IProgress<EvalProgress>? Progress { get; init; }

    /// <summary>Worker threads for the per-category loop; -1 uses every core.</summary>
    public int MaxDegreeOfParallelism { get; init; } = -1;
}

/// <summary>The 13 summary metrics of the official evaluator's results dict, as fractions; -1 where undefined.</summary>
public sealed record LvisSummary(
    double AP, double AP50, double AP75, double APs, double APm, double APl, double APr, double APc, double APf,
    double AR300, double ARs300, double ARm300, double ARl300)
{
    /// <summary>The metrics under the official results-dict keys, in the official order.</summary>
    public IReadOnlyList<KeyValuePair<string, double>> ToOfficialKeys() =>
    [
        new("AP", AP), new("AP50", AP50), new("AP75", AP75), new("APs", APs), new("APm", APm), new("APl", APl),
        new("APr", APr), new("APc", APc), new("APf", APf), new("AR@300", AR300), new("ARs@300", ARs300),
        new("ARm@300", ARm300), new("ARl@300", ARl300),
    ];
}

/// <summary>Pooled AP (Dave et al. 2021): one precision/recall curve per group of categories.</summary>
public sealed record PooledAp(double All, double Rare, double Common, double Frequent);

/// <summary>What the evaluator dropped or could not use, for reporting to the user. Matches the official API,
/// which drops these silently.</summary>
public sealed record EvalDiagnostics
{
    public int Detections { get; init; }
    public int DroppedByImageLimit { get; init; }
    public int DroppedByCategoryLimit { get; init; }
    public int UnknownCategory { get; init; }
    public int ZeroArea { get; init; }
    public int NotFederated { get; init; }
    public int Evaluated { get; init; }
    public int GroundTruthZeroArea { get; init; }
    public int GroundTruthUnknownCategory { get; init; }
}
