// Derived seeds: one experiment seed fans out into independent streams (one per generated image, per
// epoch of a sampler, per sample position of the loader) so that work can run on any number of threads
// in any order and still draw the same numbers.
namespace Engine.Data;

public static class Seeds
{
    /// <summary>A seed for stream (<paramref name="stream"/>, <paramref name="index"/>) of <paramref name="seed"/>: two rounds of the
    /// SplitMix64 finalizer over distinct odd multipliers, so neighbouring indices give unrelated seeds.</summary>
    public static ulong Derive(ulong seed, ulong stream, ulong index)
    {
        var z = Mix(seed + 0x9E3779B97F4A7C15UL * (stream + 1));
        return Mix(z ^ (0xD1B54A32D192ED03UL * (index + 1)));
    }

    /// <summary>A generator for stream (<paramref name="stream"/>, <paramref name="index"/>) of <paramref name="seed"/>.</summary>
    public static Generator Generator(ulong seed, ulong stream, ulong index) => new(Derive(seed, stream, index));

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
