// log.jsonl: the fields of each line, the log period, and the cut back to the resumed iteration.
using System.Text.Json;

namespace Engine.Training.Tests;

public sealed class TrainingLogTests
{
    [Fact]
    public void LinesHoldEveryLossTotalLrTimesAndEta()
    {
        var dir = Toy.TempDir();
        var (m, opt) = Toy.Build(seed: 7, initSeed: 7);
        using var _ = m.Net;
        using var __ = opt;
        var schedule = Toy.Schedule();
        Toy.Trainer(m, opt, dir, 14, logPeriod: 5, seed: 7).Run();
        var lines = File.ReadAllLines(Path.Combine(dir, TrainingLog.FileName));
        Assert.Equal(3, lines.Length); // iterations 4, 9 and the last, 13
        var iters = new List<long>();
        foreach (var line in lines)
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            Assert.Equal(["iter", "loss_cls", "loss_l2", "total_loss", "lr", "time", "data_time", "eta_seconds"],
                         root.EnumerateObject().Select(p => p.Name));
            var iter = root.GetProperty("iter").GetInt64();
            iters.Add(iter);
            var cls = root.GetProperty("loss_cls").GetDouble();
            var l2 = root.GetProperty("loss_l2").GetDouble();
            var total = root.GetProperty("total_loss").GetDouble();
            // Means of sums and sums of means differ only by rounding: a few ulps of the total.
            Assert.True(Math.Abs(total - (cls + l2)) <= 1e-12 * Math.Abs(total), $"iter {iter}: total {total} vs {cls} + {l2}");
            Assert.Equal(schedule.LrAt(iter), root.GetProperty("lr").GetDouble());
            var time = root.GetProperty("time").GetDouble();
            var data = root.GetProperty("data_time").GetDouble();
            Assert.True(time > 0 && data >= 0 && data <= time, $"iter {iter}: time {time}, data_time {data}");
            // ETA = the line's seconds per iteration × the iterations left (timings vary, so it need not fall monotonically).
            var eta = root.GetProperty("eta_seconds").GetDouble();
            var expectedEta = time * (14 - iter - 1);
            Assert.True(Math.Abs(eta - expectedEta) <= 1e-12 * expectedEta, $"iter {iter}: eta {eta}, time × remaining {expectedEta}");
        }
        Assert.Equal([4L, 9L, 13L], iters);
        Assert.Equal(0, JsonDocument.Parse(lines[^1]).RootElement.GetProperty("eta_seconds").GetDouble());
    }

    [Fact]
    public void ResumeCutsLinesBeyondTheCheckpointAndATornLine()
    {
        var dir = Toy.TempDir();
        var path = Path.Combine(dir, TrainingLog.FileName);
        var losses = new Dictionary<string, double> { ["loss_a"] = 0.5 };
        using (var log = TrainingLog.Create(dir))
            for (var i = 0; i < 8; i++)
                log.Write(new LogEntry(i, losses, 0.5, 0.01, 0.2, 0.01, 10 - i));
        File.AppendAllText(path, "{\"iter\":8,\"loss_a\":0.");
        using (var log = TrainingLog.Resume(dir, 4))
            log.Write(new LogEntry(5, losses, 0.25, 0.01, 0.2, 0.01, 5));
        var entries = TrainingLog.Read(path);
        Assert.Equal([0L, 1, 2, 3, 4, 5], entries.Select(e => e.Iteration));
        Assert.Equal(0.25, entries[^1].TotalLoss);
        Assert.All(File.ReadAllLines(path), l => JsonDocument.Parse(l).Dispose());
    }

    [Fact]
    public void NonFiniteValuesStayParseable()
    {
        var dir = Toy.TempDir();
        using (var log = TrainingLog.Create(dir))
            log.Write(new LogEntry(0, new Dictionary<string, double> { ["loss_a"] = double.NaN }, double.PositiveInfinity, 0.01, 0.1, 0, 1));
        var entry = Assert.Single(TrainingLog.Read(Path.Combine(dir, TrainingLog.FileName)));
        Assert.True(double.IsNaN(entry.Losses["loss_a"]));
        Assert.True(double.IsPositiveInfinity(entry.TotalLoss));
    }

    [Fact]
    public void ConfigYamlIsWrittenAndConsoleProgressPrints()
    {
        var dir = Toy.TempDir();
        var config = new Engine.Config.EngineConfig { OutputDir = dir, Seed = 3 };
        var (m, opt) = Toy.Build(seed: 3, initSeed: 3);
        using var _ = m.Net;
        using var __ = opt;
        var options = TrainerOptions.FromConfig(config) with { MaxIter = 4, CheckpointPeriod = 0, EvalPeriod = 0 };
        var console = new StringWriter();
        new Trainer<ToyBatch>(m, opt, Toy.Schedule(), s => new ToySource(3, s), options) { Progress = new ConsoleProgressReporter(console, every: 2) }.Run();
        Assert.Equal(config.ToYaml(), File.ReadAllText(Path.Combine(dir, "config.yaml")));
        var printed = console.ToString();
        Assert.Contains("training 4 iterations", printed);
        Assert.Contains("iter 2/4", printed);
        Assert.Contains("iter 4/4", printed);
        Assert.DoesNotContain("iter 3/4", printed);
    }
}
