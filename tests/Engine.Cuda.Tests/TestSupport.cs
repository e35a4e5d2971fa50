// Small helpers shared by the CUDA tests: a temporary folder that removes itself, the repository root,
// and the seeded random source whose seed every failure message quotes.
namespace Engine.Cuda.Tests;

internal sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"engine-cuda-tests-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Write(string name, string text)
    {
        var file = System.IO.Path.Combine(Path, name);
        File.WriteAllText(file, text);
        return file;
    }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}

internal static class Repository
{
    /// <summary>The checkout root: the first folder above the test assembly that holds Engine.sln.</summary>
    public static string Root
    {
        get
        {
            for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
                if (File.Exists(System.IO.Path.Combine(folder.FullName, "Engine.sln"))) return folder.FullName;
            throw new DirectoryNotFoundException($"No Engine.sln above {AppContext.BaseDirectory}.");
        }
    }
}

/// <summary>A fresh seed per use, so each run draws new inputs; the seed goes into failure messages.</summary>
internal sealed class SeededRandom
{
    public SeededRandom()
    {
        Seed = Random.Shared.Next();
        Random = new Random(Seed);
    }

    public int Seed { get; }
    public Random Random { get; }

    public float Uniform(double low, double high) => (float)(low + (high - low) * Random.NextDouble());

    public float[] Uniform(long count, double low, double high)
    {
        var values = new float[count];
        for (var i = 0; i < values.Length; i++) values[i] = Uniform(low, high);
        return values;
    }
}
