// Locates the shared LVIS evaluation fixtures: shared/fixtures/lvis-eval beside the repository root
// (CI clones the repository with shared/ next to it). A missing folder fails the test run: the
// fixtures are the only proof that the evaluator reproduces the official numbers.
using System.Text.Json;

namespace Engine.Evaluation.Tests;

internal static class Fixtures
{
    public static readonly string[] Cases = ["small", "medium", "edge"];

    public static string Root { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "shared", "fixtures", "lvis-eval");
            if (Directory.Exists(candidate))
                return candidate;
        }
        throw new DirectoryNotFoundException(
            $"shared/fixtures/lvis-eval not found in any folder above {AppContext.BaseDirectory}; "
            + "the fixtures live in ../shared/fixtures relative to the repository root");
    }

    public static string CaseDir(string name)
    {
        string dir = Path.Combine(Root, name);
        if (!File.Exists(Path.Combine(dir, "gt.json")))
            throw new FileNotFoundException($"fixture case {name}: {dir}/gt.json is missing");
        return dir;
    }

    /// <summary>The official evaluator's output: the 13 summary metrics and per_category_AP (category id -> AP).</summary>
    public sealed record Expected(Dictionary<string, double> Summary, Dictionary<int, double> PerCategoryAp);

    public static Expected LoadExpected(string name, string iouType)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(CaseDir(name), $"expected_{iouType}.json")));
        var summary = new Dictionary<string, double>();
        var perCat = new Dictionary<int, double>();
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (p.Name == "per_category_AP")
            {
                foreach (var c in p.Value.EnumerateObject())
                    perCat[int.Parse(c.Name, System.Globalization.CultureInfo.InvariantCulture)] = c.Value.GetDouble();
            }
            else
            {
                summary[p.Name] = p.Value.GetDouble();
            }
        }
        return new Expected(summary, perCat);
    }
}
