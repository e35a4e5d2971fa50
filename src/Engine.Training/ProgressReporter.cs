// How a run shows its progress. The command line renders a progress bar with an ETA; tests and CI use the
// plain console reporter, which prints one line every few iterations.
using System.Globalization;

namespace Engine.Training;

public readonly record struct TrainingProgress(long Iteration, long MaxIter, double TotalLoss, double Lr, double SecondsPerIter, double EtaSeconds);

public interface IProgressReporter
{
    void Start(long startIteration, long maxIter);

    /// <summary>Called after every completed iteration.</summary>
    void Report(TrainingProgress progress);

    void Finish();
}

/// <summary>Prints "iter 20/90000  total_loss 1.2345  lr 0.00200  0.412 s/iter  eta 10:17:12" every
/// <c>every</c> iterations and on the last.</summary>
public sealed class ConsoleProgressReporter(TextWriter writer, int every = 20) : IProgressReporter
{
    private readonly int _every = every >= 1 ? every : throw new ArgumentOutOfRangeException(nameof(every), $"ConsoleProgressReporter: every must be ≥ 1, got {every}.");

    public void Start(long startIteration, long maxIter) =>
        writer.WriteLine(startIteration == 0 ? $"training {maxIter} iterations" : $"resuming at iteration {startIteration} of {maxIter}");

    public void Report(TrainingProgress p)
    {
        if ((p.Iteration + 1) % _every != 0 && p.Iteration + 1 != p.MaxIter) return;
        writer.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"iter {p.Iteration + 1}/{p.MaxIter}  total_loss {p.TotalLoss:F4}  lr {p.Lr:G5}  {p.SecondsPerIter:F3} s/iter  eta {TimeSpan.FromSeconds(Math.Round(p.EtaSeconds)):c}"));
    }

    public void Finish() => writer.WriteLine("training finished");
}

/// <summary>Reports nothing.</summary>
public sealed class NullProgressReporter : IProgressReporter
{
    public static NullProgressReporter Instance { get; } = new();
    public void Start(long startIteration, long maxIter) { }
    public void Report(TrainingProgress progress) { }
    public void Finish() { }
}
