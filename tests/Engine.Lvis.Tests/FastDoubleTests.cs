// The fast decimal parser must give exactly double.Parse's result whenever it accepts a number.
using System.Globalization;
using System.Text;
using Engine.Lvis.Json;

namespace Engine.Lvis.Tests;

public class FastDoubleTests
{
    private static void Check(string text, int seed, ref int accepted)
    {
        if (!FastDouble.TryParse(Encoding.ASCII.GetBytes(text), out double v))
            return;
        accepted++;
        double expected = double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
        Assert.True(BitConverter.DoubleToInt64Bits(expected) == BitConverter.DoubleToInt64Bits(v), $"seed {seed}: \"{text}\" gave {v:R}, expected {expected:R}");
    }

    [Fact]
    public void AgreesWithTheFullParserBitForBit()
    {
        int seed = Environment.TickCount;
        var rng = new Random(seed);
        int accepted = 0;
        for (int i = 0; i < 200000; i++)
        {
            double x = rng.Next(4) switch
            {
                0 => (float)(rng.NextDouble() * 1000),                       // detectron2-style float32 boxes
                1 => rng.NextDouble(),
                2 => Math.Round(rng.NextDouble() * 1000, rng.Next(6)),
                _ => rng.NextDouble() * Math.Pow(10, rng.Next(-30, 30)),
            };
            if (rng.Next(5) == 0)
                x = -x;
            Check(x.ToString("R", CultureInfo.InvariantCulture), seed, ref accepted);
            Check(x.ToString("E" + rng.Next(1, 17), CultureInfo.InvariantCulture), seed, ref accepted);
            // Random digit strings, including more digits than a double holds.
            var sb = new StringBuilder();
            int intDigits = rng.Next(0, 12), fracDigits = rng.Next(0, 14);
            sb.Append(intDigits == 0 ? "0" : rng.Next(1, 10).ToString(CultureInfo.InvariantCulture));
            for (int d = 1; d < intDigits; d++) sb.Append((char)('0' + rng.Next(10)));
            if (fracDigits > 0)
            {
                sb.Append('.');
                for (int d = 0; d < fracDigits; d++) sb.Append((char)('0' + rng.Next(10)));
            }
            if (rng.Next(3) == 0) sb.Append('e').Append(rng.Next(-25, 25));
            Check(sb.ToString(), seed, ref accepted);
        }
        foreach (string s in new[] { "0", "-0", "0.0", "-0.0", "1e22", "1e23", "9007199254740992", "9007199254740993", "0.1", "1E-22", "123456789012345678901", "1.7976931348623157e308" })
            Check(s, seed, ref accepted);
        Assert.True(accepted > 100000, $"seed {seed}: only {accepted} numbers took the fast path");
    }

    [Fact]
    public void DeclinesWhatItCannotDoExactly()
    {
        Assert.False(FastDouble.TryParse("9007199254740993"u8, out _));       // mantissa above 2^53
        Assert.False(FastDouble.TryParse("1e23"u8, out _));                   // exponent beyond 22
        Assert.False(FastDouble.TryParse("0.12300000339746475"u8, out _));   // 17 significant digits
        Assert.True(FastDouble.TryParse("-0"u8, out double z) && double.IsNegative(z));
    }
}
