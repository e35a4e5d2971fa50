// The demo driver end to end on a tiny schedule: it generates the synthetic set into its output folder once,
// trains and evaluates each method with the shipped configs (shrunk by overrides), writes the per-method files and
// the comparison (methods.csv, report.html with one bar per method and group), resumes a finished run instead of
// retraining it, refuses a folder that holds another config's run, runs decoupled methods (LogN, BAGS, BACL) after
// their earlier stage, which methods share, and rejects unknown or repeated methods and unreachable weights before
// doing any work.
using Engine.Data.Synthetic;
using Engine.Evaluation;
using Engine.Training.Demo;

namespace Engine.Training.Tests.Demo;

public sealed class DemoRunnerTests
{
    private const int Classes = 6;

    /// <summary>The shipped demo configs shrunk to seconds (see DetectorTrainingTests for why these widths).</summary>
    private static DemoOptions Options(string output, IReadOnlyList<string> methods, long maxIter = 4, bool fresh = false) => new()
    {
        OutputDirectory = output,
        ConfigsDirectory = Path.Combine(TinyDetector.RepoRoot, "configs"),
        Methods = methods,
        Fresh = fresh,
        LogPeriod = 1,
        Synthetic = new SyntheticOptions { OutputDirectory = "unused", Classes = Classes, TrainImages = 16, ValImages = 6, ImageSize = 64, Seed = 3 },
        Overrides =
        [
            .. TinyDetector.Overrides(Classes),
            $"SOLVER.MAX_ITER={maxIter}",
            "SOLVER.STEPS=[1]",
            "SOLVER.WARMUP_ITERS=1",
            "SOLVER.CHECKPOINT_PERIOD=2",
            "TEST.EVAL_PERIOD=0",
        ],
    };

    private static void RunAll(DemoOptions options, List<DemoMethodResult> into)
    {
        var finished = new Dictionary<string, DemoStageResult>();
        foreach (var plan in DemoRunner.Plan(options))
            into.Add(DemoRunner.RunMethod(plan, options, finished: finished));
    }

    [Fact]
    public void SingleMethodGeneratesTheSetTrainsEvaluatesAndResumesInsteadOfRetraining()
    {
        var output = Toy.TempDir();
        var options = Options(output, [DemoRunner.Baseline]);
        var generated = DemoRunner.EnsureDataset(options);
        Assert.NotNull(generated);
        Assert.Equal(Classes, generated.Categories.Count);
        Assert.True(File.Exists(Path.Combine(output, "datasets", DemoRunner.DatasetFolder, "train.json")));
        Assert.Null(DemoRunner.EnsureDataset(options)); // kept, not rewritten

        var results = new List<DemoMethodResult>();
        RunAll(options, results);
        var r = Assert.Single(results);
        Assert.Equal(output, r.RunDirectory); // one method: the output folder is the run folder
        foreach (var file in new[] { ReportFiles.MetricsFile, ReportFiles.PerCategoryFile, RunReport.FileName, "model_final.safetensors", TrainingLog.FileName })
            Assert.True(File.Exists(Path.Combine(output, file)), $"{file} missing from {output}");
        Assert.Equal(4, r.Iterations);
        Assert.True(r.Metrics.ContainsKey("APr") && r.Metrics.ContainsKey("APf"), string.Join(",", r.Metrics.Keys));
        Assert.Equal(Classes, r.Categories.Count);
        var groups = DemoRunner.ByFrequency(r.Categories);
        Assert.Equal(Classes, groups.Sum(g => g.Categories));
        Assert.Equal(r.Categories.Sum(c => c.InstanceCount), groups.Sum(g => g.TrainingInstances));

        // A second run of the same config finds the finished run: nothing is retrained, the metrics are the same.
        var weights = File.ReadAllBytes(Path.Combine(output, "model_final.safetensors"));
        var again = new List<DemoMethodResult>();
        RunAll(options, again);
        Assert.Equal(0, again[0].Iterations);
        Assert.Equal(r.Metrics["AP"], again[0].Metrics["AP"]);
        Assert.Equal(weights, File.ReadAllBytes(Path.Combine(output, "model_final.safetensors")));

        // Another schedule in the same folder is refused, and --fresh starts it over.
        var longer = Options(output, [DemoRunner.Baseline], maxIter: 6);
        var refused = Assert.Throws<InvalidOperationException>(() => DemoRunner.RunMethod(DemoRunner.Plan(longer)[0], longer));
        Assert.Contains("different config", refused.Message);
        Assert.Contains("--fresh", refused.Message);
        var fresh = Options(output, [DemoRunner.Baseline], maxIter: 6, fresh: true);
        var restarted = DemoRunner.RunMethod(DemoRunner.Plan(fresh)[0], fresh);
        Assert.Equal(6, restarted.Iterations);
    }

    [Fact]
    public void SeveralMethodsGetTheirOwnFoldersAndOneComparison()
    {
        var output = Toy.TempDir();
        var options = Options(output, [DemoRunner.Baseline, "rfs"], maxIter: 2);
        DemoRunner.EnsureDataset(options);
        var results = new List<DemoMethodResult>();
        RunAll(options, results);
        Assert.Equal(["baseline", "rfs"], results.Select(r => r.Method));
        foreach (var r in results)
        {
            Assert.Equal(Path.Combine(output, r.Method), r.RunDirectory);
            Assert.True(File.Exists(Path.Combine(r.RunDirectory, ReportFiles.MetricsFile)));
        }
        var csv = File.ReadAllLines(DemoRunner.WriteSummary(output, results));
        Assert.Equal(3, csv.Length);
        Assert.StartsWith("method,config,AP,", csv[0]);
        Assert.StartsWith("rfs,faster_rcnn_r18_fpn_rfs.yaml,", csv[2]);

        var html = File.ReadAllText(MethodComparisonReport.Write(output, results));
        Assert.Contains("baseline/report.html", html);
        Assert.Contains("rfs/report.html", html);
        // One bar per method and frequency group that has a finite AP (the tiny set's groups may lack ground truth).
        var bars = results.Sum(r => new[] { "APr", "APc", "APf" }.Count(k => DemoRunner.Get(r, k) is var v && double.IsFinite(v) && v >= 0));
        Assert.Equal(bars + 3, System.Text.RegularExpressions.Regex.Matches(html, "<rect ").Count); // + 3 legend swatches
    }

    [Fact]
    public void DecoupledMethodsRunTheirEarlierStagesOnceAndStartFromTheirWeights()
    {
        var output = Toy.TempDir();
        var options = Options(output, ["logn", "bags", "bacl"], maxIter: 2);
        var plans = DemoRunner.Plan(options);
        Assert.Equal(["baseline", "logn"], plans[0].Stages.Select(s => s.Name));
        Assert.Equal([DemoStageKind.Train, DemoStageKind.Calibrate], plans[0].Stages.Select(s => s.Kind));
        Assert.Equal(["baseline", "bags"], plans[1].Stages.Select(s => s.Name));
        Assert.Equal(["bacl_stage1", "bacl"], plans[2].Stages.Select(s => s.Name));
        foreach (var plan in plans)
        {
            var (first, second) = (plan.Stages[0], plan.Stages[1]);
            Assert.Equal(Path.Combine(output, first.Name), first.Config.OutputDir);
            Assert.Equal(Path.Combine(output, second.Name), second.Config.OutputDir);
            Assert.Equal("", first.Config.Model.Weights); // from scratch
            Assert.Equal(first.Name, second.From);
            Assert.Equal(Path.Combine(output, first.Name, "model_final.safetensors"), second.Config.Model.Weights); // not the config's output/synth/...
        }

        DemoRunner.EnsureDataset(options);
        var results = new List<DemoMethodResult>();
        RunAll(options, results);
        Assert.Equal(["logn", "bags", "bacl"], results.Select(r => r.Method));
        // The baseline trained once for both LogN and BAGS: its log has the two iterations of one run.
        Assert.Same(results[0].Stages[0], results[1].Stages[0]);
        Assert.Equal(2, File.ReadAllLines(Path.Combine(output, "baseline", TrainingLog.FileName)).Length);
        Assert.True(File.Exists(Path.Combine(output, "logn", "model_calibrated.safetensors")));
        Assert.False(File.Exists(Path.Combine(output, "logn", "model_final.safetensors"))); // calibrated, not trained
        Assert.Equal([2L, 0L], results[0].Stages.Select(s => s.Iterations));
        Assert.Equal([2L, 2L], results[2].Stages.Select(s => s.Iterations));
        foreach (var r in results)
        {
            Assert.Equal(Path.Combine(output, r.Method), r.RunDirectory);
            Assert.True(File.Exists(Path.Combine(r.RunDirectory, ReportFiles.MetricsFile)), r.Method);
            Assert.Equal(r.Stages.Sum(s => s.Seconds), r.TrainSeconds);
            Assert.All(r.Stages, s => Assert.True(s.Seconds > 0, s.Name));
        }

        // A second call keeps every finished stage: nothing trained or calibrated again, same metrics, the time kept.
        var calibrated = File.ReadAllBytes(Path.Combine(output, "logn", "model_calibrated.safetensors"));
        var again = new List<DemoMethodResult>();
        RunAll(options, again);
        Assert.All(again, r => Assert.Equal(0, r.Iterations));
        Assert.Equal(results.Select(r => r.Metrics["AP"]), again.Select(r => r.Metrics["AP"]));
        Assert.Equal(calibrated, File.ReadAllBytes(Path.Combine(output, "logn", "model_calibrated.safetensors")));
        Assert.All(again.Zip(results), p => Assert.True(p.First.TrainSeconds >= p.Second.TrainSeconds));
        // The speed of a stage trained by an earlier call comes from its log.
        Assert.All(again.SelectMany(r => r.Stages).Where(s => s.Kind == DemoStageKind.Train), s => Assert.True(double.IsFinite(s.ImagesPerSecond) && s.ImagesPerSecond > 0, s.Name));
    }

    [Fact]
    public void WeightsThatNoStageProducesAndNoFileHoldsAreRejected()
    {
        var output = Toy.TempDir();
        var missing = Path.Combine(output, "nowhere", "model.safetensors");
        var options = Options(output, [DemoRunner.Baseline]) with { Overrides = [.. Options(output, []).Overrides, $"MODEL.WEIGHTS={missing}"] };
        var e = Assert.Throws<ArgumentException>(() => DemoRunner.Plan(options));
        Assert.Contains(missing, e.Message);
        Assert.Contains("does not exist", e.Message);
    }

    [Fact]
    public void UnknownOrRepeatedMethodsAreRejectedBeforeAnyWork()
    {
        var output = Toy.TempDir();
        var unknown = Assert.Throws<ArgumentException>(() => DemoRunner.Plan(Options(output, ["baseline", "nosuch"])));
        Assert.Contains("'nosuch'", unknown.Message);
        Assert.Contains("baseline", unknown.Message); // the valid choices are listed
        var twice = Assert.Throws<ArgumentException>(() => DemoRunner.Plan(Options(output, ["rfs", "rfs"])));
        Assert.Contains("twice", twice.Message);
        Assert.Throws<ArgumentException>(() => DemoRunner.Plan(Options(output, [])));
        Assert.False(Directory.Exists(Path.Combine(output, "datasets")));
    }
}
