// Weight initializers, following the formulas of torch.nn.init (He et al. 2015 for Kaiming, Glorot &
// Bengio 2010 for Xavier). Every random initializer takes an explicit Generator so a run is reproducible.
// For a weight of shape (out, in, k1, k2, ...): receptive = k1·k2·…, fan_in = in·receptive,
// fan_out = out·receptive.
//   kaiming_uniform: U(−b, b), b = gain·sqrt(3 / fan)      kaiming_normal: N(0, (gain / sqrt(fan))²)
//   xavier_uniform:  U(−b, b), b = gain·sqrt(6 / (fan_in + fan_out))
//   xavier_normal:   N(0, gain² · 2 / (fan_in + fan_out))
// gain: linear/conv/sigmoid 1, tanh 5/3, relu sqrt(2), leaky_relu(a) sqrt(2 / (1 + a²)), selu 3/4.
// detectron2's c2_msra_fill is KaimingNormal(FanOut, Relu) and c2_xavier_fill is KaimingUniform(a: 1).
namespace Engine.Nn;

public enum Nonlinearity
{
    Linear,
    Conv,
    Sigmoid,
    Tanh,
    Relu,
    LeakyRelu,
    Selu,
}

public enum FanMode
{
    FanIn,
    FanOut,
}

public static class Init
{
    /// <summary>Recommended gain for <paramref name="nonlinearity"/>; <paramref name="negativeSlope"/> is leaky_relu's a.</summary>
    public static double CalculateGain(Nonlinearity nonlinearity, double negativeSlope = 0.01) => nonlinearity switch
    {
        Nonlinearity.Linear or Nonlinearity.Conv or Nonlinearity.Sigmoid => 1,
        Nonlinearity.Tanh => 5.0 / 3,
        Nonlinearity.Relu => Math.Sqrt(2),
        Nonlinearity.LeakyRelu => Math.Sqrt(2 / (1 + negativeSlope * negativeSlope)),
        Nonlinearity.Selu => 0.75,
        _ => throw new ArgumentOutOfRangeException(nameof(nonlinearity)),
    };

    /// <summary>(fan_in, fan_out) of a weight of shape (out, in, k...): in·Πk and out·Πk.</summary>
    public static (long FanIn, long FanOut) CalculateFans(ReadOnlySpan<int> shape)
    {
        if (shape.Length < 2)
            throw new ArgumentException($"Init: fan in and fan out need a weight with at least 2 dims (out, in, ...), got {ShapeUtil.Format(shape)}.");
        long receptive = 1;
        for (var i = 2; i < shape.Length; i++) receptive *= shape[i];
        return (shape[1] * receptive, shape[0] * receptive);
    }

    private static long Fan(Tensor t, FanMode mode, string op)
    {
        var (fanIn, fanOut) = CalculateFans(t.Shape);
        var fan = mode == FanMode.FanIn ? fanIn : fanOut;
        if (fan == 0) throw new ArgumentException($"{op}: the {mode} of a weight of shape {ShapeUtil.Format(t.Shape)} is 0; initialization is undefined.");
        return fan;
    }

    /// <summary>U(−bound, bound) with bound = gain·sqrt(3 / fan), gain from <paramref name="nonlinearity"/> and <paramref name="a"/>
    /// (PyTorch's defaults: a = 0, fan_in, leaky_relu).</summary>
    public static Tensor KaimingUniform(Tensor t, Generator generator, double a = 0, FanMode mode = FanMode.FanIn,
                                       Nonlinearity nonlinearity = Nonlinearity.LeakyRelu)
    {
        var std = CalculateGain(nonlinearity, a) / Math.Sqrt(Fan(t, mode, "KaimingUniform"));
        var bound = Math.Sqrt(3) * std;
        return Uniform(t, generator, -bound, bound);
    }

    /// <summary>N(0, std²) with std = gain / sqrt(fan).</summary>
    public static Tensor KaimingNormal(Tensor t, Generator generator, double a = 0, FanMode mode = FanMode.FanIn,
                                      Nonlinearity nonlinearity = Nonlinearity.LeakyRelu)
    {
        var std = CalculateGain(nonlinearity, a) / Math.Sqrt(Fan(t, mode, "KaimingNormal"));
        return Normal(t, generator, 0, std);
    }

    /// <summary>U(−bound, bound) with bound = gain·sqrt(6 / (fan_in + fan_out)).</summary>
    public static Tensor XavierUniform(Tensor t, Generator generator, double gain = 1)
    {
        var bound = gain * Math.Sqrt(6.0 / XavierFanSum(t, "XavierUniform"));
        return Uniform(t, generator, -bound, bound);
    }

    /// <summary>N(0, std²) with std = gain·sqrt(2 / (fan_in + fan_out)).</summary>
    public static Tensor XavierNormal(Tensor t, Generator generator, double gain = 1) =>
        Normal(t, generator, 0, gain * Math.Sqrt(2.0 / XavierFanSum(t, "XavierNormal")));

    private static long XavierFanSum(Tensor t, string op)
    {
        var (fanIn, fanOut) = CalculateFans(t.Shape);
        if (fanIn + fanOut == 0) throw new ArgumentException($"{op}: weight of shape {ShapeUtil.Format(t.Shape)} has no elements to initialize.");
        return fanIn + fanOut;
    }

    /// <summary>Fills <paramref name="t"/> in place with U(low, high) and returns it.</summary>
    public static Tensor Uniform(Tensor t, Generator generator, double low = 0, double high = 1)
    {
        if (!(low <= high)) throw new ArgumentException($"Init.Uniform: low {low} must not exceed high {high}.");
        using var values = Tensor.Rand(t.ShapeArray(), generator, low, high);
        return Write(t, values);
    }

    /// <summary>Fills <paramref name="t"/> in place with N(mean, std²) and returns it.</summary>
    public static Tensor Normal(Tensor t, Generator generator, double mean = 0, double std = 1)
    {
        if (!(std >= 0)) throw new ArgumentException($"Init.Normal: std must be ≥ 0, got {std}.");
        using var values = Tensor.Randn(t.ShapeArray(), generator, mean, std);
        return Write(t, values);
    }

    public static Tensor Constant(Tensor t, double value)
    {
        using (GradMode.NoGrad()) return t.Fill(value);
    }

    public static Tensor Zeros(Tensor t) => Constant(t, 0);

    public static Tensor Ones(Tensor t) => Constant(t, 1);

    private static Tensor Write(Tensor t, Tensor values)
    {
        if (!t.DType.IsFloatingPoint())
            throw new ArgumentException($"Init: random initialization needs a floating-point tensor, got {t.DType.Name()} {ShapeUtil.Format(t.Shape)}.");
        using (GradMode.NoGrad()) return t.CopyFrom(values);
    }
}
