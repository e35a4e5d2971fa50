// Attributes that adjust the default key and value spellings of the binder (see KeyNames).
namespace Engine.Config;

/// <summary>Overrides the YAML key derived from a property name, for the few detectron2 keys the
/// mechanical rule cannot produce (a digit followed by a lower-case letter, as in STRIDE_IN_1X1).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ConfigKeyAttribute(string key) : Attribute
{
    public string Key { get; } = key;
}

/// <summary>The spelling of an enum member in YAML (e.g. <c>"RepeatFactorTrainingSampler"</c>, <c>"smooth_l1"</c>).</summary>
[AttributeUsage(AttributeTargets.Field)]
public sealed class ConfigValueAttribute(string value) : Attribute
{
    public string Value { get; } = value;
}
