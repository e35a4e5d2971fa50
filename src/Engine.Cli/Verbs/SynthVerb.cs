// `engine synth`: writes the synthetic long-tailed dataset (LVIS-format train.json / val.json and JPEG
// images) and prints how many classes fell in each frequency bucket and how long it took.
using System.Diagnostics;
using System.Globalization;
using CommandLine;
using Engine.Data.Synthetic;
using Spectre.Console;

namespace Engine.Cli.Verbs;

[Verb("synth", HelpText = "Write the synthetic long-tailed shapes dataset (LVIS JSON + JPEG images).")]
public sealed class SynthVerb : IVerb
{
    [Option("out", Required = true, HelpText = "Output folder (receives train.json, val.json, train/, val/).")]
    public string Out { get; set; } = "";

    [Option("classes", Default = 40, HelpText = "Number of classes K (1..320).")]
    public int Classes { get; set; } = 40;

    [Option("train", Default = 2000, HelpText = "Number of training images N.")]
    public int Train { get; set; } = 2000;

    [Option("val", Default = 500, HelpText = "Number of validation images M.")]
    public int Val { get; set; } = 500;

    [Option("size", Default = 160, HelpText = "Image side S in pixels.")]
    public int Size { get; set; } = 160;

    [Option("seed", Default = 1UL, HelpText = "Random seed; the same seed writes the same bytes.")]
    public ulong Seed { get; set; } = 1;

    [Option("threads", HelpText = "Rendering threads (default: all cores; the output does not depend on it).")]
    public int? Threads { get; set; }

    public int Run()
    {
        var options = new SyntheticOptions
        {
            OutputDirectory = Path.GetFullPath(Out),
            Classes = Classes,
            TrainImages = Train,
            ValImages = Val,
            ImageSize = Size,
            Seed = Seed,
            Threads = Threads,
        };
        var watch = Stopwatch.StartNew();
        var dataset = SyntheticDataset.Generate(options);
        watch.Stop();

        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn("bucket").AddColumn(new TableColumn("classes").RightAligned())
            .AddColumn(new TableColumn("training images per class").RightAligned())
            .AddColumn(new TableColumn("instances").RightAligned());
        foreach (var (bucket, label) in new[] { ('r', "rare (1–10)"), ('c', "common (11–100)"), ('f', "frequent (>100)") })
        {
            var cats = dataset.Categories.Where(c => c.Frequency == bucket).ToArray();
            table.AddRow(label, cats.Length.ToString(CultureInfo.InvariantCulture),
                cats.Length == 0 ? "-" : $"{cats.Min(c => c.ImageCount)}–{cats.Max(c => c.ImageCount)}",
                cats.Sum(c => c.InstanceCount).ToString(CultureInfo.InvariantCulture));
        }
        AnsiConsole.Write(table);
        var images = dataset.Train.Count + dataset.Val.Count;
        AnsiConsole.MarkupLineInterpolated(
            $"wrote {dataset.Train.Count} training and {dataset.Val.Count} validation images of {Size}×{Size}, {dataset.Categories.Count} classes, to {options.OutputDirectory} in {watch.Elapsed.TotalSeconds:0.00} s ({images / watch.Elapsed.TotalSeconds:0} images/s; seed {Seed})");
        return 0;
    }
}
