using Engine.Data.Records;
using Engine.Lvis;

namespace Engine.Data.Tests.Records;

public class LvisRecordsTests
{
    [Fact]
    public void RecordsReadFromTheWrittenJsonEqualTheGeneratorsOwn()
    {
        var synth = TestSupport.TinyDataset;
        var set = LvisRecords.Load(synth.TrainJsonPath);
        var expected = synth.TrainRecords().Where(r => r.Instances.Count > 0).ToList();
        Assert.Equal(expected.Count, set.Records.Count);
        Assert.Equal(synth.Categories.Select(c => c.Id), set.CategoryIds);
        for (var i = 0; i < expected.Count; i++)
        {
            var (e, a) = (expected[i], set.Records[i]);
            Assert.Equal(e.ImageId, a.ImageId);
            Assert.Equal(Path.GetFullPath(e.FilePath), Path.GetFullPath(a.FilePath));
            Assert.True(File.Exists(a.FilePath));
            Assert.Equal((e.Height, e.Width), (a.Height, a.Width));
            Assert.Equal(e.Instances.Count, a.Instances.Count);
            for (var k = 0; k < e.Instances.Count; k++)
            {
                Assert.Equal(e.Instances[k].CategoryIndex, a.Instances[k].CategoryIndex);
                for (var j = 0; j < 4; j++) Assert.Equal(e.Instances[k].BoxXyxy[j], a.Instances[k].BoxXyxy[j], 3);
                Assert.Equal(e.Instances[k].Polygons.Count, a.Instances[k].Polygons.Count);
            }
        }
    }

    [Fact]
    public void LvisV1ImagesAreFoundThroughTheirCocoUrl()
    {
        var image = new LvisImage { Id = 391895, CocoUrl = "http://images.cocodataset.org/train2017/000000391895.jpg" };
        Assert.Equal(Path.Combine("train2017", "000000391895.jpg"), LvisRecords.RelativePath(image));
        Assert.Throws<InvalidDataException>(() => LvisRecords.RelativePath(new LvisImage { Id = 1 }));
    }

    [Fact]
    public void AnnotationsOfUnknownCategoriesAreAClearError()
    {
        var dataset = new LvisDataset
        {
            Images = [new LvisImage { Id = 1, FileName = "a.jpg", Width = 10, Height = 10 }],
            Categories = [new LvisCategory { Id = 3, Name = "x" }],
            Annotations = [new LvisAnnotation { Id = 5, ImageId = 1, CategoryId = 4, Bbox = [0, 0, 2, 2] }],
        };
        var e = Assert.Throws<InvalidDataException>(() => LvisRecords.FromDataset(dataset, "/data", forTraining: true));
        Assert.Contains("category_id 4", e.Message);
    }
}
