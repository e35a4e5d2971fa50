// What the evaluator does with inputs outside the happy path (documented behaviour, matching the
// official API where it has one): each is either a clear exception of a type the command line prints as
// one line (FormatException, ArgumentException, IOException), or a tested result.
using System.Text;
using Engine.Lvis;

namespace Engine.Evaluation.Tests;

public class BadInputTests
{
    private static LvisResults Parse(string json) => LvisResultsReader.Read(new MemoryStream(Encoding.UTF8.GetBytes(json)), "results.json");

    private static CaseBuilder OneImage() => new CaseBuilder().Image(1).Category(1).Category(2).Gt(1, 1, 0, 0, 10, 10);

    [Fact]
    public void ResultsForImagesNotInTheGtAreRejected()
    {
        var b = OneImage().Det(1, 1, 0, 0, 10, 10, 0.5).Det(77, 1, 0, 0, 10, 10, 0.5).Det(78, 1, 0, 0, 10, 10, 0.5);
        var e = Assert.Throws<ArgumentException>(() => b.Evaluate());
        Assert.Contains("2 detection(s) refer to image ids that are not in the ground truth (e.g. 77, 78)", e.Message);
    }

    [Fact]
    public void UnknownCategoriesAreDroppedAndCounted()
    {
        // The official API drops them silently (they still count toward the 300-per-image cut).
        var with = OneImage().Det(1, 1, 0, 0, 10, 10, 0.5).Det(1, 555, 0, 0, 10, 10, 0.9).Evaluate();
        var without = OneImage().Det(1, 1, 0, 0, 10, 10, 0.5).Evaluate();
        Assert.Equal(1, with.Diagnostics.UnknownCategory);
        Assert.Equal(without.Summary, with.Summary);
    }

    [Theory]
    [InlineData(-1.0, 5.0)]
    [InlineData(5.0, -0.5)]
    public void NegativeBoxSizesAreRejected(double w, double h)
    {
        var b = OneImage().Det(1, 1, 0, 0, w, h, 0.5);
        var e = Assert.Throws<ArgumentException>(() => b.Evaluate());
        Assert.Contains("width and height must be finite and >= 0", e.Message);
        Assert.Contains("[x1, y1, x2, y2]", e.Message);
    }

    [Fact]
    public void NonFiniteValuesAreRejected()
    {
        Assert.Contains("NaN and Infinity are not JSON numbers",
            Assert.Throws<LvisFormatException>(() => Parse("""[{"image_id": 1, "category_id": 1, "bbox": [0, 0, NaN, 1], "score": 0.5}]""")).Message);
        var nanBox = OneImage().Det(1, 1, 0, 0, double.NaN, 1, 0.5);
        Assert.Throws<ArgumentException>(() => nanBox.Evaluate());
        var nanScore = OneImage().Det(1, 1, 0, 0, 1, 1, double.NaN);
        Assert.Contains("scores must be finite", Assert.Throws<ArgumentException>(() => nanScore.Evaluate()).Message);
    }

    [Fact]
    public void EmptyResultsListEvaluatesAsNoDetections()
    {
        // The official API crashes on an empty list (IndexError); here it is a detector that found nothing.
        var r = LvisEvaluator.Evaluate(OneImage().Dataset, Parse("[]"));
        Assert.Equal(0.0, r.Summary.AP);
        Assert.Equal(-1.0, r.PerCategoryAp[1]);
        Assert.Throws<LvisFormatException>(() => Parse(""));
    }

    [Fact]
    public void MalformedResultsReportLine()
    {
        var e = Assert.Throws<LvisFormatException>(() => Parse("[\n{\"image_id\": 1, \"category_id\": 1, \"score\": 0.5},\n{\"image_id\": 1 \"category_id\": 1}]"));
        Assert.Equal(3, e.Line);
        Assert.IsAssignableFrom<FormatException>(e);
    }

    [Fact]
    public void MissingBoxAfterAFirstBoxIsRejected()
    {
        var results = Parse("""[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.5}, {"image_id": 1, "category_id": 1, "score": 0.4}]""");
        Assert.Contains("has no \"bbox\" but the first one does", Assert.Throws<ArgumentException>(() => LvisEvaluator.Evaluate(OneImage().Dataset, results)).Message);
    }

    [Fact]
    public void GtWithoutLvisFieldsIsRejected()
    {
        var coco = new LvisDataset
        {
            Images = [new LvisImage { Id = 1, Width = 10, Height = 10 }],
            Categories = [new LvisCategory { Id = 1, Frequency = LvisFrequency.Rare }],
            Annotations = [],
        };
        Assert.Contains("neg_category_ids", Assert.Throws<FormatException>(() => new GroundTruthIndex(coco)).Message);
        var noFreq = new LvisDataset
        {
            Images = [new LvisImage { Id = 1, NegCategoryIds = [], NotExhaustiveCategoryIds = [] }],
            Categories = [new LvisCategory { Id = 1, Name = "x" }],
            Annotations = [],
        };
        Assert.Contains("\"frequency\"", Assert.Throws<FormatException>(() => new GroundTruthIndex(noFreq)).Message);
        var orphan = OneImage().Dataset;
        orphan = new LvisDataset { Images = orphan.Images, Categories = orphan.Categories, Annotations = [new LvisAnnotation { Id = 5, ImageId = 9, CategoryId = 1, Area = 4, Bbox = [0, 0, 2, 2] }] };
        Assert.Contains("image 9", Assert.Throws<FormatException>(() => new GroundTruthIndex(orphan)).Message);
    }
}
