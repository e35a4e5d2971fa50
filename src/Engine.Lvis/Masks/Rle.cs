// A binary mask of an H×W image in COCO's run-length encoding: the pixels are read column-major
// (index = x*H + y), and Counts holds the lengths of alternating runs of 0s and 1s, always starting
// with a run of 0s (so Counts[0] is 0 when pixel (0,0) is set). Counts sum to H*W. Encodings made by
// this library never hold an empty run after the first one; counts read from files may, and every
// operation treats them as the COCO mask API does (see MaskApi).
using System.Runtime.InteropServices;

namespace Engine.Lvis.Masks;

public sealed record Rle(int Height, int Width, uint[] Counts)
{
    // Get-only, so that `with` cannot bypass the check in CheckCounts.
    public int Height { get; } = Height;
    public int Width { get; } = Width;

    /// <summary>Run lengths (zeros first). Treated as immutable: no method of this library writes to it.</summary>
    public uint[] Counts { get; } = CheckCounts("Rle", Height, Width, Counts);

    /// <summary>H*W, the number of pixels the runs cover.</summary>
    public int PixelCount => Height * Width;

    /// <summary>Throws unless the counts cover an H×W image exactly; <paramref name="call"/> names the caller in the message.</summary>
    internal static uint[] CheckCounts(string call, int height, int width, uint[] counts)
    {
        ArgumentNullException.ThrowIfNull(counts);
        var pixels = MaskApi.CheckSize(call, height, width);
        ulong sum = 0;
        foreach (var c in counts) sum += c;
        if (sum != (ulong)pixels)
            throw new ArgumentException(
                $"{call}: the {counts.Length} run lengths sum to {sum} but the mask is {height}x{width} = {pixels} pixels; " +
                "COCO runs cover every pixel exactly once (column-major, zeros first), so the counts belong to a mask of another size or are damaged.",
                nameof(counts));
        return counts;
    }

    /// <summary>Value equality: same size and the same run lengths (not the same array).</summary>
    public bool Equals(Rle? other) =>
        other is not null && Height == other.Height && Width == other.Width && Counts.AsSpan().SequenceEqual(other.Counts);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(Height);
        hash.Add(Width);
        hash.AddBytes(MemoryMarshal.AsBytes(Counts.AsSpan()));
        return hash.ToHashCode();
    }

    public override string ToString()
    {
        const int shown = 24;
        var head = string.Join(", ", Counts.Take(shown));
        var tail = Counts.Length > shown ? $", ... ({Counts.Length} runs)" : "";
        return $"Rle {Height}x{Width} [{head}{tail}]";
    }
}
