// COCO's compressed "counts" string (maskApi rleToString / rleFrString): each value is written as
// little-endian groups of 5 bits, one character per group, character = 48 + group, with 0x20 set on
// every group but the last; the value is signed, and the last group's bit 0x10 is its sign (groups
// are written until the rest of the value is all sign bits). From the 4th run on (index > 2) the value
// written is the run minus the run two places earlier, so the 1-runs and 0-runs of a smooth shape
// code as small deltas. Example: runs [3, 5, 2, 1] -> values 3, 5, 2, 1-5 = -4 -> "352L"
// (-4 & 0x1f = 28 -> char 76 'L'; the rest, -1, is all sign bits).
namespace Engine.Lvis.Masks;

internal static class CompressedCounts
{
    // A run delta lies in (-2^32, 2^32); 7 groups (35 bits) hold any of them.
    private const int MaxGroups = 7;

    public static string Write(ReadOnlySpan<uint> counts)
    {
        Span<char> buffer = counts.Length <= 1024 ? stackalloc char[counts.Length * MaxGroups] : new char[counts.Length * MaxGroups];
        var length = 0;
        for (var i = 0; i < counts.Length; i++)
        {
            long value = counts[i];
            if (i > 2) value -= counts[i - 2];
            bool more;
            do
            {
                var group = (int)(value & 0x1f);
                value >>= 5;   // arithmetic shift: a negative value tends to -1
                more = (group & 0x10) != 0 ? value != -1 : value != 0;
                if (more) group |= 0x20;
                buffer[length++] = (char)(48 + group);
            } while (more);
        }
        return new string(buffer[..length]);
    }

    /// <summary>
    /// Decodes a counts string. The C reader computes groups past the 6th with 32-bit int shifts (undefined
    /// behaviour); it is reached only by runs of 2^29 pixels or more, and this reader decodes them as
    /// the writer meant them.
    /// </summary>
    public static uint[] Read(string s)
    {
        // One value ends at every character without the continuation bit (valid characters below 'P' = 48 + 32).
        var values = 0;
        foreach (var c in s)
            if (c < 'P') values++;
        var counts = new uint[values];
        var m = 0;
        var p = 0;
        while (p < s.Length)
        {
            var start = p;
            long value = 0;
            var shift = 0;
            int group;
            do
            {
                if (p == s.Length)
                    throw new FormatException(
                        $"FromCompressedString: the string ends inside count {m} (from character {start}): its last character " +
                        $"'{s[p - 1]}' has the continuation bit 0x20 set.");
                if (shift == 5 * MaxGroups)
                    throw new FormatException(
                        $"FromCompressedString: count {m} (from character {start}) runs past {MaxGroups} characters; no run length needs more.");
                group = s[p] - 48;
                if ((uint)group > 63)
                    throw new FormatException(
                        $"FromCompressedString: character {p} is '{s[p]}' (code {(int)s[p]}); compressed counts use only codes 48..111 ('0'..'o').");
                value |= (long)(group & 0x1f) << shift;
                shift += 5;
                p++;
            } while ((group & 0x20) != 0);
            if ((group & 0x10) != 0) value |= -1L << shift;   // sign-extend from the last group
            if (m > 2) value += counts[m - 2];
            if ((ulong)value > uint.MaxValue)
                throw new FormatException(
                    $"FromCompressedString: count {m} (characters {start}..{p - 1}) decodes to {value}, outside 0..{uint.MaxValue}.");
            counts[m++] = (uint)value;
        }
        return counts;
    }
}
