// Reads one YAML document into a ConfigNode tree with YamlDotNet's event parser, keeping the start mark
// of every key and value so errors can point at file:line:col. Anchors and aliases are resolved (an alias
// becomes a copy of its anchored node); duplicate keys, non-scalar keys, tags other than the core ones and
// multi-document files are rejected here, before any merging, with the position of the offending token.
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Engine.Config;

internal static class YamlTreeReader
{
    /// <summary>Parses <paramref name="text"/>; <paramref name="sourceName"/> is what locations print as the file.
    /// An empty text gives an empty mapping.</summary>
    public static ConfigNode Read(string text, string sourceName)
    {
        var parser = new Parser(new StringReader(text));
        var anchors = new Dictionary<string, ConfigNode>(StringComparer.Ordinal);
        try
        {
            parser.Consume<StreamStart>();
            if (parser.TryConsume<StreamEnd>(out _)) return new ConfigMap(new SourceLocation(sourceName, 1, 1));
            parser.Consume<DocumentStart>();
            ConfigNode root;
            if (parser.Accept<DocumentEnd>(out var emptyEnd))
                root = new ConfigMap(At(sourceName, emptyEnd.Start));
            else
                root = ReadNode(parser, sourceName, anchors);
            parser.Consume<DocumentEnd>();
            if (!parser.Accept<StreamEnd>(out _))
            {
                var next = parser.Current!;
                throw ConfigException.At(At(sourceName, next.Start), "",
                    "a config file holds one YAML document; found a second one (remove the '---' separator).");
            }
            return root;
        }
        catch (YamlException e)
        {
            throw ConfigException.At(At(sourceName, e.Start), "", "YAML syntax error: " + e.Message);
        }
        catch (InvalidOperationException)
        {
            // YamlDotNet's parser runs out of events (rather than raising a YamlException) on some unclosed
            // flow collections; report the end of the text.
            var lines = text.Split('\n');
            throw ConfigException.At(new SourceLocation(sourceName, lines.Length, lines[^1].Length + 1), "",
                "YAML syntax error: the text ended inside a value (an unclosed bracket, brace or quote?).");
        }
    }

    private static SourceLocation At(string source, Mark mark) => new(source, (int)mark.Line, (int)mark.Column);

    private static ConfigNode ReadNode(IParser parser, string source, Dictionary<string, ConfigNode> anchors)
    {
        if (parser.TryConsume<AnchorAlias>(out var alias))
        {
            if (!anchors.TryGetValue(alias.Value.Value, out var target))
                throw ConfigException.At(At(source, alias.Start), "", $"alias *{alias.Value} refers to no earlier anchor &{alias.Value}.");
            return target.DeepClone();
        }

        ConfigNode node;
        AnchorName anchor;
        if (parser.TryConsume<Scalar>(out var scalar))
        {
            CheckTag(scalar.Tag, source, scalar.Start);
            node = new ConfigScalar(scalar.Value, scalar.Style == ScalarStyle.Plain, At(source, scalar.Start));
            anchor = scalar.Anchor;
        }
        else if (parser.TryConsume<SequenceStart>(out var seqStart))
        {
            CheckTag(seqStart.Tag, source, seqStart.Start);
            var items = new List<ConfigNode>();
            while (!parser.TryConsume<SequenceEnd>(out _)) items.Add(ReadNode(parser, source, anchors));
            node = new ConfigSequence(items, At(source, seqStart.Start));
            anchor = seqStart.Anchor;
        }
        else if (parser.TryConsume<MappingStart>(out var mapStart))
        {
            CheckTag(mapStart.Tag, source, mapStart.Start);
            var map = new ConfigMap(At(source, mapStart.Start));
            while (!parser.TryConsume<MappingEnd>(out _))
            {
                var keyStart = parser.Current!.Start;
                var keyNode = ReadNode(parser, source, anchors);
                if (keyNode is not ConfigScalar keyScalar)
                    throw ConfigException.At(At(source, keyStart), "", $"mapping keys must be plain names; found {keyNode.KindName}.");
                var key = keyScalar.Text;
                if (map.Find(key) is { } previous)
                    throw ConfigException.At(At(source, keyStart), key,
                        $"key appears twice in one mapping (first at line {previous.KeyLocation.Line}, column {previous.KeyLocation.Column}).");
                var value = ReadNode(parser, source, anchors);
                map.Set(key, value, At(source, keyStart));
            }
            node = map;
            anchor = mapStart.Anchor;
        }
        else
        {
            var current = parser.Current!;
            throw ConfigException.At(At(source, current.Start), "", $"unexpected YAML event {current.GetType().Name}.");
        }

        if (!anchor.IsEmpty) anchors[anchor.Value] = node;
        return node;
    }

    // Explicit tags would let a file change how a value is typed behind the binder's back; the binder
    // types values from the record, so only the core-schema tags (which say nothing more) are allowed.
    private static void CheckTag(TagName tag, string source, Mark start)
    {
        if (tag.IsEmpty || tag.IsNonSpecific) return;
        var name = tag.Value;
        if (name.StartsWith("tag:yaml.org,2002:", StringComparison.Ordinal)) return;
        throw ConfigException.At(At(source, start), "", $"YAML tag '{name}' is not supported; config values are typed by their key.");
    }
}
