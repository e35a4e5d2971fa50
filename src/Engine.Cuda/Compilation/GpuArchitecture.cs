// A GPU architecture as a compute capability (8.0, 9.0, ...), with the names NVRTC and the CUDA
// documentation use for it: compute_80 for the virtual architecture (PTX), sm_80 for the real one
// (CUBIN, what the engine compiles to).
using System.Globalization;
using System.Text.RegularExpressions;

namespace Engine.Cuda.Compilation;

public readonly partial record struct GpuArchitecture
{
    public GpuArchitecture(int major, int minor)
    {
        if (major is < 1 or > 99 || minor is < 0 or > 9)
            throw new ArgumentOutOfRangeException(nameof(major),
                $"GpuArchitecture: compute capability {major}.{minor} is not valid; expected major 1..99 and minor 0..9 (e.g. 8.0, 9.0).");
        Major = major;
        Minor = minor;
    }

    public int Major { get; }
    public int Minor { get; }

    /// <summary>The number NVRTC lists in nvrtcGetSupportedArchs, e.g. 80.</summary>
    public int Number => Major * 10 + Minor;

    public string RealName => $"sm_{Number}";
    public string VirtualName => $"compute_{Number}";

    public static GpuArchitecture Sm80 => new(8, 0);
    public static GpuArchitecture Sm90 => new(9, 0);

    /// <summary>Parses "sm_80", "compute_80", "80" or "8.0".</summary>
    public static GpuArchitecture Parse(string text)
    {
        var match = ArchPattern().Match(text.Trim());
        if (!match.Success)
            throw new FormatException($"GpuArchitecture.Parse: '{text}' is not an architecture; write sm_80, compute_80, 80 or 8.0.");
        if (match.Groups["major"].Success)
            return new GpuArchitecture(int.Parse(match.Groups["major"].Value, CultureInfo.InvariantCulture),
                                       int.Parse(match.Groups["minor"].Value, CultureInfo.InvariantCulture));
        var number = int.Parse(match.Groups["number"].Value, CultureInfo.InvariantCulture);
        return new GpuArchitecture(number / 10, number % 10);
    }

    public override string ToString() => RealName;

    [GeneratedRegex(@"^(?:(?:sm_|compute_)?(?<number>[1-9][0-9]{1,2})|(?<major>[1-9][0-9]?)\.(?<minor>[0-9]))$")]
    private static partial Regex ArchPattern();
}
