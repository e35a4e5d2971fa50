// Writes a synthetic split as LVIS v1 JSON with Utf8JsonWriter: categories (id, name, synset, synonyms,
// def, frequency, image_count, instance_count — the training statistics, in both splits, as LVIS
// does), images (id, file_name relative to the JSON's folder, height, width, neg_category_ids,
// not_exhaustive_category_ids) and annotations (id, image_id, category_id, bbox [x, y, w, h], area,
// segmentation [[x1, y1, ...]], iscrowd 0). The file appears atomically: written to a temporary name
// beside it, then renamed over the target.
using System.Text.Json;

namespace Engine.Data.Synthetic;

internal static class LvisJsonWriter
{
    public static void Write(string path, IReadOnlyList<SyntheticCategory> categories, IReadOnlyList<SyntheticImage> images)
    {
        var temp = $"{path}.tmp-{Environment.ProcessId}";
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            using (var w = new Utf8JsonWriter(stream))
            {
                w.WriteStartObject();
                w.WriteStartObject("info");
                w.WriteString("description", "Engine synthetic long-tailed shapes (shape × colour × texture classes)");
                w.WriteString("version", "1.0");
                w.WriteEndObject();
                w.WriteStartArray("licenses");
                w.WriteEndArray();

                w.WriteStartArray("categories");
                foreach (var c in categories)
                {
                    w.WriteStartObject();
                    w.WriteNumber("id", c.Id);
                    w.WriteString("name", c.Name);
                    w.WriteString("synset", c.Synset);
                    w.WriteStartArray("synonyms");
                    w.WriteStringValue(c.Name);
                    w.WriteEndArray();
                    w.WriteString("def", c.Look.Definition);
                    w.WriteString("frequency", c.Frequency.ToString());
                    w.WriteNumber("image_count", c.ImageCount);
                    w.WriteNumber("instance_count", c.InstanceCount);
                    w.WriteEndObject();
                }
                w.WriteEndArray();

                w.WriteStartArray("images");
                foreach (var image in images)
                {
                    w.WriteStartObject();
                    w.WriteNumber("id", image.Id);
                    w.WriteString("file_name", image.FileName);
                    w.WriteNumber("height", image.Height);
                    w.WriteNumber("width", image.Width);
                    WriteIntArray(w, "neg_category_ids", image.NegCategoryIds);
                    WriteIntArray(w, "not_exhaustive_category_ids", image.NotExhaustiveCategoryIds);
                    w.WriteEndObject();
                }
                w.WriteEndArray();

                w.WriteStartArray("annotations");
                foreach (var image in images)
                    foreach (var o in image.Objects)
                    {
                        if (o.AnnotationId is not { } id) continue;
                        w.WriteStartObject();
                        w.WriteNumber("id", id);
                        w.WriteNumber("image_id", image.Id);
                        w.WriteNumber("category_id", o.CategoryId);
                        w.WriteStartArray("bbox");
                        foreach (var v in o.BoxXywh) w.WriteNumberValue(v);
                        w.WriteEndArray();
                        w.WriteNumber("area", o.Area);
                        w.WriteStartArray("segmentation");
                        w.WriteStartArray();
                        foreach (var v in o.Polygon) w.WriteNumberValue(v);
                        w.WriteEndArray();
                        w.WriteEndArray();
                        w.WriteNumber("iscrowd", 0);
                        w.WriteEndObject();
                    }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    private static void WriteIntArray(Utf8JsonWriter w, string name, int[] values)
    {
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteNumberValue(v);
        w.WriteEndArray();
    }
}
