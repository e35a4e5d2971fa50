// The on-disk CUBIN cache: one file per (source with headers, options, NVRTC version, architecture),
// named by the SHA-256 of all of them. A file holds an 8-byte tag, the SHA-256 of the image and the
// image, so a truncated or damaged file is detected and recompiled instead of handed to the driver.
// Files are written to a temporary name and renamed, so a reader never sees a half-written entry,
// and processes compiling the same kernel at once simply replace each other's identical result.
using System.Security.Cryptography;
using System.Text;

namespace Engine.Cuda.Compilation;

public enum KernelCacheOutcome
{
    /// <summary>No entry existed; the kernel was compiled and stored.</summary>
    Miss,
    /// <summary>A valid entry was read; NVRTC did not run.</summary>
    Hit,
    /// <summary>An entry existed but failed its integrity check; the kernel was compiled and the entry replaced.</summary>
    Corrupt,
}

internal sealed class KernelCache(string directory)
{
    private static ReadOnlySpan<byte> Tag => "ENGCUBIN"u8;
    private const int HashBytes = 32;

    public string Directory { get; } = Path.GetFullPath(directory);

    /// <summary>$ENGINE_KERNEL_CACHE, else ~/.cache/engine/kernels.</summary>
    public static string DefaultDirectory()
    {
        var configured = Environment.GetEnvironmentVariable("ENGINE_KERNEL_CACHE");
        if (!string.IsNullOrEmpty(configured)) return configured;
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return Path.Combine(home, ".cache", "engine", "kernels");
    }

    /// <summary>SHA-256 over every input that changes the binary, in a fixed textual framing (each part with
    /// its length, so no two different inputs share a framing). Whether warnings were allowed is part of it:
    /// an entry stored while warnings were allowed must not satisfy a compilation that forbids them.</summary>
    public static string Key(KernelSource source, IReadOnlyList<string> options, string nvrtcVersion, GpuArchitecture architecture,
                             bool warningsAsErrors)
    {
        var text = new StringBuilder();
        void Part(string label, string value) => text.Append(label).Append(' ').Append(value.Length).Append('\n').Append(value).Append('\n');
        Part("format", "engine-kernel-cache/1");
        Part("nvrtc", nvrtcVersion);
        Part("arch", architecture.RealName);
        foreach (var option in options) Part("option", option);
        Part("warnings", warningsAsErrors ? "error" : "allowed");
        Part("file", source.FileName);
        Part("source", source.Text);
        foreach (var header in source.Headers)
        {
            Part("header", header.Name);
            Part("text", header.Text);
        }
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    public string PathFor(KernelSource source, GpuArchitecture architecture, string key) =>
        Path.Combine(Directory, $"{Path.GetFileNameWithoutExtension(source.FileName)}-{architecture.RealName}-{key}.cubin");

    /// <summary>Reads an entry: Hit with the image, Miss when absent, Corrupt when damaged.</summary>
    public KernelCacheOutcome TryRead(string path, out byte[] image)
    {
        image = [];
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (FileNotFoundException) { return KernelCacheOutcome.Miss; }
        catch (DirectoryNotFoundException) { return KernelCacheOutcome.Miss; }

        var headerLength = Tag.Length + HashBytes;
        if (bytes.Length <= headerLength || !bytes.AsSpan(0, Tag.Length).SequenceEqual(Tag)) return KernelCacheOutcome.Corrupt;
        var payload = bytes.AsSpan(headerLength);
        if (!SHA256.HashData(payload).AsSpan().SequenceEqual(bytes.AsSpan(Tag.Length, HashBytes))) return KernelCacheOutcome.Corrupt;
        if (!ElfImage.HasElfMagic(payload)) return KernelCacheOutcome.Corrupt;
        image = payload.ToArray();
        return KernelCacheOutcome.Hit;
    }

    public void Write(string path, byte[] image)
    {
        try
        {
            System.IO.Directory.CreateDirectory(Directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException(
                $"KernelCache: cannot create the kernel cache folder {Directory} ({e.Message}). " +
                "Set ENGINE_KERNEL_CACHE to a writable folder.", e);
        }
        var temporary = Path.Combine(Directory, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write))
            {
                stream.Write(Tag);
                stream.Write(SHA256.HashData(image));
                stream.Write(image);
            }
            File.Move(temporary, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            File.Delete(temporary);
            throw new IOException(
                $"KernelCache: cannot write {path} ({e.Message}). Set ENGINE_KERNEL_CACHE to a writable folder.", e);
        }
    }
}

internal static class ElfImage
{
    /// <summary>CUBIN files are ELF objects: 0x7F 'E' 'L' 'F'.</summary>
    public static bool HasElfMagic(ReadOnlySpan<byte> image) => image is [0x7F, (byte)'E', (byte)'L', (byte)'F', ..];
}
