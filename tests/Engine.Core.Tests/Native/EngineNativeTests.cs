// Tests of the native library's loading and plumbing (src/Engine.Core/Native/EngineNative.cs):
// the ABI version matches, oneDNN runs on every core, the layout policy round-trips and refuses
// bad values with a message, and a library that cannot be found is reported with the fix.
using Engine.Native;

namespace Engine.Tests.Native;

[Collection("OneDnn")]
public class EngineNativeTests
{
    [Fact]
    public void AbiVersionMatchesTheBinding() =>
        Assert.Equal(EngineNative.ExpectedAbiVersion, EngineNative.engine_native_abi_version());

    [Fact]
    public void OneDnnUsesEveryCore()
    {
        var configured = Environment.GetEnvironmentVariable("OMP_NUM_THREADS");
        var expected = int.TryParse(configured, out var n) && n > 0 ? n : Environment.ProcessorCount;
        Assert.Equal(expected, OneDnn.MaxThreads);
    }

    [Fact]
    public void LayoutPolicyRoundTripsAndRejectsUnknownValues()
    {
        var saved = OneDnn.LayoutPolicy;
        try
        {
            OneDnn.LayoutPolicy = OneDnnLayoutPolicy.Plain;
            Assert.Equal(OneDnnLayoutPolicy.Plain, OneDnn.LayoutPolicy);
            var e = Assert.Throws<EngineNativeException>(() => OneDnn.LayoutPolicy = (OneDnnLayoutPolicy)7);
            Assert.Contains("engine_onednn_set_layout_policy", e.Message);
            Assert.Contains("policy 7", e.Message);
            Assert.Equal(OneDnnLayoutPolicy.Plain, OneDnn.LayoutPolicy);
        }
        finally
        {
            OneDnn.LayoutPolicy = saved;
        }
    }

    [Fact]
    public void MissingLibraryMessageNamesTheLibraryAndTheFix()
    {
        // The assembly's resolver answers for every library name; an absent one fails with the search list.
        var e = Assert.Throws<DllNotFoundException>(() => EngineNative.Load("engine_no_such_library"));
        Assert.Contains("libengine_no_such_library.so", e.Message);
        Assert.Contains("ENGINE_LIBRARY_PATH", e.Message);
        Assert.NotEqual(IntPtr.Zero, EngineNative.Load(EngineNative.LibraryName));
    }
}
