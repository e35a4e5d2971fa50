// The graph-API convolution engine's choice rules, without a GPU: which engine notes keep an engine out in FP32
// and in TF32, how the fastest timed plan is picked (NaN = did not run, ties to the heuristics' order), the
// alignment the plans are built for, and the option's spelling.
using Engine.Cuda.Backend;
using Engine.Cuda.Interop;

namespace Engine.Cuda.Tests.Backend;

public sealed class ConvolutionCandidatesTests
{
    private const int TensorCore = (int)cudnnBackendNumericalNote_t.CUDNN_NUMERICAL_NOTE_TENSOR_CORE;
    private const int DownConvert = (int)cudnnBackendNumericalNote_t.CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS;
    private const int ReducedPrecision = (int)cudnnBackendNumericalNote_t.CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION;
    private const int Fft = (int)cudnnBackendNumericalNote_t.CUDNN_NUMERICAL_NOTE_FFT;
    private const int Winograd = (int)cudnnBackendNumericalNote_t.CUDNN_NUMERICAL_NOTE_WINOGRAD;
    private const int Nondeterministic = (int)cudnnBackendNumericalNote_t.CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC;
    private const int RuntimeCompiled = (int)cudnnBackendBehaviorNote_t.CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION;

    [Theory]
    [InlineData(new int[0], false)]
    [InlineData(new[] { Fft }, false)]
    [InlineData(new[] { Winograd, Nondeterministic }, false)]
    [InlineData(new int[0], true)]
    [InlineData(new[] { TensorCore }, true)]
    [InlineData(new[] { ReducedPrecision, TensorCore }, true)]
    public void AdmitsEnginesThatKeepThePrecision(int[] notes, bool allowTf32) =>
        Assert.Null(ConvolutionCandidates.Rejects(notes, [], allowTf32));

    [Theory]
    [InlineData(new[] { TensorCore }, false, "TF32")]
    [InlineData(new[] { Fft, ReducedPrecision }, false, "reduced precision")]
    [InlineData(new[] { DownConvert }, false, "narrower type")]
    [InlineData(new[] { TensorCore, DownConvert }, true, "narrower type")]
    public void RejectsEnginesThatLosePrecision(int[] notes, bool allowTf32, string why) =>
        Assert.Contains(why, ConvolutionCandidates.Rejects(notes, [], allowTf32));

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RejectsEnginesCompiledAtRunTime(bool allowTf32) =>
        Assert.Contains("run time", ConvolutionCandidates.Rejects([], [RuntimeCompiled], allowTf32));

    [Theory]
    [InlineData(new[] { 0.5f, 0.25f, 0.75f }, 1)]
    [InlineData(new[] { float.NaN, 0.3f, 0.2f, float.NaN }, 2)]
    [InlineData(new[] { 0.2f, 0.1f, 0.1f }, 1)] // a tie goes to the heuristics' earlier choice
    [InlineData(new[] { 0.0f }, 0)]
    [InlineData(new[] { float.NaN, float.NaN }, -1)]
    [InlineData(new float[0], -1)]
    public void PicksTheFastestPlanThatRan(float[] milliseconds, int expected) =>
        Assert.Equal(expected, ConvolutionCandidates.Fastest(milliseconds));

    [Theory]
    [InlineData(0x7f0000000000UL, 0x7f0000000100UL, 0x7f0000200000UL, 16)]
    [InlineData(0x7f0000000008UL, 0x7f0000000100UL, 0x7f0000200000UL, 8)]
    [InlineData(0x7f0000000100UL, 0x7f0000000104UL, 0x7f0000200010UL, 4)]
    [InlineData(0x7f0000000010UL, 0x7f0000000030UL, 0x7f0000200050UL, 16)]
    public void PlansAreBuiltForTheAlignmentEveryPointerHas(ulong x, ulong w, ulong y, int expected) =>
        Assert.Equal(expected, ConvolutionCandidates.Alignment(x, w, y));

    [Fact]
    public void TheApiIsNamedLegacyOrGraph()
    {
        Assert.Equal(CudnnApi.Legacy, CudnnApis.Parse("legacy"));
        Assert.Equal(CudnnApi.Graph, CudnnApis.Parse("Graph"));
        Assert.Equal(CudnnApi.Graph, CudaBackendOptions.Default.ConvolutionApi);
        var e = Assert.Throws<FormatException>(() => CudnnApis.Parse("v8"));
        Assert.Contains("legacy or graph", e.Message);
    }
}
