// The normalized classifiers of section 1.8, as modules. NormalizedLinear (LogN and Seesaw configs):
// z_c = τ·(x/(‖x‖ + 1e-6))·(W_c/(‖W_c‖ + 1e-6)) + b_c, τ = 20, weights N(0, 0.01²), bias 0. CosineClassifier (RIO):
// z_c = s·g_c·(x/(‖x‖ + 1e-5))·(v_c/‖v_c‖), s = 48, no bias, with a learnable per-class scale g (weight
// normalization), v initialized as a default linear layer and g to its initial row norms (about 0.58 for 1024 inputs).
using Engine.Nn;

namespace Engine.LongTail.Nn;

public sealed class NormalizedLinear : Module<Tensor, Tensor>
{
    public const double Eps = 1e-6;

    public NormalizedLinear(int inFeatures, int outFeatures, Generator generator, double temperature = 20, bool bias = true)
    {
        if (inFeatures <= 0 || outFeatures <= 0)
            throw new ArgumentException($"NormalizedLinear({inFeatures} → {outFeatures}): feature counts must be positive.");
        (InFeatures, OutFeatures, Temperature) = (inFeatures, outFeatures, temperature);
        Weight = RegisterParameter("weight", Init.Normal(Tensor.Empty([outFeatures, inFeatures]), generator, 0, 0.01));
        if (bias) Bias = RegisterParameter("bias", Tensor.Zeros([outFeatures]));
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    public double Temperature { get; }
    public Parameter Weight { get; }
    public Parameter? Bias { get; }

    /// <param name="input">(N, InFeatures) → (N, OutFeatures)</param>
    public override Tensor Forward(Tensor input)
    {
        using var x = LongTailOps.NormalizeRows(input, Eps);
        using var w = LongTailOps.NormalizeRows(Weight, Eps);
        using var scaledX = x.Mul(Temperature);
        return Tensor.Linear(scaledX, w, Bias?.Value);
    }
}

public sealed class CosineClassifier : Module<Tensor, Tensor>
{
    public const double Eps = 1e-5;

    public CosineClassifier(int inFeatures, int outFeatures, Generator generator, double scale = 48)
    {
        if (inFeatures <= 0 || outFeatures <= 0)
            throw new ArgumentException($"CosineClassifier({inFeatures} → {outFeatures}): feature counts must be positive.");
        (InFeatures, OutFeatures, Scale) = (inFeatures, outFeatures, scale);
        var v = Init.KaimingUniform(Tensor.Empty([outFeatures, inFeatures]), generator, a: Math.Sqrt(5));
        Tensor g;
        using (GradMode.NoGrad())
        {
            using var sq = v.Square();
            using var s = sq.Sum(1);
            g = s.Sqrt();
        }
        Direction = RegisterParameter("weight_v", v);
        Gain = RegisterParameter("weight_g", g);
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    public double Scale { get; }

    /// <summary>v (out, in): the direction of each class's weight.</summary>
    public Parameter Direction { get; }

    /// <summary>g (out): the learnable per-class norm.</summary>
    public Parameter Gain { get; }

    /// <param name="input">(N, InFeatures) → (N, OutFeatures)</param>
    public override Tensor Forward(Tensor input)
    {
        using var x = LongTailOps.NormalizeRows(input, Eps);
        // v/‖v‖ exactly (no eps in the weight norm); a zero row has no direction and fails loudly as NaN
        using var sq = Direction.Value.Square();
        using var s = sq.Sum(1, keepDim: true);
        using var norm = s.Sqrt();
        using var unit = Direction.Value.Div(norm);
        using var gColumn = Gain.Value.Unsqueeze(1);
        using var w0 = unit.Mul(gColumn);
        using var w = w0.Mul(Scale);
        return Tensor.Linear(x, w);
    }
}
