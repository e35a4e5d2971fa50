// Writes an LvisDataset as LVIS/COCO ground-truth JSON, streaming, with every field the reader knows;
// fields that are null are left out. Used by synthetic dataset generators and round-trip tests.
using System.Text.Json;

namespace Engine.Lvis;

public static class LvisDatasetWriter
{
    public static void Write(string path, LvisDataset dataset)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        Write(stream, dataset);
    }

    public static void Write(Stream stream, LvisDataset dataset)
    {
        using var w = new Utf8JsonWriter(stream);
        w.WriteStartObject();
        w.WriteStartArray("images"u8);
        foreach (var img in dataset.Images)
        {
            w.WriteStartObject();
            w.WriteNumber("id"u8, img.Id);
            w.WriteNumber("width"u8, img.Width);
            w.WriteNumber("height"u8, img.Height);
            WriteOptional(w, "file_name"u8, img.FileName);
            WriteOptional(w, "coco_url"u8, img.CocoUrl);
            WriteOptional(w, "flickr_url"u8, img.FlickrUrl);
            WriteOptional(w, "date_captured"u8, img.DateCaptured);
            if (img.License is { } lic)
                w.WriteNumber("license"u8, lic);
            WriteIds(w, "neg_category_ids"u8, img.NegCategoryIds);
            WriteIds(w, "not_exhaustive_category_ids"u8, img.NotExhaustiveCategoryIds);
            w.WriteEndObject();
            Flush(w);
        }
        w.WriteEndArray();
        w.WriteStartArray("categories"u8);
        foreach (var c in dataset.Categories)
        {
            w.WriteStartObject();
            w.WriteNumber("id"u8, c.Id);
            w.WriteString("name"u8, c.Name);
            WriteOptional(w, "synset"u8, c.Synset);
            w.WriteStartArray("synonyms"u8);
            foreach (string s in c.Synonyms)
                w.WriteStringValue(s);
            w.WriteEndArray();
            WriteOptional(w, "def"u8, c.Definition);
            WriteOptional(w, "supercategory"u8, c.Supercategory);
            if (c.Frequency is { } f)
                w.WriteString("frequency"u8, f switch { LvisFrequency.Rare => "r", LvisFrequency.Common => "c", _ => "f" });
            if (c.ImageCount is { } ic)
                w.WriteNumber("image_count"u8, ic);
            if (c.InstanceCount is { } nc)
                w.WriteNumber("instance_count"u8, nc);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("annotations"u8);
        foreach (var a in dataset.Annotations)
        {
            w.WriteStartObject();
            w.WriteNumber("id"u8, a.Id);
            w.WriteNumber("image_id"u8, a.ImageId);
            w.WriteNumber("category_id"u8, a.CategoryId);
            if (a.Bbox is { } b)
            {
                w.WriteStartArray("bbox"u8);
                foreach (double v in b)
                    w.WriteNumberValue(v);
                w.WriteEndArray();
            }
            if (a.Area is { } area)
                w.WriteNumber("area"u8, area);
            if (a.IsCrowd)
                w.WriteNumber("iscrowd"u8, 1);
            if (a.Ignore is { } ig)
                w.WriteNumber("ignore"u8, ig ? 1 : 0);
            if (a.Segmentation is { } seg)
            {
                w.WritePropertyName("segmentation"u8);
                LvisResultsWriter.WriteSegmentation(w, seg);
            }
            w.WriteEndObject();
            Flush(w);
        }
        w.WriteEndArray();
        w.WriteEndObject();
        w.Flush();
    }

    private static void Flush(Utf8JsonWriter w)
    {
        if (w.BytesPending > 1 << 16)
            w.Flush();
    }

    private static void WriteOptional(Utf8JsonWriter w, ReadOnlySpan<byte> name, string? value)
    {
        if (value is not null)
            w.WriteString(name, value);
    }

    private static void WriteIds(Utf8JsonWriter w, ReadOnlySpan<byte> name, int[]? ids)
    {
        if (ids is null)
            return;
        w.WriteStartArray(name);
        foreach (int id in ids)
            w.WriteNumberValue(id);
        w.WriteEndArray();
    }
}
