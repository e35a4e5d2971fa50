// Tests of Synthetic/SyntheticDataset.cs on tiny datasets (40 + 12 images of 64×64, 6 classes): the
// JSON's category statistics against its annotations, geometry (polygons inside the image, bbox =
// polygon extent, area = shoelace), the pixels under the polygons, byte-identical reruns for any
// thread count, LVIS negative / not-exhaustive semantics in val, and class balance in val.
using System.Text.Json;
using Engine.Data.Imaging;
using Engine.Data.Synthetic;

namespace Engine.Data.Tests.Synthetic;

public class SyntheticDatasetTests
{
    [Fact]
    public void CategoryStatisticsMatchTheTrainingAnnotations()
    {
        var ds = TestSupport.TinyDataset;
        using var train = JsonDocument.Parse(File.ReadAllBytes(ds.TrainJsonPath));
        using var val = JsonDocument.Parse(File.ReadAllBytes(ds.ValJsonPath));
        var annotations = train.RootElement.GetProperty("annotations").EnumerateArray()
            .Select(a => (Image: a.GetProperty("image_id").GetInt64(), Category: a.GetProperty("category_id").GetInt32())).ToArray();
        var categories = train.RootElement.GetProperty("categories").EnumerateArray().ToArray();
        Assert.Equal(6, categories.Length);
        foreach (var c in categories)
        {
            var id = c.GetProperty("id").GetInt32();
            var images = annotations.Where(a => a.Category == id).Select(a => a.Image).Distinct().Count();
            var instances = annotations.Count(a => a.Category == id);
            Assert.Equal(images, c.GetProperty("image_count").GetInt32());
            Assert.Equal(instances, c.GetProperty("instance_count").GetInt32());
            Assert.Equal(LongTail.Frequency(images).ToString(), c.GetProperty("frequency").GetString());
            Assert.EndsWith(".n.01", c.GetProperty("synset").GetString());
            Assert.True(images >= 1, $"category {id} has no training image");
        }
        // Val carries the same (training) category statistics, as LVIS does.
        Assert.Equal(train.RootElement.GetProperty("categories").GetRawText(), val.RootElement.GetProperty("categories").GetRawText());
        Assert.Equal(Enumerable.Range(1, 6), categories.Select(c => c.GetProperty("id").GetInt32()));
    }

    [Fact]
    public void GeometryIsConsistentInTheWrittenJson()
    {
        var ds = TestSupport.TinyDataset;
        foreach (var path in new[] { ds.TrainJsonPath, ds.ValJsonPath })
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var sizes = doc.RootElement.GetProperty("images").EnumerateArray()
                .ToDictionary(i => i.GetProperty("id").GetInt64(), i => (W: i.GetProperty("width").GetInt32(), H: i.GetProperty("height").GetInt32()));
            var ids = new HashSet<long>();
            foreach (var a in doc.RootElement.GetProperty("annotations").EnumerateArray())
            {
                Assert.True(ids.Add(a.GetProperty("id").GetInt64()), "annotation ids must be unique");
                var (w, h) = sizes[a.GetProperty("image_id").GetInt64()];
                var seg = a.GetProperty("segmentation").EnumerateArray().Single().EnumerateArray().Select(v => v.GetDouble()).ToArray();
                Assert.True(seg.Length >= 6 && seg.Length % 2 == 0);
                for (var i = 0; i < seg.Length; i += 2)
                {
                    Assert.InRange(seg[i], 0, w);
                    Assert.InRange(seg[i + 1], 0, h);
                }
                var xs = seg.Where((_, i) => i % 2 == 0).ToArray();
                var ys = seg.Where((_, i) => i % 2 == 1).ToArray();
                var bbox = a.GetProperty("bbox").EnumerateArray().Select(v => v.GetDouble()).ToArray();
                // bbox = [min x, min y, max x − min x, max y − min y] of the polygon, up to the last bit of the subtraction.
                Assert.Equal(xs.Min(), bbox[0], 1e-9);
                Assert.Equal(ys.Min(), bbox[1], 1e-9);
                Assert.Equal(xs.Max() - xs.Min(), bbox[2], 1e-9);
                Assert.Equal(ys.Max() - ys.Min(), bbox[3], 1e-9);
                Assert.Equal(Rasterizer.Area(seg), a.GetProperty("area").GetDouble(), 1e-9);
                Assert.True(a.GetProperty("area").GetDouble() > 0);
                Assert.Equal(0, a.GetProperty("iscrowd").GetInt32());
            }
        }
    }

    [Fact]
    public void SolidTopmostObjectsHaveTheirClassColourUnderTheirPolygon()
    {
        var ds = TestSupport.TinyDataset;
        var checkedObjects = 0;
        foreach (var image in ds.Train.Concat(ds.Val))
        {
            // The last drawn object is on top of everything else in the image.
            var top = image.Objects[^1];
            var look = ds.Categories[top.CategoryIndex].Look;
            if (look.Texture != TextureKind.Solid || top.Area < 40) continue;
            var pixels = Jpeg.Decode(image.FilePath);
            var cov = new float[image.Width * image.Height];
            Rasterizer.Fill(top.Polygon, image.Width, image.Height, cov);
            var mean = new double[3];
            var n = 0;
            for (var p = 0; p < cov.Length; p++)
            {
                if (cov[p] < 1) continue;
                for (var c = 0; c < 3; c++) mean[c] += pixels.Data[3 * p + c];
                n++;
            }
            if (n == 0) continue;
            byte[] rgb = [look.R, look.G, look.B];
            for (var c = 0; c < 3; c++)
            {
                mean[c] /= n;
                // Brightness jitter 0.85–1.10 and ±6 noise, plus JPEG error near the outline: ±25 levels around the band.
                Assert.InRange(mean[c], 0.85 * rgb[c] - 25, Math.Min(255, 1.10 * rgb[c]) + 25);
            }
            checkedObjects++;
        }
        Assert.True(checkedObjects >= 3, $"only {checkedObjects} solid topmost objects were checked; the tiny dataset should have more");
    }

    [Fact]
    public void RerunsWriteIdenticalBytesForAnyThreadCount()
    {
        using var a = new TempFolder();
        using var b = new TempFolder();
        using var c = new TempFolder();
        SyntheticDataset.Generate(TestSupport.TinyOptions(a.Path, seed: 11, threads: 1));
        SyntheticDataset.Generate(TestSupport.TinyOptions(b.Path, seed: 11, threads: 3));
        SyntheticDataset.Generate(TestSupport.TinyOptions(c.Path, seed: 12));
        var files = Directory.EnumerateFiles(a.Path, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(a.Path, f)).Order().ToArray();
        Assert.Equal(2 + 40 + 12, files.Length);
        Assert.Equal(files, Directory.EnumerateFiles(b.Path, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(b.Path, f)).Order());
        foreach (var f in files)
            Assert.True(File.ReadAllBytes(Path.Combine(a.Path, f)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(b.Path, f))), $"{f} differs between runs");
        Assert.False(File.ReadAllBytes(Path.Combine(a.Path, "train.json")).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(c.Path, "train.json"))),
            "another seed must give another dataset");
        Assert.Empty(Directory.EnumerateFiles(a.Path, "*.tmp-*"));
    }

    [Fact]
    public void ValidationNegativeAndNotExhaustiveCategoriesFollowLvis()
    {
        var ds = TestSupport.TinyDataset;
        var notExhaustiveSeen = 0;
        foreach (var image in ds.Val)
        {
            var drawn = image.Objects.Select(o => o.CategoryId).ToHashSet();
            Assert.NotEmpty(image.NegCategoryIds);
            // A negative category is verified absent: nothing of it is drawn, annotated or not.
            Assert.All(image.NegCategoryIds, id => Assert.DoesNotContain(id, drawn));
            foreach (var id in image.NotExhaustiveCategoryIds)
            {
                // Not exhaustive: the class is in the image and some instance of it carries no annotation.
                Assert.Contains(id, drawn);
                Assert.Contains(image.Objects, o => o.CategoryId == id && o.AnnotationId is null);
                Assert.DoesNotContain(id, image.NegCategoryIds);
                notExhaustiveSeen++;
            }
            Assert.All(image.Objects.Where(o => o.AnnotationId is null), o => Assert.Contains(o.CategoryId, image.NotExhaustiveCategoryIds));
        }
        Assert.True(notExhaustiveSeen > 0, "with probability 0.5 per image, some of the 12 val images must be not exhaustive");
        // Training images are exhaustively annotated.
        Assert.All(ds.Train, i => Assert.Empty(i.NotExhaustiveCategoryIds));
        Assert.All(ds.Train.SelectMany(i => i.Objects), o => Assert.NotNull(o.AnnotationId));
        Assert.All(ds.Train, i => Assert.All(i.NegCategoryIds, id => Assert.DoesNotContain(i.Objects, o => o.CategoryId == id)));
    }

    [Fact]
    public void ValidationCoversEveryClassAndIsRoughlyBalanced()
    {
        using var folder = new TempFolder();
        var ds = SyntheticDataset.Generate(TestSupport.TinyOptions(folder.Path) with { TrainImages = 30, ValImages = 120, ImageSize = 32 });
        var perClass = ds.Val.SelectMany(i => i.Objects.Select(o => o.CategoryIndex).Distinct()).GroupBy(c => c).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(6, perClass.Count);
        // Classes are dealt from shuffled decks of all 6: image counts per class differ by at most the few cards a deck
        // boundary or a skipped duplicate moves; half the mean is far outside that.
        var mean = perClass.Values.Average();
        Assert.All(perClass.Values, n => Assert.InRange(n, 0.5 * mean, 1.5 * mean));
    }

    [Fact]
    public void RecordsCarryTheAnnotatedObjects()
    {
        var ds = TestSupport.TinyDataset;
        var records = ds.ValRecords();
        for (var i = 0; i < records.Count; i++)
        {
            var image = ds.Val[i];
            var annotated = image.Objects.Where(o => o.AnnotationId is not null).ToArray();
            Assert.Equal(image.Id, records[i].ImageId);
            Assert.True(File.Exists(records[i].FilePath));
            Assert.Equal(annotated.Length, records[i].Instances.Count);
            for (var k = 0; k < annotated.Length; k++)
            {
                var box = records[i].Instances[k].BoxXyxy;
                Assert.Equal(annotated[k].CategoryIndex, records[i].Instances[k].CategoryIndex);
                Assert.Equal((float)annotated[k].BoxXywh[0], box[0]);
                Assert.Equal((float)(annotated[k].BoxXywh[0] + annotated[k].BoxXywh[2]), box[2]);
                Assert.Equal(annotated[k].Polygon.Length, records[i].Instances[k].Polygons.Single().Length);
            }
        }
    }

    [Fact]
    public void BadOptionsAreRejectedWithTheFlagName()
    {
        var e = Assert.Throws<ArgumentException>(() => SyntheticDataset.Generate(new SyntheticOptions { OutputDirectory = "/tmp/x", Classes = 0 }));
        Assert.Contains("--classes", e.Message);
        Assert.Throws<ArgumentException>(() => SyntheticDataset.Generate(new SyntheticOptions { OutputDirectory = "/tmp/x", ImageSize = 8 }));
        Assert.Throws<ArgumentException>(() => SyntheticDataset.Generate(new SyntheticOptions { OutputDirectory = "/tmp/x", TrainImages = 0 }));
    }

    [Fact]
    public void ClassesAreDistinctCombinations()
    {
        var all = SyntheticClasses.Take(SyntheticClasses.MaxClasses);
        Assert.Equal(all.Count, all.Select(c => (c.Shape, c.ColourName, c.Texture)).Distinct().Count());
        Assert.Equal(all.Count, all.Select(c => c.Name).Distinct().Count());
        // The first 40 use all 8 shapes, every colour and all 4 textures.
        var first = all.Take(40).ToArray();
        Assert.Equal(8, first.Select(c => c.Shape).Distinct().Count());
        Assert.Equal(10, first.Select(c => c.ColourName).Distinct().Count());
        Assert.Equal(4, first.Select(c => c.Texture).Distinct().Count());
    }
}
