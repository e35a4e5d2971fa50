// The demo driver end to end on a tiny schedule: it generates the synthetic set into its output folder once,
// trains and evaluates each method with the shipped configs (shrunk by overrides), writes the per-method files and
// the comparison (methods.csv, report.html with one bar per method and group), resumes a finished run instead of
// retraining it, refuses a folder that holds another config's run, and rejects unknown or repeated methods before
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
        foreach (var (method, file, config) in DemoRunner.Plan(options))
            into.Add(DemoRunner.RunMethod(method, file, config, options));
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
        var (method, configFile, config) = DemoRunner.Plan(longer)[0];
        var refused = Assert.Throws<InvalidOperationException>(() => DemoRunner.RunMethod(method, configFile, config, longer));
        Assert.Contains("different config", refused.Message);
        Assert.Contains("--fresh", refused.Message);
        var fresh = Options(output, [DemoRunner.Baseline], maxIter: 6, fresh: true);
        var restarted = DemoRunner.RunMethod(method, configFile, DemoRunner.Plan(fresh)[0].Config, fresh);
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
