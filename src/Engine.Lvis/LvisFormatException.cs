// The error every reader of the format library throws for input it cannot accept: malformed JSON
// (with the line and column where parsing stopped) or well-formed JSON that is not a valid LVIS/COCO
// file (with the byte offset of the offending value). Derives from FormatException so command-line
// drivers report it as one line.
namespace Engine.Lvis;

public sealed class LvisFormatException : FormatException
{
    public LvisFormatException(string message, Exception? inner = null) : base(message, inner) { }

    /// <summary>1-based line of a JSON syntax error, when the error is one.</summary>
    public long? Line { get; init; }

    /// <summary>1-based byte column in <see cref="Line"/> of a JSON syntax error.</summary>
    public long? Column { get; init; }

    /// <summary>0-based byte offset in the file of the value that was rejected, for content errors.</summary>
    public long? ByteOffset { get; init; }
}
