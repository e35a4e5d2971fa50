// A Utf8JsonReader that refills itself from a JsonByteSource, plus the typed reads the LVIS readers
// need (numbers, integer ids, strings, number arrays) with errors that name the field and the byte
// offset. Containers are skipped token by token when they do not fit in the window, so skipping the
// 1 GB "annotations" array of a file never loads it whole.
using System.Text.Json;

namespace Engine.Lvis.Json;

internal ref struct JsonCursor
{
    private readonly JsonByteSource _source;
    private Utf8JsonReader _reader;

    public JsonCursor(JsonByteSource source)
    {
        _source = source;
        _source.Fill();
        _reader = new Utf8JsonReader(_source.Pending, _source.Eof, new JsonReaderState(new JsonReaderOptions { MaxDepth = 64 }));
    }

    public readonly JsonTokenType TokenType => _reader.TokenType;

    public readonly string SourceName => _source.SourceName;

    /// <summary>True when the stream holds no byte at all (Utf8JsonReader would call that malformed).</summary>
    public readonly bool IsEmptyDocument => _source.Eof && _source.Pending.IsEmpty && _source.PendingOffset == 0;

    /// <summary>A content error about the value that started at <paramref name="offset"/>.</summary>
    public readonly LvisFormatException ErrorAt(long offset, string message) =>
        new($"{_source.SourceName}: {message} (at byte {offset})") { ByteOffset = offset };

    /// <summary>Absolute byte offset of the current token in the stream.</summary>
    public readonly long Position => _source.PendingOffset + _reader.TokenStartIndex;

    public readonly int CurrentDepth => _reader.CurrentDepth;

    /// <summary>Advances to the next token; false at the end of the document.</summary>
    public bool Read()
    {
        while (!_reader.Read())
        {
            if (_source.Eof)
                return false;
            Refill();
        }
        return true;
    }

    private void Refill()
    {
        _source.Advance((int)_reader.BytesConsumed);
        var state = _reader.CurrentState;
        _source.Fill();
        _reader = new Utf8JsonReader(_source.Pending, _source.Eof, state);
    }

    /// <summary>Reads the next token and requires it to exist.</summary>
    public void ReadRequired(string context)
    {
        if (!Read())
            throw Error($"the file ends inside {context}");
    }

    public readonly LvisFormatException Error(string message) =>
        new($"{_source.SourceName}: {message} (at byte {Position})") { ByteOffset = Position };

    public readonly bool NameIs(ReadOnlySpan<byte> utf8Name) => _reader.ValueTextEquals(utf8Name);

    public readonly string CurrentName() => _reader.GetString() ?? "";

    /// <summary>Positioned on a property name: skips its value. Positioned on the start of a container:
    /// skips to its end. Whole values already in the window are skipped in one step.</summary>
    public void SkipValue()
    {
        if (_reader.TrySkip())
            return;
        if (_reader.TokenType == JsonTokenType.PropertyName)
            ReadRequired("a value");
        if (_reader.TokenType is not (JsonTokenType.StartObject or JsonTokenType.StartArray))
            return;
        int depth = _reader.CurrentDepth;
        while (true)
        {
            ReadRequired("a skipped value");
            if (_reader.TokenType is JsonTokenType.EndObject or JsonTokenType.EndArray && _reader.CurrentDepth == depth)
                return;
        }
    }

    public readonly void Expect(JsonTokenType type, string what)
    {
        if (_reader.TokenType != type)
            throw Error($"expected {Describe(type)} for {what}, found {Describe(_reader.TokenType)}");
    }

    public double ReadDouble(string what)
    {
        ReadRequired(what);
        return CurrentDouble(what);
    }

    public readonly double CurrentDouble(string what)
    {
        if (_reader.TokenType != JsonTokenType.Number)
            throw Error($"expected a number for {what}, found {Describe(_reader.TokenType)}");
        if (!_reader.ValueIsEscaped && FastDouble.TryParse(_reader.ValueSpan, out double v))
            return v;
        if (!_reader.TryGetDouble(out v) || !double.IsFinite(v))
            throw Error($"{what} is not a finite double");
        return v;
    }

    public long ReadInt64(string what)
    {
        ReadRequired(what);
        return CurrentInt64(what);
    }

    /// <summary>An integer id. A number written as a float with an integral value (123.0) is accepted, as
    /// Python's json module and dict lookups treat it as the same key.</summary>
    public readonly long CurrentInt64(string what)
    {
        if (_reader.TokenType != JsonTokenType.Number)
            throw Error($"expected an integer for {what}, found {Describe(_reader.TokenType)}");
        if (_reader.TryGetInt64(out long v))
            return v;
        if (_reader.TryGetDouble(out double d) && d == Math.Floor(d) && Math.Abs(d) < 9.0e15)
            return (long)d;
        throw Error($"{what} is not an integer");
    }

    public int ReadInt32(string what)
    {
        long v = ReadInt64(what);
        if (v is < int.MinValue or > int.MaxValue)
            throw Error($"{what} = {v} does not fit in 32 bits");
        return (int)v;
    }

    /// <summary>true/false, or the 0/1 integers COCO files use for flags such as iscrowd.</summary>
    public bool ReadFlag(string what)
    {
        ReadRequired(what);
        return _reader.TokenType switch
        {
            JsonTokenType.True => true,
            JsonTokenType.False or JsonTokenType.Null => false,
            JsonTokenType.Number => CurrentDouble(what) != 0,
            _ => throw Error($"expected true/false or 0/1 for {what}, found {Describe(_reader.TokenType)}"),
        };
    }

    public string? ReadStringOrNull(string what)
    {
        ReadRequired(what);
        return _reader.TokenType switch
        {
            JsonTokenType.String => _reader.GetString(),
            JsonTokenType.Null => null,
            _ => throw Error($"expected a string for {what}, found {Describe(_reader.TokenType)}"),
        };
    }

    public readonly string CurrentString() => _reader.GetString() ?? "";

    /// <summary>Reads an array of numbers into <paramref name="into"/> (cleared first). Null counts as empty.</summary>
    public void ReadDoubleArray(List<double> into, string what)
    {
        into.Clear();
        ReadRequired(what);
        if (_reader.TokenType == JsonTokenType.Null)
            return;
        Expect(JsonTokenType.StartArray, what);
        while (true)
        {
            ReadRequired(what);
            if (_reader.TokenType == JsonTokenType.EndArray)
                return;
            into.Add(CurrentDouble(what));
        }
    }

    /// <summary>Reads an array of integers; null when the JSON value is null.</summary>
    public int[]? ReadInt32ArrayOrNull(string what)
    {
        ReadRequired(what);
        if (_reader.TokenType == JsonTokenType.Null)
            return null;
        Expect(JsonTokenType.StartArray, what);
        var list = new List<int>();
        while (true)
        {
            ReadRequired(what);
            if (_reader.TokenType == JsonTokenType.EndArray)
                return [.. list];
            long v = CurrentInt64(what);
            if (v is < int.MinValue or > int.MaxValue)
                throw Error($"{what} holds {v}, which does not fit in 32 bits");
            list.Add((int)v);
        }
    }

    public static string Describe(JsonTokenType t) => t switch
    {
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "an array",
        JsonTokenType.EndObject => "the end of an object",
        JsonTokenType.EndArray => "the end of an array",
        JsonTokenType.PropertyName => "a property name",
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        _ => t.ToString(),
    };
}
