// A pooled, growable byte window over a stream for incremental Utf8JsonReader parsing: the reader
// consumes complete tokens from the window, the source shifts the unconsumed tail to the front and
// appends more bytes. The window only grows when a single token (a long RLE string, say) does not
// fit, so memory stays bounded by the largest token, not the file (LVIS v1 train is ~1 GB).
using System.Buffers;

namespace Engine.Lvis.Json;

internal sealed class JsonByteSource : IDisposable
{
    public const int DefaultSize = 1 << 20;

    private readonly Stream _stream;
    private readonly IProgress<long>? _progress;
    private byte[] _buffer;
    private int _start;   // first unconsumed byte
    private int _end;     // one past the last byte read
    private long _totalRead;

    /// <param name="prefix">Bytes read before the stream's (a "[" lets a reader start in the middle of an array).</param>
    /// <param name="startOffset">Stream offset reported for the first byte of <paramref name="prefix"/> + stream.</param>
    public JsonByteSource(Stream stream, string sourceName, IProgress<long>? progress = null, int initialSize = DefaultSize,
                          ReadOnlySpan<byte> prefix = default, long startOffset = 0)
    {
        _stream = stream;
        PendingOffset = startOffset;
        SourceName = sourceName;
        _progress = progress;
        _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(16 + prefix.Length, initialSize));
        prefix.CopyTo(_buffer);
        _end = prefix.Length;
    }

    /// <summary>Name used in error messages (the file path, usually).</summary>
    public string SourceName { get; }

    /// <summary>True once the stream has returned all its bytes.</summary>
    public bool Eof { get; private set; }

    /// <summary>Absolute stream offset of the first byte of <see cref="Pending"/>.</summary>
    public long PendingOffset { get; private set; }

    public ReadOnlySpan<byte> Pending => _buffer.AsSpan(_start, _end - _start);

    /// <summary>Marks the first <paramref name="count"/> pending bytes as consumed.</summary>
    public void Advance(int count)
    {
        _start += count;
        PendingOffset += count;
    }

    /// <summary>Reads at least one more byte into the window unless the stream is exhausted.</summary>
    public void Fill()
    {
        int pending = _end - _start;
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, pending);
            _start = 0;
            _end = pending;
        }
        if (_end == _buffer.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(_buffer.Length * 2);
            Buffer.BlockCopy(_buffer, 0, bigger, 0, _end);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }
        while (_end < _buffer.Length && !Eof)
        {
            int n = _stream.Read(_buffer, _end, _buffer.Length - _end);
            if (n == 0)
            {
                Eof = true;
                break;
            }
            _end += n;
            _totalRead += n;
            if (n > 0 && _end - _start > pending)
                break;
        }
        _progress?.Report(_totalRead);
    }

    public void Dispose()
    {
        if (_buffer.Length > 0)
            ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
    }
}
