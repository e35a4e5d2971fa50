// Reader of the safetensors format (huggingface/safetensors, docs "Format"): an 8-byte little-endian
// unsigned header length N, N bytes of UTF-8 JSON {name: {"dtype", "shape", "data_offsets": [begin, end]},
// optional "__metadata__": {string: string}}, then the data section; offsets count from its first byte.
// The file is memory-mapped and each tensor is copied (or converted: F16 and BF16 to float32) straight
// from the mapping into the tensor's storage, one at a time, so a large checkpoint never sits in managed
// arrays. Everything the header claims is validated on Open: header length within the file, well-formed
// JSON (with the byte offset of the error), known dtypes, offsets inside the data section, sizes equal to
// numel × element size, no overlaps, no holes (the spec requires the buffer to be fully indexed), no
// duplicate names.
using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Numerics.Tensors;
using System.Text.Json;

namespace Engine.Serialization;

/// <summary>One tensor as the header describes it: dtype as spelled in the file ("F16"), shape, and byte range in the data section.</summary>
public sealed record SafeTensorsEntry(string Name, string FileDType, int[] Shape, long Begin, long End)
{
    /// <summary>The dtype Read returns (F16/BF16 become float32, BOOL uint8); throws for dtypes the engine cannot hold.</summary>
    public DType TensorDType => SafeTensorsDTypes.ToTensorDType(FileDType, Name);
}

public sealed unsafe class SafeTensorsFile : IDisposable
{
    /// <summary>Headers longer than this are rejected (the reference implementation's limit).</summary>
    public const long MaxHeaderLength = 100_000_000;

    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly Dictionary<string, SafeTensorsEntry> _byName;
    private readonly long _dataStart;
    private byte* _base;

    private SafeTensorsFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, long dataStart,
                            List<SafeTensorsEntry> entries, Dictionary<string, string> metadata)
    {
        Path = path;
        _map = map;
        _view = view;
        _dataStart = dataStart;
        Entries = entries;
        Metadata = metadata;
        _byName = entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + _view.PointerOffset;
    }

    public string Path { get; }

    /// <summary>Tensors in data-section order.</summary>
    public IReadOnlyList<SafeTensorsEntry> Entries { get; }

    public IReadOnlyDictionary<string, string> Metadata { get; }

    public bool Contains(string name) => _byName.ContainsKey(name);

    public SafeTensorsEntry this[string name] => _byName.TryGetValue(name, out var e) ? e
        : throw new KeyNotFoundException($"'{Path}' has no tensor named '{name}' ({Entries.Count} tensors).");

    /// <summary>Opens and validates <paramref name="path"/>; the tensors are read on demand with Read.</summary>
    public static SafeTensorsFile Open(string path)
    {
        SafeTensorsDTypes.CheckLittleEndian();
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var fileLength = fs.Length;
        if (fileLength < 8)
            throw Corrupt(path, $"the file has {fileLength} bytes; a safetensors file starts with an 8-byte header length");
        Span<byte> lengthBytes = stackalloc byte[8];
        fs.ReadExactly(lengthBytes);
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength > (ulong)(fileLength - 8))
            throw Corrupt(path, $"header length {headerLength} exceeds the {fileLength - 8} bytes that follow it (truncated file, or not safetensors)");
        if (headerLength > MaxHeaderLength)
            throw Corrupt(path, $"header length {headerLength} exceeds the limit of {MaxHeaderLength} bytes");
        if (headerLength < 2)
            throw Corrupt(path, $"header length {headerLength} is too short for a JSON object");
        var header = new byte[headerLength];
        fs.ReadExactly(header);
        var dataStart = 8 + (long)headerLength;
        var dataLength = fileLength - dataStart;

        var (entries, metadata) = ParseHeader(path, header, dataLength);
        var map = MemoryMappedFile.CreateFromFile(fs, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
        try
        {
            var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            return new SafeTensorsFile(path, map, view, dataStart, entries, metadata);
        }
        catch
        {
            map.Dispose();
            throw;
        }
    }

    private static (List<SafeTensorsEntry>, Dictionary<string, string>) ParseHeader(string path, byte[] header, long dataLength)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            var offset = HeaderOffset(header, e.LineNumber ?? 0, e.BytePositionInLine ?? 0);
            throw Corrupt(path, $"the header is not valid JSON at header byte {offset} (file byte {8 + offset}): {e.Message}", e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw Corrupt(path, $"the header is a JSON {root.ValueKind}, not an object");
            var entries = new List<SafeTensorsEntry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var prop in root.EnumerateObject())
            {
                if (!names.Add(prop.Name)) throw Corrupt(path, $"the header names '{prop.Name}' twice");
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object) throw Corrupt(path, "__metadata__ is not a JSON object of strings");
                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String) throw Corrupt(path, $"__metadata__ value of '{m.Name}' is a {m.Value.ValueKind}, not a string");
                        if (!metadata.TryAdd(m.Name, m.Value.GetString()!)) throw Corrupt(path, $"__metadata__ names '{m.Name}' twice");
                    }
                    continue;
                }
                entries.Add(ParseEntry(path, prop.Name, prop.Value, dataLength));
            }
            CheckLayout(path, entries, dataLength);
            return (entries, metadata);
        }
    }

    private static SafeTensorsEntry ParseEntry(string path, string name, JsonElement e, long dataLength)
    {
        if (e.ValueKind != JsonValueKind.Object) throw Corrupt(path, $"tensor '{name}': its header entry is a {e.ValueKind}, not an object");
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw Corrupt(path, $"tensor '{name}': missing or non-string \"dtype\"");
        var dtype = dt.GetString()!;
        var elementSize = SafeTensorsDTypes.ElementSize(dtype)
            ?? throw Corrupt(path, $"tensor '{name}': unknown dtype '{dtype}'");
        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw Corrupt(path, $"tensor '{name}': missing or non-array \"shape\"");
        var shape = new int[sh.GetArrayLength()];
        var i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out var s) || s < 0)
                throw Corrupt(path, $"tensor '{name}': shape entry {d} is not a non-negative 32-bit integer");
            shape[i++] = s;
        }
        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw Corrupt(path, $"tensor '{name}': \"data_offsets\" must be an array [begin, end]");
        var begin = off[0];
        var end = off[1];
        if (begin.ValueKind != JsonValueKind.Number || !begin.TryGetInt64(out var b) || b < 0 ||
            end.ValueKind != JsonValueKind.Number || !end.TryGetInt64(out var en) || en < b)
            throw Corrupt(path, $"tensor '{name}': data_offsets {off} must be integers with 0 ≤ begin ≤ end");
        if (en > dataLength)
            throw Corrupt(path, $"tensor '{name}': data_offsets [{b}, {en}] run past the end of the {dataLength}-byte data section (truncated file?)");
        long expected;
        try { expected = checked(ShapeUtil.Numel(shape) * elementSize); }
        catch (OverflowException) { throw Corrupt(path, $"tensor '{name}': shape {ShapeUtil.Format(shape)} is too large"); }
        if (en - b != expected)
            throw Corrupt(path, $"tensor '{name}' ({dtype} {ShapeUtil.Format(shape)}) needs {expected} bytes but data_offsets [{b}, {en}] span {en - b}");
        return new SafeTensorsEntry(name, dtype, shape, b, en);
    }

    /// <summary>Sorts entries by offset and requires them to tile the data section exactly.</summary>
    private static void CheckLayout(string path, List<SafeTensorsEntry> entries, long dataLength)
    {
        entries.Sort((x, y) => x.Begin != y.Begin ? x.Begin.CompareTo(y.Begin) : x.End.CompareTo(y.End));
        long cursor = 0;
        SafeTensorsEntry? previous = null;
        foreach (var e in entries)
        {
            if (e.Begin < cursor)
                throw Corrupt(path, $"tensors '{previous!.Name}' [{previous.Begin}, {previous.End}) and '{e.Name}' [{e.Begin}, {e.End}) overlap");
            if (e.Begin > cursor)
                throw Corrupt(path, $"bytes [{cursor}, {e.Begin}) of the data section belong to no tensor (before '{e.Name}'); the format allows no holes");
            cursor = e.End;
            previous = e;
        }
        if (cursor != dataLength)
            throw Corrupt(path, $"the data section has {dataLength} bytes but the tensors cover only {cursor}; {dataLength - cursor} trailing bytes belong to no tensor");
    }

    private static long HeaderOffset(byte[] header, long line, long positionInLine)
    {
        long offset = 0;
        for (long l = 0; l < line && offset < header.Length; offset++)
            if (header[offset] == (byte)'\n') l++;
        return offset + positionInLine;
    }

    /// <summary>Copies tensor <paramref name="name"/> into a new tensor (F16/BF16 converted to float32), on <paramref name="device"/> (CPU by default).</summary>
    public Tensor Read(string name, Device? device = null)
    {
        ObjectDisposedException.ThrowIf(_base == null, this);
        var e = this[name];
        var dtype = e.TensorDType;
        var src = _base + _dataStart + e.Begin;
        var count = ShapeUtil.Numel(e.Shape);
        var t = Tensor.Empty(e.Shape, dtype);
        try
        {
            var dst = (byte*)t.DataPointer;
            switch (e.FileDType)
            {
                case "F16":
                    for (long i = 0; i < count; i += Chunk)
                    {
                        var n = (int)Math.Min(Chunk, count - i);
                        TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>((Half*)src + i, n), new Span<float>((float*)dst + i, n));
                    }
                    break;
                case "BF16":
                    // bfloat16 is the upper half of a float32: widening is exact (NaN payloads included).
                    for (long i = 0; i < count; i++)
                        ((uint*)dst)[i] = (uint)BinaryPrimitives.ReadUInt16LittleEndian(new ReadOnlySpan<byte>(src + 2 * i, 2)) << 16;
                    break;
                default:
                    var bytes = e.End - e.Begin;
                    Buffer.MemoryCopy(src, dst, bytes, bytes);
                    break;
            }
            if (device is null || device.Value == Device.Cpu) return t;
            using (t) return t.To(device.Value);
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    private const int Chunk = 1 << 20;

    public void Dispose()
    {
        if (_base == null) return;
        _base = null;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }

    private static InvalidDataException Corrupt(string path, string what, Exception? inner = null) =>
        new($"safetensors '{path}': {what}.", inner);
}

/// <summary>The format's dtype names, their sizes, and which of them the engine reads.</summary>
internal static class SafeTensorsDTypes
{
    public static int? ElementSize(string dtype) => dtype switch
    {
        "F64" or "I64" or "U64" => 8,
        "F32" or "I32" or "U32" => 4,
        "F16" or "BF16" or "I16" or "U16" => 2,
        "I8" or "U8" or "BOOL" or "F8_E4M3" or "F8_E5M2" => 1,
        _ => null,
    };

    public static DType ToTensorDType(string dtype, string tensor) => dtype switch
    {
        "F32" or "F16" or "BF16" => DType.Float32,
        "I64" => DType.Int64,
        "I32" => DType.Int32,
        "U8" or "BOOL" => DType.UInt8,
        _ => throw new NotSupportedException(
            $"safetensors: tensor '{tensor}' has dtype {dtype}, which is not supported; supported: F32, F16, BF16 (read as float32), I64, I32, U8, BOOL (read as uint8). Convert the checkpoint."),
    };

    public static string FromTensorDType(DType dtype, string tensor) => dtype switch
    {
        DType.Float32 => "F32",
        DType.Int64 => "I64",
        DType.Int32 => "I32",
        DType.UInt8 => "U8",
        _ => throw new NotSupportedException($"safetensors: tensor '{tensor}' has dtype {dtype.Name()}; the writer supports float32, int64, int32 and uint8."),
    };

    public static void CheckLittleEndian()
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("safetensors stores little-endian data; this reader and writer run on little-endian machines only.");
    }
}
