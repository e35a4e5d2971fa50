// Streaming reader of LVIS / COCO ground-truth JSON. The top-level object is walked token by token
// with Utf8JsonReader over a pooled window (JsonByteSource), so a 1 GB file is never held as a DOM;
// "info", "licenses" and unknown keys are skipped without being materialised, and segmentations can
// be skipped too when only boxes are needed (bbox evaluation).
using System.Text.Json;
using Engine.Lvis.Json;

namespace Engine.Lvis;

public sealed record LvisReadOptions
{
    /// <summary>Read annotation segmentations (polygons / RLE). Off saves time and memory when only boxes matter.</summary>
    public bool ReadSegmentation { get; init; } = true;

    /// <summary>Receives the number of bytes read so far.</summary>
    public IProgress<long>? Progress { get; init; }
}

public static class LvisDatasetReader
{
    public static LvisDataset Read(string path, LvisReadOptions? options = null)
    {
        using var stream = OpenRead(path);
        return Read(stream, path, options);
    }

    internal static FileStream OpenRead(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: no such file", path);
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
    }

    public static LvisDataset Read(Stream stream, string sourceName, LvisReadOptions? options = null) =>
        Read(stream, sourceName, options, JsonByteSource.DefaultSize);

    /// <summary>As the public overload, with the initial size of the byte window (tests use tiny ones to cross
    /// refill boundaries everywhere).</summary>
    internal static LvisDataset Read(Stream stream, string sourceName, LvisReadOptions? options, int bufferSize)
    {
        options ??= new LvisReadOptions();
        using var source = new JsonByteSource(stream, sourceName, options.Progress, bufferSize);
        try
        {
            return ReadDocument(source, options);
        }
        catch (JsonException e)
        {
            throw JsonErrors.Malformed(sourceName, e);
        }
    }

    private static LvisDataset ReadDocument(JsonByteSource source, LvisReadOptions options)
    {
        var cursor = new JsonCursor(source);
        if (cursor.IsEmptyDocument || !cursor.Read())
            throw new LvisFormatException($"{source.SourceName}: the file is empty");
        cursor.Expect(JsonTokenType.StartObject, "the ground-truth document");
        List<LvisImage>? images = null;
        List<LvisCategory>? categories = null;
        List<LvisAnnotation>? annotations = null;
        var numbers = new List<double>();
        while (true)
        {
            cursor.ReadRequired("the ground-truth document");
            if (cursor.TokenType == JsonTokenType.EndObject)
                break;
            if (cursor.NameIs("images"u8))
            {
                images = [];
                ReadArray(ref cursor, "images", (ref JsonCursor c) => images.Add(ReadImage(ref c)));
            }
            else if (cursor.NameIs("categories"u8))
            {
                categories = [];
                ReadArray(ref cursor, "categories", (ref JsonCursor c) => categories.Add(ReadCategory(ref c)));
            }
            else if (cursor.NameIs("annotations"u8))
            {
                annotations = [];
                ReadArray(ref cursor, "annotations", (ref JsonCursor c) => annotations.Add(ReadAnnotation(ref c, options, numbers)));
            }
            else
            {
                cursor.SkipValue();
            }
        }
        if (images is null || categories is null || annotations is null)
        {
            string missing = string.Join(", ", new[] { ("images", images is null), ("categories", categories is null), ("annotations", annotations is null) }
                .Where(p => p.Item2).Select(p => $"\"{p.Item1}\""));
            throw new LvisFormatException($"{source.SourceName}: not an LVIS/COCO ground-truth file: the top-level object has no {missing}");
        }
        return new LvisDataset { Images = images, Categories = categories, Annotations = annotations };
    }

    internal delegate void ElementReader(ref JsonCursor cursor);

    /// <summary>Positioned on a property name whose value must be an array of objects: calls
    /// <paramref name="element"/> positioned on each element's StartObject.</summary>
    internal static void ReadArray(ref JsonCursor cursor, string what, ElementReader element)
    {
        cursor.ReadRequired(what);
        cursor.Expect(JsonTokenType.StartArray, $"\"{what}\"");
        while (true)
        {
            cursor.ReadRequired(what);
            if (cursor.TokenType == JsonTokenType.EndArray)
                return;
            cursor.Expect(JsonTokenType.StartObject, $"an element of \"{what}\"");
            element(ref cursor);
        }
    }

    private static LvisImage ReadImage(ref JsonCursor c)
    {
        long start = c.Position;
        long? id = null;
        int width = 0, height = 0;
        string? fileName = null, cocoUrl = null, flickrUrl = null, date = null;
        long? license = null;
        int[]? neg = null, notExhaustive = null;
        while (true)
        {
            c.ReadRequired("an image");
            if (c.TokenType == JsonTokenType.EndObject)
                break;
            if (c.NameIs("id"u8)) id = c.ReadInt64("image id");
            else if (c.NameIs("width"u8)) width = c.ReadInt32("image width");
            else if (c.NameIs("height"u8)) height = c.ReadInt32("image height");
            else if (c.NameIs("file_name"u8)) fileName = c.ReadStringOrNull("image file_name");
            else if (c.NameIs("coco_url"u8)) cocoUrl = c.ReadStringOrNull("image coco_url");
            else if (c.NameIs("flickr_url"u8)) flickrUrl = c.ReadStringOrNull("image flickr_url");
            else if (c.NameIs("date_captured"u8)) date = c.ReadStringOrNull("image date_captured");
            else if (c.NameIs("license"u8)) license = c.ReadInt64("image license");
            else if (c.NameIs("neg_category_ids"u8)) neg = c.ReadInt32ArrayOrNull("image neg_category_ids");
            else if (c.NameIs("not_exhaustive_category_ids"u8)) notExhaustive = c.ReadInt32ArrayOrNull("image not_exhaustive_category_ids");
            else c.SkipValue();
        }
        if (id is null)
            throw c.ErrorAt(start, $"an image has no \"id\"");
        return new LvisImage
        {
            Id = id.Value, Width = width, Height = height, FileName = fileName, CocoUrl = cocoUrl, FlickrUrl = flickrUrl,
            DateCaptured = date, License = license, NegCategoryIds = neg, NotExhaustiveCategoryIds = notExhaustive,
        };
    }

    private static LvisCategory ReadCategory(ref JsonCursor c)
    {
        long start = c.Position;
        int? id = null;
        string name = "";
        string? synset = null, def = null, super = null;
        string[] synonyms = [];
        LvisFrequency? frequency = null;
        int? imageCount = null, instanceCount = null;
        while (true)
        {
            c.ReadRequired("a category");
            if (c.TokenType == JsonTokenType.EndObject)
                break;
            if (c.NameIs("id"u8)) id = c.ReadInt32("category id");
            else if (c.NameIs("name"u8)) name = c.ReadStringOrNull("category name") ?? "";
            else if (c.NameIs("synset"u8)) synset = c.ReadStringOrNull("category synset");
            else if (c.NameIs("def"u8)) def = c.ReadStringOrNull("category def");
            else if (c.NameIs("supercategory"u8)) super = c.ReadStringOrNull("category supercategory");
            else if (c.NameIs("image_count"u8)) imageCount = c.ReadInt32("category image_count");
            else if (c.NameIs("instance_count"u8)) instanceCount = c.ReadInt32("category instance_count");
            else if (c.NameIs("synonyms"u8)) synonyms = ReadStrings(ref c, "category synonyms");
            else if (c.NameIs("frequency"u8))
            {
                string? f = c.ReadStringOrNull("category frequency");
                frequency = f switch
                {
                    "r" => LvisFrequency.Rare,
                    "c" => LvisFrequency.Common,
                    "f" => LvisFrequency.Frequent,
                    null => null,
                    _ => throw c.Error($"category frequency \"{f}\" is not one of \"r\", \"c\", \"f\""),
                };
            }
            else c.SkipValue();
        }
        if (id is null)
            throw c.ErrorAt(start, $"a category has no \"id\"");
        return new LvisCategory
        {
            Id = id.Value, Name = name, Synset = synset, Synonyms = synonyms, Definition = def, Frequency = frequency,
            ImageCount = imageCount, InstanceCount = instanceCount, Supercategory = super,
        };
    }

    private static string[] ReadStrings(ref JsonCursor c, string what)
    {
        c.ReadRequired(what);
        if (c.TokenType == JsonTokenType.Null)
            return [];
        c.Expect(JsonTokenType.StartArray, what);
        var list = new List<string>();
        while (true)
        {
            c.ReadRequired(what);
            if (c.TokenType == JsonTokenType.EndArray)
                return [.. list];
            c.Expect(JsonTokenType.String, what);
            list.Add(c.CurrentString());
        }
    }

    private static LvisAnnotation ReadAnnotation(ref JsonCursor c, LvisReadOptions options, List<double> numbers)
    {
        long start = c.Position;
        long? id = null, imageId = null;
        int? categoryId = null;
        double[]? bbox = null;
        double? area = null;
        bool crowd = false;
        bool? ignore = null;
        LvisSegmentation? segmentation = null;
        while (true)
        {
            c.ReadRequired("an annotation");
            if (c.TokenType == JsonTokenType.EndObject)
                break;
            if (c.NameIs("id"u8)) id = c.ReadInt64("annotation id");
            else if (c.NameIs("image_id"u8)) imageId = c.ReadInt64("annotation image_id");
            else if (c.NameIs("category_id"u8)) categoryId = c.ReadInt32("annotation category_id");
            else if (c.NameIs("area"u8)) area = c.ReadDouble("annotation area");
            else if (c.NameIs("iscrowd"u8)) crowd = c.ReadFlag("annotation iscrowd");
            else if (c.NameIs("ignore"u8)) ignore = c.ReadFlag("annotation ignore");
            else if (c.NameIs("bbox"u8))
            {
                c.ReadDoubleArray(numbers, "annotation bbox");
                if (numbers.Count != 4)
                    throw c.Error($"annotation bbox has {numbers.Count} numbers, expected [x, y, width, height]");
                bbox = [.. numbers];
            }
            else if (c.NameIs("segmentation"u8) && options.ReadSegmentation)
                segmentation = SegmentationReader.Read(ref c, "annotation segmentation", numbers);
            else c.SkipValue();
        }
        if (id is null || imageId is null || categoryId is null)
        {
            string field = id is null ? "id" : imageId is null ? "image_id" : "category_id";
            throw c.ErrorAt(start, $"an annotation has no \"{field}\"");
        }
        return new LvisAnnotation
        {
            Id = id.Value, ImageId = imageId.Value, CategoryId = categoryId.Value, Bbox = bbox, Area = area, IsCrowd = crowd,
            Ignore = ignore, Segmentation = segmentation,
        };
    }
}
