// A kernel source file with every header it includes by a quoted #include, read from disk once.
// The headers are handed to NVRTC by name (nvrtcCreateProgram's headers/includeNames), so what is
// compiled is exactly what is hashed for the cache, and NVRTC's diagnostics keep each header's own
// file name and line numbers. Angle-bracket includes are left to NVRTC: kernels use none, since no
// toolkit headers exist where only NVRTC is installed.
using System.Text.RegularExpressions;

namespace Engine.Cuda.Compilation;

public sealed partial class KernelSource
{
    private KernelSource(string path, string text, IReadOnlyList<KernelHeader> headers)
    {
        Path = path;
        Text = text;
        Headers = headers;
    }

    /// <summary>Full path of the .cu file.</summary>
    public string Path { get; }

    /// <summary>File name, the program name NVRTC reports diagnostics under.</summary>
    public string FileName => System.IO.Path.GetFileName(Path);

    public string Text { get; }

    /// <summary>Headers reachable through quoted includes, in first-inclusion order, each once.</summary>
    public IReadOnlyList<KernelHeader> Headers { get; }

    public static KernelSource Load(string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full))
            throw new FileNotFoundException($"KernelSource: kernel source '{full}' does not exist.", full);
        var text = File.ReadAllText(full);
        var headers = new List<KernelHeader>();
        CollectIncludes(full, text, headers);
        return new KernelSource(full, text, headers);
    }

    private static void CollectIncludes(string includingFile, string text, List<KernelHeader> headers)
    {
        var folder = System.IO.Path.GetDirectoryName(includingFile)!;
        foreach (Match match in QuotedInclude().Matches(text))
        {
            var name = match.Groups["name"].Value;
            var path = System.IO.Path.GetFullPath(System.IO.Path.Combine(folder, name));
            var known = headers.Find(h => h.Name == name);
            if (known is not null)
            {
                if (known.Path != path)
                    throw new InvalidDataException(
                        $"KernelSource: #include \"{name}\" in {includingFile} names {path}, but the same include name " +
                        $"already means {known.Path}; NVRTC resolves headers by name, so give the files distinct names.");
                continue;
            }
            if (!File.Exists(path))
                throw new FileNotFoundException(
                    $"KernelSource: {includingFile} includes \"{name}\", which does not exist at {path}. Quoted includes " +
                    "are resolved relative to the including file.", path);
            var header = new KernelHeader(name, path, File.ReadAllText(path));
            headers.Add(header);
            CollectIncludes(path, header.Text, headers);
        }
    }

    [GeneratedRegex("""^[ \t]*#[ \t]*include[ \t]*"(?<name>[^"]+)"[ \t]*(?://.*)?\r?$""", RegexOptions.Multiline)]
    private static partial Regex QuotedInclude();
}

/// <param name="Name">the name as written in the #include directive</param>
public sealed record KernelHeader(string Name, string Path, string Text);
