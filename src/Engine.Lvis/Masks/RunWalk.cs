// Walking two run-length encodings side by side, as COCO's rleMerge and rleIou do: each step consumes
// the shorter of the two current runs, then moves each cursor whose run is used up to its next run
// (one run per step, so an empty run costs a step of its own), and the walk stops as soon as both
// cursors stand on empty runs. On encodings without empty runs after the first that is the end of the
// image; on counts with such runs the walk can stop early, exactly where COCO's stops, and the results
// keep that behaviour.
namespace Engine.Lvis.Masks;

internal static class RunWalk
{
    /// <summary>
    /// Union (or intersection) of two run lists of one image, as one pairwise step of rleMerge. Throws where
    /// both lists have empty runs at one pixel, on which rleMerge stops early and returns runs that do not
    /// cover the image.
    /// </summary>
    public static uint[] Merge(uint[] a, uint[] b, bool intersect)
    {
        ulong covered = 0;
        // Every step but the last moves a cursor, so there are at most a.Length + b.Length steps and as many runs out.
        var output = new uint[a.Length + b.Length];
        var m = 0;
        var ca = new Cursor(a);
        var cb = new Cursor(b);
        var value = false;
        uint pending = 0;
        while (true)
        {
            var step = Math.Min(ca.Left, cb.Left);
            pending += step;
            covered += step;
            ca.Consume(step);
            cb.Consume(step);
            var previous = value;
            value = intersect ? ca.Value && cb.Value : ca.Value || cb.Value;
            var done = ca.Left == 0 && cb.Left == 0;
            if (value != previous || done)
            {
                output[m++] = pending;
                pending = 0;
            }
            if (done) break;
        }
        ulong pixels = 0;
        foreach (var c in a) pixels += c;
        if (covered != pixels)
            throw new ArgumentException(
                $"Merge: both masks have empty runs at pixel {covered}, where COCO's merge stops and returns a mask of " +
                $"{covered} of {pixels} pixels; drop the empty runs first (Encode(Decode(rle))).");
        return output.AsSpan(0, m).ToArray();
    }

    /// <summary>Pixels set in both and in either, counted along the walk as rleIou does.</summary>
    public static (uint Intersection, uint Union) Overlap(uint[] a, uint[] b)
    {
        var ca = new Cursor(a);
        var cb = new Cursor(b);
        uint intersection = 0, union = 0;
        while (true)
        {
            var step = Math.Min(ca.Left, cb.Left);
            if (ca.Value || cb.Value)
            {
                union += step;
                if (ca.Value && cb.Value) intersection += step;
            }
            ca.Consume(step);
            cb.Consume(step);
            if (ca.Left == 0 && cb.Left == 0) return (intersection, union);
        }
    }

    /// <summary>Position in one run list: pixels left in the current run and whether that run is of 1s.</summary>
    private struct Cursor(uint[] counts)
    {
        private int _next = 1;

        public uint Left { get; private set; } = counts.Length > 0 ? counts[0] : 0;
        public bool Value { get; private set; }

        public void Consume(uint pixels)
        {
            Left -= pixels;
            if (Left == 0 && _next < counts.Length)
            {
                Left = counts[_next++];
                Value = !Value;
            }
        }
    }
}
