// BenchmarkDotNet timing of the oneDNN shim through the C# OneDnn API: ResNet-50 convolutions
// (forward, backward-data, backward-weights) and the box-head FC matmuls of OneDnnCase.All(), each
// validated against the reference before it is timed; GFLOP/s column from the median.
// Run: dotnet run -c Release --project bench/Engine.Bench -- --filter '*OneDnn*'
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace Engine.Bench;

[Config(typeof(OneDnnBenchmarkConfig))]
public class OneDnnBenchmarks
{
    private OneDnnCase _case = null!;

    public static IEnumerable<string> Rows => OneDnnCase.All().Select(c => c.Id);

    [ParamsSource(nameof(Rows))]
    public string Row { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        _case = OneDnnCase.All().Single(c => c.Id == Row);
        _case.Validate(samples: 48, new Random(17));
    }

    [Benchmark]
    public void Run() => _case.Run();
}

/// <summary>In-process (the native library and its caches stay loaded), a few iterations per row:
/// each call takes tens of milliseconds, so the medians settle quickly.</summary>
public sealed class OneDnnBenchmarkConfig : ManualConfig
{
    public OneDnnBenchmarkConfig()
    {
        AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance)
            .WithWarmupCount(2).WithIterationCount(10).WithInvocationCount(1).WithUnrollFactor(1));
        AddColumn(StatisticColumn.Median, new GflopsColumn());
        WithSummaryStyle(SummaryStyle.Default.WithMaxParameterColumnWidth(40));
    }
}

/// <summary>GFLOP/s of a row at its median time.</summary>
public sealed class GflopsColumn : IColumn
{
    public string Id => "GFLOPS";
    public string ColumnName => "GFLOP/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "billions of floating-point operations per second at the median time";
    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase)
    {
        var stats = summary[benchmarkCase]?.ResultStatistics;
        var row = benchmarkCase.Parameters["Row"] as string;
        var flops = OneDnnCase.All().FirstOrDefault(c => c.Id == row)?.Flops;
        if (stats is null || flops is null) return "-";
        return (flops.Value / stats.Median).ToString("F1");   // flop per ns = GFLOP/s
    }
}
