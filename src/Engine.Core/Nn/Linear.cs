// Fully connected layer: y = x·Wᵀ + b over the last dim of x, in one matrix product with the weight read
// transposed in place. PyTorch's default initialization (kaiming-uniform a = √5, bias ±1/√in).
namespace Engine.Nn;

public sealed class Linear : Module<Tensor, Tensor>
{
    public Linear(int inFeatures, int outFeatures, Generator generator, bool bias = true)
    {
        if (inFeatures <= 0 || outFeatures <= 0)
            throw new ArgumentException($"Linear({inFeatures} → {outFeatures}): feature counts must be positive.");
        (InFeatures, OutFeatures) = (inFeatures, outFeatures);
        Weight = RegisterParameter("weight", Init.KaimingUniform(Tensor.Empty([outFeatures, inFeatures]), generator, a: Math.Sqrt(5)));
        if (bias)
            Bias = RegisterParameter("bias", Init.Uniform(Tensor.Empty([outFeatures]), generator, -1 / Math.Sqrt(inFeatures), 1 / Math.Sqrt(inFeatures)));
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    public Parameter Weight { get; }
    public Parameter? Bias { get; }

    /// <param name="input">(..., InFeatures) → (..., OutFeatures)</param>
    public override Tensor Forward(Tensor input) => Tensor.Linear(input, Weight, Bias?.Value);
}
