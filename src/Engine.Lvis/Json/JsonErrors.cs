// Turns System.Text.Json syntax errors into LvisFormatException with the file name and a 1-based line
// and column, and a hint for the common case of NaN/Infinity literals written by Python's json module.
using System.Text.Json;

namespace Engine.Lvis.Json;

internal static class JsonErrors
{
    public static LvisFormatException Malformed(string source, JsonException e)
    {
        string detail = e.Message;
        int cut = detail.IndexOf(" LineNumber:", StringComparison.Ordinal);
        if (cut >= 0)
            detail = detail[..cut];
        long line = (e.LineNumber ?? 0) + 1;
        long column = (e.BytePositionInLine ?? 0) + 1;
        string hint = detail.StartsWith("'N'", StringComparison.Ordinal) || detail.StartsWith("'I'", StringComparison.Ordinal)
            ? " (NaN and Infinity are not JSON numbers: the writer produced a non-finite value)"
            : "";
        return new LvisFormatException($"{source}: malformed JSON at line {line}, byte {column} of the line: {detail}{hint}", e)
        {
            Line = line,
            Column = column,
        };
    }
}
