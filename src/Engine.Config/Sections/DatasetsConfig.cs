// DATASETS: which named datasets a run trains and tests on, and the catalog that maps each name to its
// annotation JSON and image folder. detectron2 registers these names in code; here they are config, so a
// new dataset is a few YAML lines (or `--set DATASETS.CATALOG.mine={JSON: a.json, IMAGE_ROOT: imgs}`).
// Relative catalog paths are resolved against DATASETS.ROOT, itself relative to the working directory.
namespace Engine.Config;

public enum DatasetFormat
{
    /// <summary>LVIS v1 JSON: image files found from each image's coco_url (train2017/…, val2017/…) under IMAGE_ROOT.</summary>
    [ConfigValue("lvis")] Lvis,
    /// <summary>COCO JSON, or LVIS-format JSON with file_name relative to IMAGE_ROOT (the synthetic set).</summary>
    [ConfigValue("coco")] Coco,
}

public sealed record DatasetEntry
{
    /// <summary>Annotation file (LVIS/COCO JSON).</summary>
    public string Json { get; init; } = "";

    /// <summary>Folder the image paths are relative to.</summary>
    public string ImageRoot { get; init; } = "";

    public DatasetFormat Format { get; init; } = DatasetFormat.Lvis;
}

public sealed record DatasetsConfig
{
    public ValueList<string> Train { get; init; } = ["coco_2017_train"];
    public ValueList<string> Test { get; init; } = ["coco_2017_val"];

    /// <summary>Folder that relative catalog paths are resolved against (detectron2's DETECTRON2_DATASETS, default "datasets").</summary>
    public string Root { get; init; } = "datasets";

    /// <summary>Name → files. The built-in entries follow detectron2's layout (datasets/coco, datasets/lvis) and
    /// `engine synth --out datasets/synth_lt` (train.json, val.json, train/, val/).</summary>
    public ValueMap<DatasetEntry> Catalog { get; init; } = new(
    [
        new("lvis_v1_train", new DatasetEntry { Json = "lvis/lvis_v1_train.json", ImageRoot = "coco", Format = DatasetFormat.Lvis }),
        new("lvis_v1_val", new DatasetEntry { Json = "lvis/lvis_v1_val.json", ImageRoot = "coco", Format = DatasetFormat.Lvis }),
        new("coco_2017_train", new DatasetEntry { Json = "coco/annotations/instances_train2017.json", ImageRoot = "coco/train2017", Format = DatasetFormat.Coco }),
        new("coco_2017_val", new DatasetEntry { Json = "coco/annotations/instances_val2017.json", ImageRoot = "coco/val2017", Format = DatasetFormat.Coco }),
        new("synth_lt_train", new DatasetEntry { Json = "synth_lt/train.json", ImageRoot = "synth_lt", Format = DatasetFormat.Coco }),
        new("synth_lt_val", new DatasetEntry { Json = "synth_lt/val.json", ImageRoot = "synth_lt", Format = DatasetFormat.Coco }),
    ]);

    /// <summary>The catalog entry of <paramref name="name"/> with its paths resolved against ROOT (absolute paths stay as written).</summary>
    public DatasetEntry Resolve(string name)
    {
        if (!Catalog.TryGetValue(name, out var entry))
            throw new ConfigException($"DATASETS: no dataset named '{name}' in DATASETS.CATALOG (known: {string.Join(", ", Catalog.Keys)}).");
        return entry with { Json = Path.Combine(Root, entry.Json), ImageRoot = Path.Combine(Root, entry.ImageRoot) };
    }
}
