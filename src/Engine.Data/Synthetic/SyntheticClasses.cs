// The visual vocabulary of the synthetic dataset: a class is a shape × colour × texture. Class k takes
// the mixed-radix digits d0 = k mod 8, d1 = ⌊k/8⌋ mod 10, d2 = ⌊k/80⌋ mod 4 and uses
//   shape = d0, colour = (d0 + d1) mod 10, texture = (d0 + d1 + d2) mod 4,
// a bijection on 0..319 (d0, d1, d2 are recovered from shape, colour, texture), arranged so that the
// first classes already differ in colour as well as shape: with 40 classes every shape appears five
// times, each time in another colour, and all four textures are used.
namespace Engine.Data.Synthetic;

public enum ShapeKind
{
    Circle,
    Square,
    Triangle,
    Cross,
    Ring,
    Star,
    Diamond,
    Hexagon,
}

public enum TextureKind
{
    Solid,
    Stripes,
    Checker,
    Dots,
}

/// <summary>One class of the synthetic set. <paramref name="Index"/> is contiguous from 0; its LVIS category id is Index + 1.</summary>
public sealed record SyntheticClass(int Index, ShapeKind Shape, string ColourName, byte R, byte G, byte B, TextureKind Texture)
{
    /// <summary>e.g. "red_striped_circle".</summary>
    public string Name => $"{ColourName}_{TextureWord(Texture)}_{Shape.ToString().ToLowerInvariant()}";

    /// <summary>A WordNet-style synset name like LVIS's ("red_striped_circle.n.01").</summary>
    public string Synset => $"{Name}.n.01";

    public string Definition => $"a {ColourName} {Shape.ToString().ToLowerInvariant()} with a {Texture.ToString().ToLowerInvariant()} texture";

    private static string TextureWord(TextureKind t) => t switch
    {
        TextureKind.Solid => "solid",
        TextureKind.Stripes => "striped",
        TextureKind.Checker => "checkered",
        _ => "dotted",
    };
}

public static class SyntheticClasses
{
    public const int MaxClasses = 8 * 10 * 4;

    /// <summary>Saturated colours far from the muted background and from each other.</summary>
    private static readonly (string Name, byte R, byte G, byte B)[] Colours =
    [
        ("red", 220, 40, 40), ("green", 40, 180, 60), ("blue", 40, 80, 225), ("yellow", 235, 215, 40),
        ("magenta", 210, 50, 200), ("cyan", 40, 205, 215), ("orange", 245, 140, 30), ("purple", 115, 45, 175),
        ("white", 248, 248, 248), ("black", 20, 20, 20),
    ];

    public static SyntheticClass Get(int index)
    {
        if (index is < 0 or >= MaxClasses)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"SyntheticClasses: class index must be in 0..{MaxClasses - 1} (8 shapes × 10 colours × 4 textures).");
        var d0 = index % 8;
        var d1 = index / 8 % 10;
        var d2 = index / 80 % 4;
        var colour = Colours[(d0 + d1) % 10];
        return new SyntheticClass(index, (ShapeKind)d0, colour.Name, colour.R, colour.G, colour.B, (TextureKind)((d0 + d1 + d2) % 4));
    }

    public static IReadOnlyList<SyntheticClass> Take(int count)
    {
        if (count is < 1 or > MaxClasses)
            throw new ArgumentOutOfRangeException(nameof(count), count, $"SyntheticClasses: the number of classes must be in 1..{MaxClasses}.");
        return Enumerable.Range(0, count).Select(Get).ToArray();
    }
}
