// How YAML keys map to record properties. Keys are detectron2's UPPER_SNAKE_CASE names and are matched
// case-sensitively; each property's key is derived mechanically from its PascalCase name: an underscore
// before every upper-case letter except the first, then everything upper-cased.
//   BaseLr -> BASE_LR, MinSizeTrain -> MIN_SIZE_TRAIN, RoiBoxHead -> ROI_BOX_HEAD, Res2OutChannels -> RES2_OUT_CHANNELS,
//   SmoothL1Beta -> SMOOTH_L1_BETA, Eqlv2 -> EQLV2, Dataloader -> DATALOADER, OutputDir -> OUTPUT_DIR.
// A property may instead name its key with [ConfigKey] (StrideIn1x1 -> STRIDE_IN_1X1). Enum members are
// spelled by [ConfigValue] when present, else by their C# name.
using System.Reflection;
using System.Text;

namespace Engine.Config;

public static class KeyNames
{
    /// <summary>The YAML key of <paramref name="property"/>.</summary>
    public static string KeyOf(PropertyInfo property) =>
        property.GetCustomAttribute<ConfigKeyAttribute>()?.Key ?? FromPascalCase(property.Name);

    /// <summary>The mechanical rule: <c>PreNmsTopkTrain</c> → <c>PRE_NMS_TOPK_TRAIN</c>.</summary>
    public static string FromPascalCase(string name)
    {
        var sb = new StringBuilder(name.Length + 8);
        for (var i = 0; i < name.Length; i++)
        {
            if (i > 0 && char.IsUpper(name[i])) sb.Append('_');
            sb.Append(char.ToUpperInvariant(name[i]));
        }
        return sb.ToString();
    }

    /// <summary>YAML spelling of an enum value.</summary>
    public static string ValueOf<TEnum>(TEnum value) where TEnum : struct, Enum => ValueOf(typeof(TEnum), value);

    public static string ValueOf(Type enumType, object value)
    {
        var name = Enum.GetName(enumType, value)
                   ?? throw new ArgumentException($"KeyNames.ValueOf: {value} is not a member of {enumType.Name}.");
        return enumType.GetField(name)!.GetCustomAttribute<ConfigValueAttribute>()?.Value ?? name;
    }

    /// <summary>All (YAML spelling, value) pairs of an enum type, in declaration order.</summary>
    public static IReadOnlyList<(string Spelling, object Value)> EnumSpellings(Type enumType) =>
        enumType.GetFields(BindingFlags.Public | BindingFlags.Static)
            .Select(f => (f.GetCustomAttribute<ConfigValueAttribute>()?.Value ?? f.Name, f.GetValue(null)!))
            .ToArray();
}
