// The in-memory form of an LVIS (v0.5, v1) or COCO ground-truth file: images, categories and
// annotations with every field the trainer and the evaluator use. Fields LVIS has and COCO lacks
// (neg_category_ids, not_exhaustive_category_ids, frequency, counts) are null when absent; the
// evaluator insists on them, the data loader does not.
namespace Engine.Lvis;

public sealed record LvisImage
{
    public required long Id { get; init; }
    public int Width { get; init; }
    public int Height { get; init; }
    /// <summary>COCO and LVIS v0.5 file name; LVIS v1 has only <see cref="CocoUrl"/>.</summary>
    public string? FileName { get; init; }
    public string? CocoUrl { get; init; }
    public string? FlickrUrl { get; init; }
    public string? DateCaptured { get; init; }
    public long? License { get; init; }
    /// <summary>Categories verified absent from the image (federated annotation).</summary>
    public int[]? NegCategoryIds { get; init; }
    /// <summary>Categories present but not exhaustively annotated in the image.</summary>
    public int[]? NotExhaustiveCategoryIds { get; init; }
}

/// <summary>LVIS frequency group of a category: rare (1-10 training images), common (11-100), frequent (&gt;100).</summary>
public enum LvisFrequency
{
    Rare,
    Common,
    Frequent,
}

public sealed record LvisCategory
{
    public required int Id { get; init; }
    public string Name { get; init; } = "";
    public string? Synset { get; init; }
    public string[] Synonyms { get; init; } = [];
    /// <summary>The WordNet definition (the "def" field).</summary>
    public string? Definition { get; init; }
    public LvisFrequency? Frequency { get; init; }
    public int? ImageCount { get; init; }
    public int? InstanceCount { get; init; }
    /// <summary>COCO's supercategory; LVIS has none.</summary>
    public string? Supercategory { get; init; }
}

public sealed record LvisAnnotation
{
    public required long Id { get; init; }
    public required long ImageId { get; init; }
    public required int CategoryId { get; init; }
    /// <summary>[x, y, width, height] in pixels, or null when the file has no bbox.</summary>
    public double[]? Bbox { get; init; }
    /// <summary>The "area" field (LVIS: mask area in pixels), or null when absent.</summary>
    public double? Area { get; init; }
    public bool IsCrowd { get; init; }
    /// <summary>The optional "ignore" field; null when absent.</summary>
    public bool? Ignore { get; init; }
    /// <summary>Polygons or RLE; null when absent or when the reader was told to skip segmentations.</summary>
    public LvisSegmentation? Segmentation { get; init; }
}

public sealed class LvisDataset
{
    public required IReadOnlyList<LvisImage> Images { get; init; }
    public required IReadOnlyList<LvisCategory> Categories { get; init; }
    public required IReadOnlyList<LvisAnnotation> Annotations { get; init; }
}
