// Clinger's fast path for decimal-to-double conversion (W. D. Clinger, "How to Read Floating Point
// Numbers Accurately", PLDI 1990): when a number's significant digits form an integer m <= 2^53 and its
// decimal exponent e has |e| <= 22, both m and 10^|e| are exact doubles, so m * 10^e (or m / 10^-e) is a
// single correctly rounded IEEE operation — the same double a full parser returns. Results files are
// mostly such numbers; anything else (more digits, larger exponents) is left to the full parser.
namespace Engine.Lvis.Json;

internal static class FastDouble
{
    private static readonly double[] PowersOfTen =
    [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];

    private const ulong MaxExactMantissa = 1UL << 53;

    /// <summary>Parses a JSON number token (grammar already validated by the reader); false when the fast path
    /// does not apply.</summary>
    public static bool TryParse(ReadOnlySpan<byte> s, out double value)
    {
        value = 0;
        int i = 0, n = s.Length;
        bool negative = false;
        if (n > 0 && s[0] == (byte)'-')
        {
            negative = true;
            i = 1;
        }
        ulong m = 0;
        int exponent = 0, significant = 0;
        for (; i < n; i++)
        {
            uint d = (uint)(s[i] - '0');
            if (d > 9)
                break;
            if (m != 0 || d != 0)
            {
                if (++significant > 19)
                    return false;
                m = m * 10 + d;
            }
        }
        if (i < n && s[i] == (byte)'.')
        {
            for (i++; i < n; i++)
            {
                uint d = (uint)(s[i] - '0');
                if (d > 9)
                    break;
                if (m != 0 || d != 0)
                {
                    if (++significant > 19)
                        return false;
                    m = m * 10 + d;
                }
                exponent--;
            }
        }
        if (i < n && (s[i] == (byte)'e' || s[i] == (byte)'E'))
        {
            i++;
            bool negExp = false;
            if (i < n && (s[i] == (byte)'+' || s[i] == (byte)'-'))
            {
                negExp = s[i] == (byte)'-';
                i++;
            }
            int e = 0;
            for (; i < n; i++)
            {
                uint d = (uint)(s[i] - '0');
                if (d > 9 || e > 10000)
                    return false;
                e = e * 10 + (int)d;
            }
            exponent += negExp ? -e : e;
        }
        if (i != n || m > MaxExactMantissa)
            return false;
        double v;
        if (m == 0)
            v = 0;
        else if (exponent == 0)
            v = m;
        else if (exponent > 0 && exponent <= 22)
            v = m * PowersOfTen[exponent];
        else if (exponent < 0 && exponent >= -22)
            v = m / PowersOfTen[-exponent];
        else
            return false;
        value = negative ? -v : v;
        return true;
    }
}
