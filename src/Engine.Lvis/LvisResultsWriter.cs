// Writes detection results in the standard LVIS/COCO results format (a JSON array of
// {image_id, category_id, bbox, score[, segmentation]}), one record at a time, so an inference run
// streams its detections to disk instead of collecting them. Doubles are written in their shortest
// round-trip form, so reading the file back gives the same bits.
using System.Text.Json;

namespace Engine.Lvis;

public sealed class LvisResultsWriter : IDisposable
{
    private readonly Stream? _ownedStream;
    private readonly Utf8JsonWriter _writer;
    private bool _finished;

    public LvisResultsWriter(string path)
        : this(new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16), ownsStream: true)
    {
    }

    public LvisResultsWriter(Stream stream, bool ownsStream = false)
    {
        _ownedStream = ownsStream ? stream : null;
        _writer = new Utf8JsonWriter(stream, new JsonWriterOptions { SkipValidation = false });
        _writer.WriteStartArray();
    }

    public void Write(long imageId, int categoryId, ReadOnlySpan<double> box, double score, LvisSegmentation? segmentation = null)
    {
        if (box.Length != 4)
            throw new ArgumentException($"LvisResultsWriter.Write: a box is [x, y, width, height], got {box.Length} numbers", nameof(box));
        if (!double.IsFinite(score))
            throw new ArgumentException($"LvisResultsWriter.Write: score {score} of image {imageId}, category {categoryId} is not finite", nameof(score));
        foreach (double v in box)
        {
            if (!double.IsFinite(v))
                throw new ArgumentException($"LvisResultsWriter.Write: box [{string.Join(", ", box.ToArray())}] of image {imageId}, category {categoryId} is not finite", nameof(box));
        }
        _writer.WriteStartObject();
        _writer.WriteNumber("image_id"u8, imageId);
        _writer.WriteNumber("category_id"u8, categoryId);
        _writer.WriteStartArray("bbox"u8);
        foreach (double v in box)
            _writer.WriteNumberValue(v);
        _writer.WriteEndArray();
        _writer.WriteNumber("score"u8, score);
        if (segmentation is not null)
        {
            _writer.WritePropertyName("segmentation"u8);
            WriteSegmentation(_writer, segmentation);
        }
        _writer.WriteEndObject();
        if (_writer.BytesPending > 1 << 16)
            _writer.Flush();
    }

    internal static void WriteSegmentation(Utf8JsonWriter w, LvisSegmentation segmentation)
    {
        switch (segmentation)
        {
            case PolygonSegmentation p:
                w.WriteStartArray();
                foreach (var polygon in p.Polygons)
                {
                    w.WriteStartArray();
                    foreach (double v in polygon)
                        w.WriteNumberValue(v);
                    w.WriteEndArray();
                }
                w.WriteEndArray();
                break;
            case CompressedRleSegmentation r:
                w.WriteStartObject();
                w.WriteStartArray("size"u8);
                w.WriteNumberValue(r.Height);
                w.WriteNumberValue(r.Width);
                w.WriteEndArray();
                w.WriteString("counts"u8, r.Counts);
                w.WriteEndObject();
                break;
            case UncompressedRleSegmentation u:
                w.WriteStartObject();
                w.WriteStartArray("size"u8);
                w.WriteNumberValue(u.Height);
                w.WriteNumberValue(u.Width);
                w.WriteEndArray();
                w.WriteStartArray("counts"u8);
                foreach (long v in u.Counts)
                    w.WriteNumberValue(v);
                w.WriteEndArray();
                w.WriteEndObject();
                break;
            default:
                throw new ArgumentException($"LvisResultsWriter: unknown segmentation type {segmentation.GetType().Name}");
        }
    }

    /// <summary>Closes the array and flushes. Called by Dispose if not called before.</summary>
    public void Finish()
    {
        if (_finished)
            return;
        _finished = true;
        _writer.WriteEndArray();
        _writer.Flush();
    }

    public void Dispose()
    {
        Finish();
        _writer.Dispose();
        _ownedStream?.Dispose();
    }
}
