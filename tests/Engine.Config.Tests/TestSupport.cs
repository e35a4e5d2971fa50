// Helpers for the config tests: a temporary folder of YAML files that is deleted afterwards, and the
// repository's configs/ folder.
using System.Text;

namespace Engine.Config.Tests;

internal sealed class TempConfigDir : IDisposable
{
    public TempConfigDir()
    {
        Root = Path.Combine(Path.GetTempPath(), "engine-config-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Root);
    }

    public string Root { get; }

    /// <summary>Writes <paramref name="text"/> to <paramref name="relativePath"/> under the folder and returns the full path.</summary>
    public string Write(string relativePath, string text)
    {
        var path = Path.Combine(Root, relativePath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text, new UTF8Encoding(false));
        return path;
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); }
        catch (IOException) { }
    }
}

internal static class Repo
{
    /// <summary>The repository's configs/ folder, found by walking up from the test assembly.</summary>
    public static string ConfigsDir
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "configs");
                if (File.Exists(Path.Combine(candidate, "Base-RCNN-FPN.yaml")) && File.Exists(Path.Combine(dir.FullName, "Engine.sln")))
                    return candidate;
            }
            throw new InvalidOperationException($"configs/ not found above {AppContext.BaseDirectory}.");
        }
    }
}
