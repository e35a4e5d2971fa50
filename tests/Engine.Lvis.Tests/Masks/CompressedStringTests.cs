// COCO's compressed "counts" strings: cases worked by hand from the format rule, round trips of random
// counts (big runs, negative deltas, empty runs), and damaged strings.
using Engine.Lvis.Masks;

namespace Engine.Lvis.Tests.Masks;

public class CompressedStringTests
{
    // The rule: for run i, value = run (i <= 2) or run - run[i-2] (i > 2); then repeatedly take g = value & 31,
    // value >>= 5 (arithmetic), and stop when the rest is all sign bits of g (g & 16 ? value == -1 : value == 0);
    // every group but the last gets 32 added; each group is written as the character 48 + g.
    [Theory]
    // 3, 5, 2 are below 16 and positive: one character each, '0'+3, '0'+5, '0'+2.
    [InlineData(new uint[] { 3, 5, 2 }, 10, "352")]
    // Run 3 is 7, written as 7 - 5 = 2 -> '2'.
    [InlineData(new uint[] { 3, 5, 2, 7 }, 17, "3522")]
    // Run 3 is 1, written as 1 - 5 = -4: -4 & 31 = 28, rest -4 >> 5 = -1, and 28 has bit 16 (negative): stop.
    // 48 + 28 = 76 = 'L'.
    [InlineData(new uint[] { 3, 5, 2, 1 }, 11, "352L")]
    // 16: g = 16, rest 0, but bit 16 of g would read as a sign, so go on: 48 + (16 | 32) = 96 = '`', then
    // g = 0, rest 0: '0'.
    [InlineData(new uint[] { 16 }, 16, "`0")]
    // 100 = 3*32 + 4: g = 4, rest 3 -> 48 + (4 | 32) = 84 = 'T'; g = 3, rest 0 -> '3'.
    [InlineData(new uint[] { 100 }, 100, "T3")]
    // 2^20 = 1 << 20: four groups of 0 with more to come (48 + 32 = 80 = 'P'), then g = 1, rest 0 -> '1'.
    [InlineData(new uint[] { 1u << 20 }, 1 << 20, "PPPP1")]
    // Runs 0, 4, 0, 4: values 0, 4, 0, 4 - 4 = 0 -> "0400". A delta of -1 (runs 0, 1, 0, 0 -> last value -1):
    // g = 31, rest -1, sign bit set: stop -> 48 + 31 = 79 = 'O'.
    [InlineData(new uint[] { 0, 4, 0, 4 }, 8, "0400")]
    [InlineData(new uint[] { 1, 1, 0, 0 }, 2, "110O")]
    public void HandWorkedStrings(uint[] counts, int pixels, string expected)
    {
        var rle = new Rle(1, pixels, counts);
        Assert.Equal(expected, MaskApi.ToCompressedString(rle));
        Assert.Equal(rle, MaskApi.FromCompressedString(expected, 1, pixels));
    }

    [Fact]
    public void RandomCounts_RoundTrip()
    {
        var seed = Random.Shared.Next();
        var rng = new Random(seed);
        for (var trial = 0; trial < 2000; trial++)
        {
            var n = rng.Next(1, 40);
            var counts = new uint[n];
            // Mix of scales so that deltas two places apart are large, small, positive and negative.
            var scale = (trial % 4) switch { 0 => 16, 1 => 1 << 10, 2 => 1 << 22, _ => 1 << 26 };
            for (var i = 0; i < n; i++) counts[i] = (uint)rng.Next(i == 0 || rng.Next(8) == 0 ? 0 : 1, scale);
            long total = counts.Sum(c => (long)c);
            if (total > int.MaxValue) continue;
            var rle = new Rle(1, (int)total, counts);
            var text = MaskApi.ToCompressedString(rle);
            Assert.True(text.All(c => c >= 48 && c <= 111), $"seed {seed}: '{text}'");
            var back = MaskApi.FromCompressedString(text, 1, (int)total);
            Assert.True(rle.Equals(back), $"seed {seed}, trial {trial}: {rle} -> '{text}' -> {back}");
        }
    }

    [Fact]
    public void LargestRuns_RoundTrip()
    {
        // A run of 2^31 - 4 needs 7 characters (6 hold values below 2^29), and so does the delta 1 - (2^31 - 4)
        // of the second list, the most negative one a 2^31 - 1 pixel image can have.
        var big = (uint)int.MaxValue - 3;
        uint[] counts = [big, 1, 1, 1];
        var rle = new Rle(1, int.MaxValue, counts);
        Assert.Equal(rle, MaskApi.FromCompressedString(MaskApi.ToCompressedString(rle), 1, int.MaxValue));
        uint[] swung = [1, big, 1, 1];
        var rle2 = new Rle(int.MaxValue, 1, swung);
        Assert.Equal(rle2, MaskApi.FromCompressedString(MaskApi.ToCompressedString(rle2), int.MaxValue, 1));
    }

    [Fact]
    public void EmptyImage_IsTheEmptyStringOrZero()
    {
        Assert.Equal("0", MaskApi.ToCompressedString(MaskApi.Encode([], 0, 0)));
        Assert.Equal(new Rle(0, 3, []), MaskApi.FromCompressedString("", 0, 3));
    }

    [Fact]
    public void DamagedStrings_Throw()
    {
        var e = Assert.Throws<FormatException>(() => MaskApi.FromCompressedString("35 2", 1, 10));
        Assert.Contains("character 2", e.Message);
        e = Assert.Throws<FormatException>(() => MaskApi.FromCompressedString("35p", 1, 10));
        Assert.Contains("'p'", e.Message);
        // 'P' = 48 + 32: a group that says more follow, at the end of the string.
        e = Assert.Throws<FormatException>(() => MaskApi.FromCompressedString("3P", 1, 10));
        Assert.Contains("ends inside count 1", e.Message);
        Assert.Throws<FormatException>(() => MaskApi.FromCompressedString("PPPPPPPP1", 1, 10));
        // 'O' is -1: a first run of -1 pixels.
        e = Assert.Throws<FormatException>(() => MaskApi.FromCompressedString("O", 1, 10));
        Assert.Contains("decodes to -1", e.Message);
        // "352" is 10 pixels, not 12.
        var sum = Assert.Throws<ArgumentException>(() => MaskApi.FromCompressedString("352", 3, 4));
        Assert.Contains("sum to 10", sum.Message);
        Assert.Contains("FromCompressedString", sum.Message);
    }

    [Fact]
    public void UncompressedCounts_KeepTheirRuns()
    {
        var rle = MaskApi.FromUncompressedCounts([2, 0, 0, 3, 1], 2, 3);
        Assert.Equal(new uint[] { 2, 0, 0, 3, 1 }, rle.Counts);
        Assert.Equal(rle, MaskApi.FromCompressedString(MaskApi.ToCompressedString(rle), 2, 3));
        Assert.Contains("count 1 is -2", Assert.Throws<ArgumentException>(() => MaskApi.FromUncompressedCounts([4, -2, 4], 2, 3)).Message);
        Assert.Contains("count 0 is", Assert.Throws<ArgumentException>(() => MaskApi.FromUncompressedCounts([1L << 33], 2, 3)).Message);
        Assert.Contains("sum to 5", Assert.Throws<ArgumentException>(() => MaskApi.FromUncompressedCounts([2, 3], 2, 3)).Message);
    }
}
