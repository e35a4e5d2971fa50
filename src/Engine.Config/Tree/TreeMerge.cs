// Deep merge of config trees, the rule `_base_` inheritance and overrides share: where both sides are
// mappings the merge recurses key by key; anything else (scalars, lists, or a kind change) is replaced
// by the overriding side. Lists replace rather than concatenate, as in detectron2 and mmdetection.
namespace Engine.Config;

internal static class TreeMerge
{
    /// <summary>Merges <paramref name="overlay"/> into <paramref name="target"/> in place.</summary>
    public static void Into(ConfigMap target, ConfigMap overlay)
    {
        foreach (var entry in overlay.Entries)
        {
            if (target.TryGetValue(entry.Key, out var existing) && existing is ConfigMap existingMap && entry.Value is ConfigMap overlayMap)
                Into(existingMap, overlayMap);
            else
                target.Set(entry.Key, entry.Value.DeepClone(), entry.KeyLocation);
        }
    }
}
