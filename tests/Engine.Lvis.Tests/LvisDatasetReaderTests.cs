// The ground-truth reader: every field round-trips through the writer, tiny byte windows (refills and
// growth inside tokens) give the same result, unknown keys and nested values are skipped, segmentations
// in all three forms parse, and malformed input is reported with its line and column.
using System.Text;
using Engine.Lvis;

namespace Engine.Lvis.Tests;

public class LvisDatasetReaderTests
{
    internal static LvisDataset Sample() => new()
    {
        Images =
        [
            new LvisImage { Id = 397133, Width = 640, Height = 427, CocoUrl = "http://x/1.jpg", FileName = "1.jpg", FlickrUrl = "http://f/1",
                DateCaptured = "2013-11-14 17:02:52", License = 4, NegCategoryIds = [3, 7], NotExhaustiveCategoryIds = [] },
            new LvisImage { Id = 5, Width = 10, Height = 20 },
        ],
        Categories =
        [
            new LvisCategory { Id = 1, Name = "aerosol_can", Synset = "aerosol.n.02", Synonyms = ["aerosol_can", "spray_can"],
                Definition = "a dispenser that holds a substance under pressure", Frequency = LvisFrequency.Common, ImageCount = 64, InstanceCount = 109 },
            new LvisCategory { Id = 3, Name = "with \"quotes\", commas", Frequency = LvisFrequency.Rare },
            new LvisCategory { Id = 7, Name = "plain" },
        ],
        Annotations =
        [
            new LvisAnnotation { Id = 1, ImageId = 397133, CategoryId = 1, Bbox = [1.5, 2.25, 30.125, 40.0], Area = 1000.5,
                Segmentation = new PolygonSegmentation([[1.5, 2.25, 31.625, 2.25, 31.625, 42.25], [0, 0, 1, 0, 1, 1]]) },
            new LvisAnnotation { Id = 2, ImageId = 397133, CategoryId = 3, Bbox = [0, 0, 5, 5], Area = 25, IsCrowd = true, Ignore = true,
                Segmentation = new CompressedRleSegmentation(427, 640, "e7]1>`0\\\\1O") },
            new LvisAnnotation { Id = 3, ImageId = 5, CategoryId = 7, Segmentation = new UncompressedRleSegmentation(20, 10, [5, 10, 185]) },
        ],
    };

    private static LvisDataset RoundTrip(LvisDataset d, int bufferSize, bool segmentation = true)
    {
        var ms = new MemoryStream();
        LvisDatasetWriter.Write(ms, d);
        ms.Position = 0;
        return LvisDatasetReader.Read(ms, "sample.json", new LvisReadOptions { ReadSegmentation = segmentation }, bufferSize);
    }

    [Theory]
    [InlineData(16)]
    [InlineData(37)]
    [InlineData(1 << 20)]
    public void EveryFieldRoundTrips(int bufferSize)
    {
        var d = Sample();
        var r = RoundTrip(d, bufferSize);
        Assert.Equal(d.Images.Count, r.Images.Count);
        for (int i = 0; i < d.Images.Count; i++)
        {
            var (a, b) = (d.Images[i], r.Images[i]);
            Assert.Equal(a with { NegCategoryIds = null, NotExhaustiveCategoryIds = null }, b with { NegCategoryIds = null, NotExhaustiveCategoryIds = null });
            Assert.Equal(a.NegCategoryIds, b.NegCategoryIds);
            Assert.Equal(a.NotExhaustiveCategoryIds, b.NotExhaustiveCategoryIds);
        }
        for (int i = 0; i < d.Categories.Count; i++)
        {
            var (a, b) = (d.Categories[i], r.Categories[i]);
            Assert.Equal(a with { Synonyms = [] }, b with { Synonyms = [] });
            Assert.Equal(a.Synonyms, b.Synonyms);
        }
        for (int i = 0; i < d.Annotations.Count; i++)
        {
            var (a, b) = (d.Annotations[i], r.Annotations[i]);
            Assert.Equal(a with { Bbox = null, Segmentation = null }, b with { Bbox = null, Segmentation = null });
            Assert.Equal(a.Bbox, b.Bbox);
        }
        var poly = Assert.IsType<PolygonSegmentation>(r.Annotations[0].Segmentation);
        Assert.Equal(((PolygonSegmentation)d.Annotations[0].Segmentation!).Polygons, poly.Polygons);
        Assert.Equal(d.Annotations[1].Segmentation, r.Annotations[1].Segmentation);
        var u = Assert.IsType<UncompressedRleSegmentation>(r.Annotations[2].Segmentation);
        Assert.Equal(new long[] { 5, 10, 185 }, u.Counts);
        Assert.Equal((20, 10), (u.Height, u.Width));
    }

    [Fact]
    public void SegmentationsCanBeSkipped()
    {
        var r = RoundTrip(Sample(), 16, segmentation: false);
        Assert.All(r.Annotations, a => Assert.Null(a.Segmentation));
        Assert.Equal(1000.5, r.Annotations[0].Area);
    }

    [Fact]
    public void UnknownKeysAndNestedValuesAreSkipped()
    {
        string json = """
            {"info": {"a": [1, {"b": [[2]]}], "c": "}{"}, "licenses": [{"id": 1}],
             "images": [{"id": 1, "width": 3, "height": 4, "extra": {"deep": [1, [2, [3]]]}, "neg_category_ids": [], "not_exhaustive_category_ids": [2]}],
             "categories": [{"id": 2, "name": "x", "frequency": "f", "misc": null}],
             "annotations": [{"id": 9, "image_id": 1, "category_id": 2, "area": 12.0, "bbox": [0, 0, 3, 4], "weird": [{"x": 1}]}],
             "trailing": [1, 2, 3]}
            """;
        foreach (int size in new[] { 16, 64, 1 << 20 })
        {
            var d = LvisDatasetReader.Read(new MemoryStream(Encoding.UTF8.GetBytes(json)), "t.json", null, size);
            Assert.Single(d.Images);
            Assert.Equal(new[] { 2 }, d.Images[0].NotExhaustiveCategoryIds);
            Assert.Equal(LvisFrequency.Frequent, d.Categories[0].Frequency);
            Assert.Equal(12.0, d.Annotations[0].Area);
        }
    }

    [Fact]
    public void MalformedJsonReportsLineAndColumn()
    {
        string json = "{\"images\": [],\n\"categories\": [],\n\"annotations\": [{\"id\": 1,, \"image_id\": 2}]}";
        foreach (int size in new[] { 16, 1 << 20 })
        {
            var e = Assert.Throws<LvisFormatException>(() => LvisDatasetReader.Read(new MemoryStream(Encoding.UTF8.GetBytes(json)), "gt.json", null, size));
            Assert.Equal(3, e.Line);
            Assert.Equal(26, e.Column);   // the second comma
            Assert.Contains("gt.json: malformed JSON at line 3", e.Message);
        }
    }

    [Fact]
    public void ContentErrorsNameTheFieldAndOffset()
    {
        var e = Assert.Throws<LvisFormatException>(() => LvisDatasetReader.Read(
            new MemoryStream(Encoding.UTF8.GetBytes("""{"images": [], "categories": [{"id": 1, "frequency": "x"}], "annotations": []}""")), "gt.json"));
        Assert.Contains("frequency \"x\"", e.Message);
        Assert.NotNull(e.ByteOffset);
        var missing = Assert.Throws<LvisFormatException>(() => LvisDatasetReader.Read(new MemoryStream("""{"images": []}"""u8.ToArray()), "gt.json"));
        Assert.Contains("\"categories\"", missing.Message);
        var empty = Assert.Throws<LvisFormatException>(() => LvisDatasetReader.Read(new MemoryStream([]), "gt.json"));
        Assert.Contains("empty", empty.Message);
        var bbox = Assert.Throws<LvisFormatException>(() => LvisDatasetReader.Read(new MemoryStream(
            """{"images": [], "categories": [], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2]}]}"""u8.ToArray()), "gt.json"));
        Assert.Contains("bbox has 2 numbers", bbox.Message);
        Assert.Throws<FileNotFoundException>(() => LvisDatasetReader.Read("/nonexistent/gt.json"));
    }
}
