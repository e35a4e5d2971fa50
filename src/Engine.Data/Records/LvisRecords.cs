// Dataset records from an LVIS/COCO annotation file, read with the format library's streaming reader (the
// same reader the evaluator uses). Categories are mapped to contiguous class indices in ascending id order
// (LVIS v1 ids 1..1203 become 0..1202). Image files are found under an image root: by `file_name` when the
// file has one (LVIS v0.5, COCO, the synthetic set), otherwise by the last two segments of `coco_url`
// ("train2017/000000391895.jpg"), which is how LVIS v1 images are laid out on disk.
using Engine.Lvis;

namespace Engine.Data.Records;

public sealed record LvisRecordSet(IReadOnlyList<DatasetRecord> Records, IReadOnlyList<LvisCategory> Categories, LvisDataset Dataset)
{
    /// <summary>Class index → LVIS category id.</summary>
    public int[] CategoryIds => Categories.Select(c => c.Id).ToArray();
}

public static class LvisRecords
{
    /// <summary>Reads <paramref name="jsonPath"/>; images are looked up under <paramref name="imageRoot"/> (default: the
    /// JSON file's folder). Crowd annotations and images without annotations are kept out of training with
    /// <paramref name="forTraining"/>, as detectron2's filter_empty_annotations does.</summary>
    public static LvisRecordSet Load(string jsonPath, string? imageRoot = null, bool forTraining = true, bool readPolygons = true)
    {
        var dataset = LvisDatasetReader.Read(jsonPath, new LvisReadOptions { ReadSegmentation = readPolygons });
        return FromDataset(dataset, imageRoot ?? Path.GetDirectoryName(Path.GetFullPath(jsonPath))!, forTraining, jsonPath);
    }

    public static LvisRecordSet FromDataset(LvisDataset dataset, string imageRoot, bool forTraining, string source = "dataset")
    {
        var categories = dataset.Categories.OrderBy(c => c.Id).ToList();
        var classOf = new Dictionary<int, int>();
        for (var i = 0; i < categories.Count; i++) classOf[categories[i].Id] = i;

        var byImage = new Dictionary<long, List<InstanceAnnotation>>();
        foreach (var a in dataset.Annotations)
        {
            if (forTraining && a.IsCrowd) continue;
            if (!classOf.TryGetValue(a.CategoryId, out var cls))
                throw new InvalidDataException($"{source}: annotation {a.Id} has category_id {a.CategoryId}, which is not in 'categories'.");
            if (a.Bbox is not { Length: 4 } b)
                throw new InvalidDataException($"{source}: annotation {a.Id} has no [x, y, w, h] bbox.");
            if (!(b[2] >= 0 && b[3] >= 0) || b.Any(v => !double.IsFinite(v)))
                throw new InvalidDataException($"{source}: annotation {a.Id} has an invalid bbox [{string.Join(", ", b)}] (w and h must be finite and ≥ 0).");
            var polygons = a.Segmentation is PolygonSegmentation p
                ? p.Polygons.Select(poly => poly.Select(v => (float)v).ToArray()).ToList()
                : (IReadOnlyList<float[]>)[];
            var box = new[] { (float)b[0], (float)b[1], (float)(b[0] + b[2]), (float)(b[1] + b[3]) };
            if (!byImage.TryGetValue(a.ImageId, out var list)) byImage[a.ImageId] = list = [];
            list.Add(new InstanceAnnotation(cls, box, polygons));
        }

        var records = new List<DatasetRecord>(dataset.Images.Count);
        foreach (var image in dataset.Images)
        {
            var instances = byImage.TryGetValue(image.Id, out var l) ? l : [];
            if (forTraining && instances.Count == 0) continue;
            records.Add(new DatasetRecord(image.Id, Path.Combine(imageRoot, RelativePath(image, source)), image.Height, image.Width, instances));
        }
        return new LvisRecordSet(records, categories, dataset);
    }

    /// <summary>The image's path relative to the image root.</summary>
    public static string RelativePath(LvisImage image, string source = "dataset")
    {
        if (!string.IsNullOrEmpty(image.FileName)) return image.FileName;
        if (!string.IsNullOrEmpty(image.CocoUrl))
        {
            var segments = new Uri(image.CocoUrl).AbsolutePath.Split('/', StringSplitOptions.RemoveEmptyEntries);
            if (segments.Length >= 2) return Path.Combine(segments[^2], segments[^1]);
            if (segments.Length == 1) return segments[0];
        }
        throw new InvalidDataException($"{source}: image {image.Id} has neither 'file_name' nor 'coco_url'; cannot locate its file.");
    }
}
