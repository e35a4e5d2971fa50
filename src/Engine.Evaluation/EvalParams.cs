// The fixed parameters of LVIS evaluation, built with the same double arithmetic as the official
// evaluator's numpy.linspace calls (lvis-eval.md section 5.7-5.8), because recalls and IoUs that land
// exactly on a threshold are common and the last bit decides which side they fall on.
namespace Engine.Evaluation;

public static class EvalParams
{
    /// <summary>10 IoU thresholds: numpy linspace(0.5, 0.95, 10) = 0.5 + i*0.049999999999999996, last exactly 0.95
    /// (index 8 is 0.8999999999999999).</summary>
    public static readonly double[] IouThresholds = Linspace(0.5, 0.95, 10);

    /// <summary>101 recall thresholds: numpy linspace(0, 1, 101) = i*0.01, last exactly 1.0 (ten of them differ
    /// from i/100, e.g. 0.35000000000000003).</summary>
    public static readonly double[] RecallThresholds = Linspace(0.0, 1.0, 101);

    /// <summary>Area ranges in pixels², inclusive at both ends: all, small, medium, large.</summary>
    public static readonly (double Lo, double Hi)[] AreaRanges =
    [
        (0.0, 1e10),
        (0.0, 32.0 * 32.0),
        (32.0 * 32.0, 96.0 * 96.0),
        (96.0 * 96.0, 1e10),
    ];

    public static readonly string[] AreaLabels = ["all", "small", "medium", "large"];

    public const int T = 10;
    public const int R = 101;
    public const int A = 4;

    /// <summary>The official per-image detection limit (LVISResults max_dets).</summary>
    public const int DefaultMaxDetsPerImage = 300;

    /// <summary>numpy.linspace with endpoint: y_i = i*step + start, step = (stop - start)/(n - 1), last = stop.</summary>
    internal static double[] Linspace(double start, double stop, int n)
    {
        var y = new double[n];
        double step = (stop - start) / (n - 1);
        for (int i = 0; i < n; i++)
            y[i] = i * step + start;
        y[n - 1] = stop;
        return y;
    }
}
