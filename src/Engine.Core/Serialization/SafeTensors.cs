// Writing safetensors files, and reading a whole file into a StateDict. The writer lays tensors out in
// the order given, back to back, after a JSON header padded with spaces to a multiple of 8 bytes (so the
// data section starts 8-byte aligned). Writes are atomic: the bytes go to a temporary file in the target's
// directory, which is flushed to disk (fsync) and then renamed over the target. A crash or an exception at
// any point leaves either the old file or the complete new one, never a truncated checkpoint.
using System.Buffers.Binary;
using System.Text.Json;
using Engine.Nn;

namespace Engine.Serialization;

public static class SafeTensors
{
    /// <summary>Every tensor of <paramref name="path"/> (on <paramref name="device"/>, CPU by default).</summary>
    public static StateDict Load(string path, Device? device = null)
    {
        using var file = SafeTensorsFile.Open(path);
        var dict = new StateDict();
        try
        {
            foreach (var e in file.Entries) dict.Add(e.Name, file.Read(e.Name, device));
        }
        catch
        {
            dict.Dispose();
            throw;
        }
        return dict;
    }

    /// <summary>The "__metadata__" map of <paramref name="path"/> (empty when absent).</summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        return file.Metadata;
    }

    /// <summary>Writes float32, int64, int32 and uint8 tensors (any device, any layout) and optional string metadata
    /// to <paramref name="path"/>, atomically.</summary>
    public static unsafe void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        SafeTensorsDTypes.CheckLittleEndian();
        ArgumentNullException.ThrowIfNull(tensors);
        var items = tensors.ToList();
        var header = BuildHeader(items, metadata);

        var full = System.IO.Path.GetFullPath(path);
        var dir = System.IO.Path.GetDirectoryName(full)!;
        var temp = System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> len = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
                fs.Write(len);
                fs.Write(header);
                foreach (var (name, t) in items) WriteData(fs, t);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); }
            catch (IOException) { /* the original exception matters more; the temp name is unique */ }
            catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    private static byte[] BuildHeader(List<KeyValuePair<string, Tensor>> items, IReadOnlyDictionary<string, string>? metadata)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata)
                {
                    if (v is null) throw new ArgumentException($"SafeTensors.Save: metadata value of '{k}' is null; metadata values are strings.");
                    w.WriteString(k, v);
                }
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, t) in items)
            {
                if (string.IsNullOrEmpty(name) || name == "__metadata__")
                    throw new ArgumentException($"SafeTensors.Save: invalid tensor name '{name}'.");
                if (!names.Add(name)) throw new ArgumentException($"SafeTensors.Save: tensor name '{name}' appears twice.");
                ArgumentNullException.ThrowIfNull(t, name);
                var dtype = SafeTensorsDTypes.FromTensorDType(t.DType, name);
                var bytes = t.Numel * t.DType.ElementSize();
                w.WriteStartObject(name);
                w.WriteString("dtype", dtype);
                w.WriteStartArray("shape");
                foreach (var s in t.Shape) w.WriteNumberValue(s);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += bytes;
            }
            w.WriteEndObject();
        }
        var padded = (ms.Length + 7) / 8 * 8;
        while (ms.Length < padded) ms.WriteByte((byte)' ');
        return ms.ToArray();
    }

    private static unsafe void WriteData(FileStream fs, Tensor t)
    {
        if (t.Numel == 0) return;
        Tensor host;
        using (GradMode.NoGrad())
        using (DisposeScope.Suspend())
            host = t.Device != Device.Cpu ? t.To(Device.Cpu) : t.IsContiguous ? t.Alias() : t.Contiguous();
        using (host)
        {
            var p = (byte*)host.DataPointer;
            var total = host.Numel * host.DType.ElementSize();
            for (long done = 0; done < total;)
            {
                var n = (int)Math.Min(1 << 30, total - done);
                fs.Write(new ReadOnlySpan<byte>(p + done, n));
                done += n;
            }
        }
    }
}
