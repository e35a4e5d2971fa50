// Initializers: fan computation, gains, and the distributions' moments and ranges within sampling error.
using Engine.Nn;

namespace Engine.Tests.Nn;

public class InitTests
{
    // Statistical checks on n i.i.d. draws. For a distribution with variance σ² and fourth central moment μ4:
    //   the sample mean has standard error σ/sqrt(n);
    //   the sample variance has standard error sqrt((μ4 − σ⁴)/n).
    // Uniform(−b, b): σ² = b²/3, μ4 = b⁴/5, so SE(var) = b²·sqrt(4/45/n).   Normal: μ4 = 3σ⁴, SE(var) = σ²·sqrt(2/n).
    // Each check allows 5 standard errors: a correct initializer fails with probability < 1e-6 per check.
    private const double Z = 5;

    private static (double Mean, double Var, double Min, double Max) Moments(Tensor t)
    {
        var v = t.ToDoubleArray();
        var mean = v.Average();
        return (mean, v.Sum(x => (x - mean) * (x - mean)) / (v.Length - 1), v.Min(), v.Max());
    }

    private static void AssertUniform(Tensor t, double bound, ulong seed, string what)
    {
        var n = t.Numel;
        var (mean, variance, min, max) = Moments(t);
        Assert.True(Math.Abs(mean) < Z * bound / Math.Sqrt(3 * n), $"{what}: mean {mean} (seed {seed})");
        Assert.True(Math.Abs(variance - bound * bound / 3) < Z * bound * bound * Math.Sqrt(4.0 / 45 / n), $"{what}: variance {variance}, expected {bound * bound / 3} (seed {seed})");
        // inside [−b, b] (float32 rounding of b itself allowed), and reaching within 0.1% of both ends:
        // P(max < b(1 − δ)) = (1 − δ/2)^n = e^(−74) for δ = 1e-3, n ≈ 147k.
        Assert.True(min >= -bound * (1 + 1e-7) && max <= bound * (1 + 1e-7), $"{what}: range [{min}, {max}] exceeds ±{bound} (seed {seed})");
        Assert.True(max > bound * (1 - 1e-3) && min < -bound * (1 - 1e-3), $"{what}: range [{min}, {max}] does not reach ±{bound} (seed {seed})");
    }

    private static void AssertNormal(Tensor t, double mean, double std, ulong seed, string what)
    {
        var n = t.Numel;
        var (m, variance, _, _) = Moments(t);
        Assert.True(Math.Abs(m - mean) < Z * std / Math.Sqrt(n), $"{what}: mean {m}, expected {mean} (seed {seed})");
        Assert.True(Math.Abs(variance - std * std) < Z * std * std * Math.Sqrt(2.0 / n), $"{what}: variance {variance}, expected {std * std} (seed {seed})");
    }

    [Fact]
    public void FansOfConvAndLinearWeights()
    {
        Assert.Equal((3L * 7 * 7, 64L * 7 * 7), Init.CalculateFans([64, 3, 7, 7]));
        Assert.Equal((20L, 10L), Init.CalculateFans([10, 20]));
        Assert.Equal((256L * 3 * 3 * 2, 128L * 3 * 3 * 2), Init.CalculateFans([128, 256, 3, 3, 2]));
        var e = Assert.Throws<ArgumentException>(() => Init.CalculateFans([5]));
        Assert.Contains("[5]", e.Message);
    }

    [Fact]
    public void GainsFollowTheirDefinitions()
    {
        Assert.Equal(1.0, Init.CalculateGain(Nonlinearity.Conv));
        Assert.Equal(Math.Sqrt(2), Init.CalculateGain(Nonlinearity.Relu));
        // leaky_relu(a) interpolates: a = 0 is ReLU, a = 1 is the identity
        Assert.Equal(Init.CalculateGain(Nonlinearity.Relu), Init.CalculateGain(Nonlinearity.LeakyRelu, 0), 15);
        Assert.Equal(1.0, Init.CalculateGain(Nonlinearity.LeakyRelu, 1), 15);
        Assert.Equal(Math.Sqrt(2 / (1 + Math.Sqrt(5) * Math.Sqrt(5))), Init.CalculateGain(Nonlinearity.LeakyRelu, Math.Sqrt(5)), 15);
    }

    [Fact]
    public void KaimingUniformHasBoundGainTimesSqrtThreeOverFan()
    {
        var g = TestUtil.Fresh(out var seed);
        using var w = Tensor.Empty([256, 64, 3, 3]);
        // fan_in = 64·9 = 576, gain(relu) = sqrt 2 → bound = sqrt(2)·sqrt(3/576) = sqrt(6/576)
        Init.KaimingUniform(w, g, nonlinearity: Nonlinearity.Relu);
        AssertUniform(w, Math.Sqrt(6.0 / 576), seed, "kaiming_uniform fan_in relu");
        // PyTorch's layer default: a = sqrt 5 → gain sqrt(1/3), bound = sqrt(1/fan_in)
        Init.KaimingUniform(w, g, a: Math.Sqrt(5));
        AssertUniform(w, Math.Sqrt(1.0 / 576), seed, "kaiming_uniform a=sqrt5");
        // fan_out = 256·9 = 2304, c2_xavier_fill (a = 1, gain 1): bound = sqrt(3/2304)
        Init.KaimingUniform(w, g, a: 1, mode: FanMode.FanOut);
        AssertUniform(w, Math.Sqrt(3.0 / 2304), seed, "kaiming_uniform fan_out a=1");
    }

    [Fact]
    public void KaimingNormalHasStdGainOverSqrtFan()
    {
        var g = TestUtil.Fresh(out var seed);
        using var w = Tensor.Empty([256, 64, 3, 3]);
        // c2_msra_fill: fan_out = 2304, relu → std = sqrt(2/2304)
        Init.KaimingNormal(w, g, mode: FanMode.FanOut, nonlinearity: Nonlinearity.Relu);
        AssertNormal(w, 0, Math.Sqrt(2.0 / 2304), seed, "kaiming_normal fan_out relu");
        Init.KaimingNormal(w, g, a: 0.2);
        AssertNormal(w, 0, Math.Sqrt(2 / 1.04) / Math.Sqrt(576), seed, "kaiming_normal fan_in leaky 0.2");
    }

    [Fact]
    public void XavierUsesBothFans()
    {
        var g = TestUtil.Fresh(out var seed);
        using var w = Tensor.Empty([300, 500]);
        // fan_in + fan_out = 800
        Init.XavierUniform(w, g);
        AssertUniform(w, Math.Sqrt(6.0 / 800), seed, "xavier_uniform");
        Init.XavierNormal(w, g, gain: 5.0 / 3);
        AssertNormal(w, 0, 5.0 / 3 * Math.Sqrt(2.0 / 800), seed, "xavier_normal tanh gain");
    }

    [Fact]
    public void NormalUniformAndConstantsFillInPlace()
    {
        var g = TestUtil.Fresh(out var seed);
        using var t = Tensor.Empty([400, 401]).RequireGrad();
        var version = t.Storage.Version;
        Assert.Same(t, Init.Normal(t, g, mean: 3, std: 0.5));
        Assert.True(t.Storage.Version > version);
        AssertNormal(t, 3, 0.5, seed, "normal");
        Init.Uniform(t, g, -0.25, 0.25);
        AssertUniform(t, 0.25, seed, "uniform");
        Assert.All(Init.Constant(t, 0.125).ToFloatArray(), v => Assert.Equal(0.125f, v));
        Assert.All(Init.Zeros(t).ToFloatArray(), v => Assert.Equal(0f, v));
        Assert.All(Init.Ones(t).ToFloatArray(), v => Assert.Equal(1f, v));
        Assert.True(t.RequiresGrad);
    }

    [Fact]
    public void TheSameGeneratorStateGivesTheSameWeights()
    {
        var seed = (ulong)Random.Shared.NextInt64();
        using var a = Tensor.Empty([8, 3, 3, 3]);
        using var b = Tensor.Empty([8, 3, 3, 3]);
        Init.KaimingNormal(a, new Generator(seed));
        Init.KaimingNormal(b, new Generator(seed));
        Assert.Equal(a.ToFloatArray(), b.ToFloatArray());
    }

    [Fact]
    public void InvalidArgumentsAreClearErrors()
    {
        var g = new Generator(1);
        using var w = Tensor.Empty([0, 4]);
        Assert.Contains("FanOut", Assert.Throws<ArgumentException>(() => Init.KaimingUniform(w, g, mode: FanMode.FanOut)).Message);
        using var i = Tensor.Zeros([3, 3], DType.Int64);
        Assert.Contains("int64", Assert.Throws<ArgumentException>(() => Init.Normal(i, g)).Message);
        using var f = Tensor.Empty([3, 3]);
        Assert.Contains("std", Assert.Throws<ArgumentException>(() => Init.Normal(f, g, std: -1)).Message);
    }
}
