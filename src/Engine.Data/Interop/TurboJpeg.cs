// Bindings to the TurboJPEG API of libjpeg-turbo (libturbojpeg.so.0, turbojpeg.h, API version 2.x).
// Functions keep their C names. `unsigned long` is CULong (64-bit on Linux); a tjhandle is owned by
// TurboJpegHandle. Every call that returns a status goes through Check, which turns -1 into a
// TurboJpegException carrying the call, libturbojpeg's own message (tjGetErrorStr2) and whether the
// library classed it as a warning or a fatal error (tjGetErrorCode).
using System.Reflection;
using System.Runtime.InteropServices;
using Engine.Native;

namespace Engine.Data.Interop;

/// <summary>TJPF: pixel formats of uncompressed images.</summary>
internal enum TJPF
{
    TJPF_RGB = 0,
    TJPF_BGR = 1,
    TJPF_GRAY = 6,
    TJPF_CMYK = 11,
}

/// <summary>TJSAMP: chrominance subsampling of the JPEG image.</summary>
internal enum TJSAMP
{
    TJSAMP_444 = 0,
    TJSAMP_422 = 1,
    TJSAMP_420 = 2,
    TJSAMP_GRAY = 3,
    TJSAMP_440 = 4,
    TJSAMP_411 = 5,
}

/// <summary>TJCS: colour space of the JPEG image.</summary>
internal enum TJCS
{
    TJCS_RGB = 0,
    TJCS_YCbCr = 1,
    TJCS_GRAY = 2,
    TJCS_CMYK = 3,
    TJCS_YCCK = 4,
}

/// <summary>TJERR: how severe the last error was.</summary>
internal enum TJERR
{
    TJERR_WARNING = 0,
    TJERR_FATAL = 1,
}

internal static unsafe partial class TurboJpeg
{
    public const string Library = "turbojpeg";

    /// <summary>TJFLAG_ACCURATEDCT: the slow, exact integer DCT (bit-identical output on every CPU).</summary>
    public const int TJFLAG_ACCURATEDCT = 4096;

    /// <summary>TJFLAG_STOPONWARNING: treat warnings (e.g. a truncated scan) as errors.</summary>
    public const int TJFLAG_STOPONWARNING = 8192;

    static TurboJpeg() => EnsureResolver();

    private static readonly Lock Gate = new();
    private static bool _registered;

    /// <summary>Routes the name "turbojpeg" of this assembly's imports to the project's library resolver.</summary>
    public static void EnsureResolver()
    {
        lock (Gate)
        {
            if (_registered) return;
            NativeLibrary.SetDllImportResolver(typeof(TurboJpeg).Assembly, Resolve);
            _registered = true;
        }
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (name != Library) return IntPtr.Zero;
        if (LibraryResolver.TryLoad(Library, out var handle, out var searched)) return handle;
        // Without the -dev package only the versioned run-time name exists.
        if (NativeLibrary.TryLoad("libturbojpeg.so.0", out handle)) return handle;
        throw new DllNotFoundException(
            $"libturbojpeg (libturbojpeg.so.0) was not found (searched: {string.Join(", ", searched)}, loader path libturbojpeg.so.0). " +
            "Install it (Debian: apt-get install libturbojpeg0; scripts/setup.sh does this), or set " +
            "ENGINE_LIB_TURBOJPEG=/full/path/libturbojpeg.so.0 or ENGINE_LIBRARY_PATH=/its/folder.");
    }

    /// <summary>Throws unless <paramref name="status"/> is 0; <paramref name="context"/> names the file or buffer.</summary>
    public static void Check(int status, TurboJpegHandle handle, string call, string context)
    {
        if (status == 0) return;
        var raw = handle.DangerousGetHandle();
        var message = Marshal.PtrToStringUTF8(tjGetErrorStr2(raw)) ?? "(no message)";
        var severity = (TJERR)tjGetErrorCode(raw);
        throw new TurboJpegException(call, message, severity == TJERR.TJERR_WARNING, context);
    }

    [LibraryImport(Library)]
    public static partial nint tjInitDecompress();

    [LibraryImport(Library)]
    public static partial nint tjInitCompress();

    [LibraryImport(Library)]
    public static partial int tjDestroy(nint handle);

    [LibraryImport(Library)]
    public static partial int tjDecompressHeader3(nint handle, byte* jpegBuf, CULong jpegSize, out int width, out int height,
                                                  out int jpegSubsamp, out int jpegColorspace);

    [LibraryImport(Library)]
    public static partial int tjDecompress2(nint handle, byte* jpegBuf, CULong jpegSize, byte* dstBuf, int width, int pitch,
                                            int height, int pixelFormat, int flags);

    [LibraryImport(Library)]
    public static partial int tjCompress2(nint handle, byte* srcBuf, int width, int pitch, int height, int pixelFormat,
                                          byte** jpegBuf, CULong* jpegSize, int jpegSubsamp, int jpegQual, int flags);

    [LibraryImport(Library)]
    public static partial void tjFree(byte* buffer);

    [LibraryImport(Library)]
    public static partial nint tjGetErrorStr2(nint handle);

    [LibraryImport(Library)]
    public static partial int tjGetErrorCode(nint handle);
}

/// <summary>A TurboJPEG compressor or decompressor instance (tjInitCompress / tjInitDecompress); releasing it
/// calls tjDestroy. An instance is not thread-safe: use one per thread.</summary>
internal sealed class TurboJpegHandle : SafeHandle
{
    private TurboJpegHandle() : base(0, ownsHandle: true) { }

    public override bool IsInvalid => handle == 0;

    public static TurboJpegHandle CreateDecompressor() => Create(TurboJpeg.tjInitDecompress(), nameof(TurboJpeg.tjInitDecompress));

    public static TurboJpegHandle CreateCompressor() => Create(TurboJpeg.tjInitCompress(), nameof(TurboJpeg.tjInitCompress));

    private static TurboJpegHandle Create(nint raw, string call)
    {
        if (raw == 0)
        {
            // tjGetErrorStr2(NULL) returns the global error message of the failed init.
            var message = Marshal.PtrToStringUTF8(TurboJpeg.tjGetErrorStr2(0)) ?? "(no message)";
            throw new InvalidOperationException($"{call} failed: {message}");
        }
        var owner = new TurboJpegHandle();
        owner.SetHandle(raw);
        return owner;
    }

    protected override bool ReleaseHandle() => TurboJpeg.tjDestroy(handle) == 0;
}

/// <summary>A TurboJPEG call failed. The message names the call, the file or buffer, and libturbojpeg's reason.</summary>
public sealed class TurboJpegException : IOException
{
    public TurboJpegException(string call, string libraryMessage, bool isWarning, string context)
        : base($"{context}: {call} failed: {libraryMessage}" + (isWarning ? " (a warning treated as an error: the data is damaged)" : ""))
    {
        Call = call;
        LibraryMessage = libraryMessage;
        IsWarning = isWarning;
    }

    public string Call { get; }
    public string LibraryMessage { get; }
    public bool IsWarning { get; }
}
