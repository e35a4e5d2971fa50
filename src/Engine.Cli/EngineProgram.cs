// Parses the command line into one of the verbs listed in VerbRegistry and runs it. Every verb is
// an options class carrying CommandLineParser's [Verb] attribute and implementing IVerb; a verb's
// expected failures (bad input, missing files) are EngineCliException-style errors printed as one
// clear line, never a stack trace.
using CommandLine;
using Spectre.Console;

namespace Engine.Cli;

/// <summary>A command of the `engine` program. Returns the process exit code.</summary>
public interface IVerb
{
    int Run();
}

public static class EngineProgram
{
    public static int Run(string[] args)
    {
        // Tables keep their width when the output goes to a file or a pipe (CI logs) instead of wrapping at 80 columns.
        if (Console.IsOutputRedirected)
        {
            AnsiConsole.Profile.Width = 160;
            AnsiConsole.Profile.Capabilities.Ansi = false;
        }
        using var parser = CreateParser(Console.Out);
        var result = parser.ParseArguments(args, VerbRegistry.Verbs);
        return result.MapResult(
            (IVerb verb) => RunVerb(verb),
            errors => errors.All(e => e.Tag is ErrorType.HelpRequestedError or ErrorType.HelpVerbRequestedError
                                               or ErrorType.VersionRequestedError) ? 0 : 2);
    }

    /// <summary>The command-line parser of the `engine` program; help and errors go to <paramref name="help"/>.</summary>
    internal static Parser CreateParser(TextWriter? help) => new(s =>
    {
        s.HelpWriter = help;
        s.CaseInsensitiveEnumValues = true;
        s.AutoVersion = true;
        s.AllowMultiInstance = true; // repeatable options such as `train --set A=1 --set B=2`
    });

    private static int RunVerb(IVerb verb)
    {
        try
        {
            return verb.Run();
        }
        catch (Exception e) when (IsUserError(e))
        {
            AnsiConsole.MarkupLineInterpolated($"[red]error:[/] {e.Message}");
            return 1;
        }
    }

    /// <summary>Errors caused by the input or environment rather than a defect in the engine: reported as one
    /// line. Anything else is a bug and keeps its stack trace.</summary>
    private static bool IsUserError(Exception e) =>
        e is ArgumentException or InvalidOperationException or IOException or FormatException
            or UnauthorizedAccessException or DllNotFoundException or NotSupportedException or InvalidDataException
            or System.Text.Json.JsonException;
}
