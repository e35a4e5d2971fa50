// Every fixture case must reproduce the official LVIS API's numbers (expected_bbox.json,
// expected_segm.json, produced by lvis-api 0.5.3 on pycocotools): all 13 summary metrics and every
// per-category AP, -1 exactly where the official value is -1.
using Engine.Lvis;

namespace Engine.Evaluation.Tests;

public class OfficialFixtureTests
{
    // The official numbers are printed at full double precision; the design note measured that a
    // different summation order moves a mean by at most ~1e-14, and the smallest real effect of any rule
    // by 5e-7, so 1e-12 is tight enough to catch every rule and loose enough for summation order.
    private const double Tolerance = 1e-12;

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (string c in Fixtures.Cases)
        {
            data.Add(c, "bbox");
            data.Add(c, "segm");
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ReproducesOfficialNumbers(string name, string iouType)
    {
        string dir = Fixtures.CaseDir(name);
        var expected = Fixtures.LoadExpected(name, iouType);
        bool segm = iouType == "segm";
        var gt = LvisDatasetReader.Read(Path.Combine(dir, "gt.json"), new LvisReadOptions { ReadSegmentation = segm });
        var results = LvisResultsReader.Read(Path.Combine(dir, "dets.json"), new ResultsReadOptions { ReadSegmentation = segm });
        var result = LvisEvaluator.Evaluate(gt, results, new LvisEvalOptions { IouType = segm ? IouType.Segm : IouType.Bbox });

        var failures = new List<string>();
        foreach (var (key, value) in result.Summary.ToOfficialKeys())
        {
            Assert.True(expected.Summary.ContainsKey(key), $"{name}/{iouType}: expected file has no {key}");
            Check(failures, key, expected.Summary[key], value);
        }
        Assert.Equal(expected.PerCategoryAp.Count, result.GroundTruth.CategoryCount);
        for (int k = 0; k < result.GroundTruth.CategoryCount; k++)
        {
            int id = result.GroundTruth.Categories[k].Id;
            Assert.True(expected.PerCategoryAp.ContainsKey(id), $"{name}/{iouType}: expected file has no category {id}");
            Check(failures, $"per_category_AP[{id}]", expected.PerCategoryAp[id], result.PerCategoryAp[k]);
        }
        Assert.True(failures.Count == 0, $"{name}/{iouType}: {failures.Count} mismatches:\n" + string.Join("\n", failures));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void SummaryMetricsAreBitExact(string name, string iouType)
    {
        // numpy's summation order is reproduced (lvis-eval.md section 6), so the summary metrics equal the
        // official doubles exactly, not just to 1e-12.
        string dir = Fixtures.CaseDir(name);
        var expected = Fixtures.LoadExpected(name, iouType);
        bool segm = iouType == "segm";
        var gt = LvisDatasetReader.Read(Path.Combine(dir, "gt.json"), new LvisReadOptions { ReadSegmentation = segm });
        var results = LvisResultsReader.Read(Path.Combine(dir, "dets.json"), new ResultsReadOptions { ReadSegmentation = segm });
        var result = LvisEvaluator.Evaluate(gt, results, new LvisEvalOptions { IouType = segm ? IouType.Segm : IouType.Bbox });
        foreach (var (key, value) in result.Summary.ToOfficialKeys())
            Assert.True(expected.Summary[key] == value, $"{name}/{iouType} {key}: official {expected.Summary[key]:R}, ours {value:R}");
    }

    private static void Check(List<string> failures, string what, double expected, double actual)
    {
        bool ok = expected == -1.0 ? actual == -1.0 : Math.Abs(actual - expected) <= Tolerance;
        if (!ok)
            failures.Add($"  {what}: official {expected:R}, ours {actual:R} (diff {actual - expected:E3})");
    }
}
