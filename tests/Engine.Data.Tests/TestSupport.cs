// Shared helpers for the data tests: fresh seeds (printed in failure messages; ENGINE_TEST_SEED replays
// one), temporary folders that delete themselves, random smooth images, and one tiny synthetic dataset
// (52 images of 64×64, 6 classes) generated once per test run.
using Engine.Data.Imaging;
using Engine.Data.Synthetic;

namespace Engine.Data.Tests;

public static class TestSupport
{
    public static Generator Fresh(out ulong seed)
    {
        var fixedSeed = Environment.GetEnvironmentVariable("ENGINE_TEST_SEED");
        seed = fixedSeed is not null ? ulong.Parse(fixedSeed) : (ulong)Random.Shared.NextInt64();
        return new Generator(seed);
    }

    /// <summary>A smooth random colour image (a few random gradients and blobs), the kind JPEG keeps well.</summary>
    public static Image SmoothImage(Generator g, int width, int height, int channels = 3)
    {
        var data = new byte[width * height * channels];
        var coeffs = new double[channels, 5];
        for (var c = 0; c < channels; c++)
            for (var k = 0; k < 5; k++) coeffs[c, k] = g.NextDouble();
        for (var y = 0; y < height; y++)
            for (var x = 0; x < width; x++)
                for (var c = 0; c < channels; c++)
                {
                    var u = (double)x / width;
                    var v = (double)y / height;
                    var value = 40 + 170 * (0.4 * coeffs[c, 0] * u + 0.4 * coeffs[c, 1] * v
                                            + 0.2 * (0.5 + 0.5 * Math.Sin(6 * coeffs[c, 2] * u + 5 * coeffs[c, 3] * v + 6 * coeffs[c, 4])));
                    data[(y * width + x) * channels + c] = (byte)Math.Clamp(Math.Round(value), 0, 255);
                }
        return new Image(width, height, channels, data);
    }

    /// <summary>An image of uniformly random bytes.</summary>
    public static Image NoiseImage(Generator g, int width, int height, int channels = 3)
    {
        var data = new byte[width * height * channels];
        for (var i = 0; i < data.Length; i++) data[i] = (byte)g.NextInt64(256);
        return new Image(width, height, channels, data);
    }

    private static readonly Lazy<SyntheticDataset> Tiny = new(() => SyntheticDataset.Generate(TinyOptions(new TempFolder().Path)));

    /// <summary>The shared tiny dataset (generated on first use; read-only for tests).</summary>
    public static SyntheticDataset TinyDataset => Tiny.Value;

    public static SyntheticOptions TinyOptions(string folder, ulong seed = 7, int? threads = null) => new()
    {
        OutputDirectory = folder,
        Classes = 6,
        TrainImages = 40,
        ValImages = 12,
        ImageSize = 64,
        Seed = seed,
        Threads = threads,
        NotExhaustiveProbability = 0.5,
    };
}

/// <summary>A fresh folder under the system temp folder, deleted on Dispose (or at process exit if never disposed).</summary>
public sealed class TempFolder : IDisposable
{
    private const string Prefix = "engine-data-tests-";

    // The test host may be stopped before ProcessExit handlers finish; folders of earlier runs older than an hour
    // (no run lasts that long) are removed when the first folder of a run is made.
    static TempFolder()
    {
        try
        {
            foreach (var dir in Directory.EnumerateDirectories(System.IO.Path.GetTempPath(), Prefix + "*"))
                if (DateTime.UtcNow - Directory.GetLastWriteTimeUtc(dir) > TimeSpan.FromHours(1))
                    Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"{Prefix}{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Dispose();
    }

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            if (Directory.Exists(Path)) Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A file still open elsewhere: the folder is under the temp folder and harmless.
        }
    }
}
