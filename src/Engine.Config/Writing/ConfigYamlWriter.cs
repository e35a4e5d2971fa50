// Writes a config record as YAML with every key present (defaults included), in declaration order:
// sections as block mappings, lists in flow style, strings and enum values double-quoted, numbers in their
// shortest round-trip form. The output is what a run saves as its effective config; ConfigLoader reads it
// back into an equal record.
using System.Globalization;
using System.Text;

namespace Engine.Config;

public static class ConfigYamlWriter
{
    public static string Write(EngineConfig config) => Write((object)config);

    /// <summary>Writes any config section record (its keys at the top level).</summary>
    public static string Write(object section)
    {
        var schema = ConfigSchema.Section(section.GetType());
        var sb = new StringBuilder();
        WriteSection(sb, schema, section, indent: 0);
        return sb.ToString();
    }

    private static void WriteSection(StringBuilder sb, SectionSchema schema, object value, int indent)
    {
        foreach (var p in schema.Properties)
            WriteEntry(sb, p.Key, p.Node, p.Property.GetValue(value), indent);
    }

    private static void WriteEntry(StringBuilder sb, string key, SchemaNode node, object? value, int indent)
    {
        sb.Append(' ', indent).Append(key).Append(':');
        switch (node)
        {
            case SectionSchema section:
                sb.Append('\n');
                WriteSection(sb, section, value!, indent + 2);
                break;
            case MapSchema map:
                var entries = ((System.Collections.IEnumerable)value!).Cast<object>().ToArray();
                if (entries.Length == 0)
                {
                    sb.Append(" {}\n");
                    break;
                }
                sb.Append('\n');
                foreach (var pair in entries)
                {
                    var pairType = pair.GetType();
                    var name = (string)pairType.GetProperty("Key")!.GetValue(pair)!;
                    WriteEntry(sb, MapKey(name), map.Value, pairType.GetProperty("Value")!.GetValue(pair), indent + 2);
                }
                break;
            default:
                sb.Append(' ').Append(Inline(node, value)).Append('\n');
                break;
        }
    }

    private static string Inline(SchemaNode node, object? value) => node switch
    {
        ListSchema list => "[" + string.Join(", ", ((System.Collections.IEnumerable)value!).Cast<object?>().Select(v => Inline(list.Element, v))) + "]",
        ScalarSchema scalar => Scalar(scalar, value),
        _ => throw new InvalidOperationException($"ConfigYamlWriter: a {node.GetType().Name} cannot be written inline."),
    };

    private static string Scalar(ScalarSchema schema, object? value)
    {
        if (value is null) return "null";
        var t = schema.Underlying;
        if (t == typeof(string)) return Quote((string)value);
        if (t == typeof(bool)) return (bool)value ? "true" : "false";
        if (t == typeof(int)) return ((int)value).ToString(CultureInfo.InvariantCulture);
        if (t == typeof(long)) return ((long)value).ToString(CultureInfo.InvariantCulture);
        if (t == typeof(double)) return FormatDouble((double)value);
        if (t.IsEnum) return Quote(KeyNames.ValueOf(t, value));
        throw new InvalidOperationException($"ConfigYamlWriter: cannot write a {t.Name}.");
    }

    /// <summary>Shortest text that parses back to the same double, always with a '.' so YAML reads it as a
    /// float: 0.02, 1.0, 1.0e-11.</summary>
    internal static string FormatDouble(double d)
    {
        var s = d.ToString("R", CultureInfo.InvariantCulture);
        var e = s.IndexOf('E');
        var mantissa = e < 0 ? s : s[..e];
        var exponent = e < 0 ? "" : "e" + s[(e + 1)..];
        if (!mantissa.Contains('.')) mantissa += ".0";
        return mantissa + exponent;
    }

    private static string MapKey(string name) =>
        name.Length > 0 && name.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '_' or '-') ? name : Quote(name);

    private static string Quote(string s)
    {
        var sb = new StringBuilder(s.Length + 2).Append('"');
        foreach (var ch in s)
        {
            switch (ch)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (char.IsControl(ch)) sb.Append("\\u").Append(((int)ch).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(ch);
                    break;
            }
        }
        return sb.Append('"').ToString();
    }
}
