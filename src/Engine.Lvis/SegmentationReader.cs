// Parses one "segmentation" value (polygons, compressed RLE or uncompressed RLE) for the ground-truth
// and results readers.
using System.Text.Json;
using Engine.Lvis.Json;

namespace Engine.Lvis;

internal static class SegmentationReader
{
    /// <summary>Positioned on the "segmentation" property name; returns null for a JSON null.</summary>
    public static LvisSegmentation? Read(ref JsonCursor c, string what, List<double> numbers)
    {
        c.ReadRequired(what);
        switch (c.TokenType)
        {
            case JsonTokenType.Null:
                return null;
            case JsonTokenType.StartArray:
            {
                var polygons = new List<double[]>();
                while (true)
                {
                    c.ReadRequired(what);
                    if (c.TokenType == JsonTokenType.EndArray)
                        return new PolygonSegmentation(polygons);
                    c.Expect(JsonTokenType.StartArray, $"a polygon of {what}");
                    numbers.Clear();
                    while (true)
                    {
                        c.ReadRequired(what);
                        if (c.TokenType == JsonTokenType.EndArray)
                            break;
                        numbers.Add(c.CurrentDouble($"a polygon coordinate of {what}"));
                    }
                    polygons.Add([.. numbers]);
                }
            }
            case JsonTokenType.StartObject:
            {
                long start = c.Position;
                int height = -1, width = -1;
                string? compressed = null;
                long[]? counts = null;
                while (true)
                {
                    c.ReadRequired(what);
                    if (c.TokenType == JsonTokenType.EndObject)
                        break;
                    if (c.NameIs("size"u8))
                    {
                        c.ReadDoubleArray(numbers, $"{what} size");
                        if (numbers.Count != 2 || numbers[0] < 0 || numbers[1] < 0 || numbers[0] != Math.Floor(numbers[0]) || numbers[1] != Math.Floor(numbers[1]))
                            throw c.Error($"{what} size must be [height, width] with non-negative integers");
                        height = (int)numbers[0];
                        width = (int)numbers[1];
                    }
                    else if (c.NameIs("counts"u8))
                    {
                        c.ReadRequired($"{what} counts");
                        if (c.TokenType == JsonTokenType.String)
                        {
                            compressed = c.CurrentString();
                        }
                        else
                        {
                            c.Expect(JsonTokenType.StartArray, $"{what} counts");
                            var list = new List<long>();
                            while (true)
                            {
                                c.ReadRequired(what);
                                if (c.TokenType == JsonTokenType.EndArray)
                                    break;
                                long v = c.CurrentInt64($"a run length of {what}");
                                if (v < 0)
                                    throw c.Error($"a run length of {what} is negative ({v})");
                                list.Add(v);
                            }
                            counts = [.. list];
                        }
                    }
                    else c.SkipValue();
                }
                if (height < 0 || (compressed is null && counts is null))
                    throw c.ErrorAt(start, $"{what} is an RLE without \"size\" or \"counts\"");
                return compressed is not null
                    ? new CompressedRleSegmentation(height, width, compressed)
                    : new UncompressedRleSegmentation(height, width, counts!);
            }
            default:
                throw c.Error($"expected polygons (an array) or an RLE (an object) for {what}, found {JsonCursor.Describe(c.TokenType)}");
        }
    }
}
