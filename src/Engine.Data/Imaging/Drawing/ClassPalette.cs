// One colour per class, the same in every image and every run. Hues step by the golden ratio conjugate
// (0.618… of the colour wheel per class), which keeps consecutive classes far apart on the wheel; brightness
// cycles through three levels and saturation through two, so classes whose hues land close together after
// many steps still differ in lightness or saturation. The first 40 classes are at least 40 apart in RGB
// (Euclidean distance; tested).
namespace Engine.Data.Imaging.Drawing;

public static class ClassPalette
{
    private const double HueStep = 0.6180339887498949; // (√5 − 1) / 2
    private static readonly double[] Values = [1.0, 0.8, 0.6];
    private static readonly double[] Saturations = [0.9, 0.6];

    /// <summary>The colour of class index <paramref name="classIndex"/> (≥ 0).</summary>
    public static RgbColor Color(long classIndex)
    {
        if (classIndex < 0) throw new ArgumentOutOfRangeException(nameof(classIndex), classIndex, "ClassPalette.Color: class indices start at 0.");
        var hue = classIndex * HueStep % 1.0;
        var value = Values[classIndex % Values.Length];
        var saturation = Saturations[classIndex / Values.Length % Saturations.Length];
        return FromHsv(hue, saturation, value);
    }

    /// <summary>HSV → RGB with hue, saturation and value in [0, 1]: the hexcone model (Smith, "Color gamut transform
    /// pairs", SIGGRAPH 1978).</summary>
    public static RgbColor FromHsv(double hue, double saturation, double value)
    {
        var h = (hue - Math.Floor(hue)) * 6;
        var sector = (int)h % 6;
        var f = h - Math.Floor(h);
        var p = value * (1 - saturation);
        var q = value * (1 - saturation * f);
        var t = value * (1 - saturation * (1 - f));
        var (r, g, b) = sector switch
        {
            0 => (value, t, p),
            1 => (q, value, p),
            2 => (p, value, t),
            3 => (p, q, value),
            4 => (t, p, value),
            _ => (value, p, q),
        };
        return new RgbColor(ToByte(r), ToByte(g), ToByte(b));
    }

    private static byte ToByte(double v) => (byte)Math.Clamp(Math.Round(v * 255, MidpointRounding.AwayFromZero), 0, 255);
}
