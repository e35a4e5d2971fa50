// Whole-file writes that never leave a half-written file under the final name: the bytes go to a
// temporary file in the same folder, are flushed to disk, and the temporary is renamed over the target
// (a rename within one file system is atomic). A failure at any point leaves the previous file as it was.
using System.Text;

namespace Engine.Training;

public static class AtomicFile
{
    public static void WriteAllText(string path, string text) => WriteAllBytes(path, Encoding.UTF8.GetBytes(text));

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                fs.Write(bytes);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e)
        {
            TryDelete(temp);
            throw new IOException($"AtomicFile: writing '{full}' failed ({e.Message}); the previous file, if any, is unchanged.", e);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            if (File.Exists(path)) File.Delete(path);
        }
        catch (IOException)
        {
            // The temporary keeps a dot-prefixed name; leaving it behind is harmless.
        }
    }
}
