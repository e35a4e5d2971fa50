// "Did you mean" for unknown keys: ranks valid key paths by edit distance to what was written, both on the
// whole path and on a same-length suffix (so ROI_HEADS.NUM_CLASSES finds MODEL.ROI_HEADS.NUM_CLASSES).
// The distance ignores case, so a lower-case key is matched to its upper-case spelling.
namespace Engine.Config;

internal static class Suggestions
{
    public static IReadOnlyList<string> Closest(string given, IEnumerable<string> candidates, int max = 3)
    {
        var givenSegments = given.Split('.').Length;
        var threshold = Math.Max(2, given.Length / 3);
        return candidates
            .Distinct(StringComparer.Ordinal)
            // An ancestor of the written path (MODEL.RESNETS for MODEL.RESNETS.DEPHT) is not an alternative to it.
            .Where(c => !given.StartsWith(c + ".", StringComparison.OrdinalIgnoreCase))
            .Select(c => (Candidate: c, Score: Score(given, givenSegments, c)))
            .Where(x => x.Score <= threshold)
            .OrderBy(x => x.Score).ThenBy(x => Math.Abs(x.Candidate.Length - given.Length)).ThenBy(x => x.Candidate, StringComparer.Ordinal)
            .Take(max)
            .Select(x => x.Candidate)
            .ToArray();
    }

    private static int Score(string given, int givenSegments, string candidate)
    {
        var score = Distance(given, candidate);
        var segments = candidate.Split('.');
        if (segments.Length > givenSegments)
        {
            var suffix = string.Join('.', segments[^givenSegments..]);
            score = Math.Min(score, Distance(given, suffix) + 1);
        }
        return score;
    }

    /// <summary>Levenshtein distance (insert, delete, substitute cost 1), case-insensitive.</summary>
    public static int Distance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++) previous[j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = char.ToUpperInvariant(a[i - 1]) == char.ToUpperInvariant(b[j - 1]) ? 0 : 1;
                current[j] = Math.Min(Math.Min(previous[j] + 1, current[j - 1] + 1), previous[j - 1] + cost);
            }
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }

    /// <summary>The message tail for an unknown key: suggestions when some are close, else the keys valid at that level.</summary>
    public static string ForUnknownKey(string givenPath, SchemaNode root, SchemaNode deepest, string deepestPath)
    {
        var candidates = ConfigSchema.KeyPaths(deepest, deepestPath).Concat(ConfigSchema.KeyPaths(root, ""));
        var close = Closest(givenPath, candidates);
        if (close.Count > 0) return "did you mean " + string.Join(", ", close) + "?";
        var here = deepest is SectionSchema s ? s.Properties.Select(p => p.Key) : [];
        var where = deepestPath.Length == 0 ? "at the top level" : "under " + deepestPath;
        return $"valid keys {where}: {string.Join(", ", here)}.";
    }
}
