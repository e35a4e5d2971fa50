// Group normalization (Wu & He, 2018, Eqn. 1–3): the C channels of an (N, C, *) input are split into G
// groups; each (sample, group) is normalized by its own mean and biased variance,
// x̂ = (x − μ) / sqrt(σ² + eps), then scaled and shifted per channel: y = x̂·weight[c] + bias[c].
// One fused op forward and backward (Tensor.GroupNorm); parameters are named as PyTorch's nn.GroupNorm.
namespace Engine.Nn;

public sealed class GroupNorm : Module<Tensor, Tensor>, INormLayer
{
    public GroupNorm(int numGroups, int channels, double eps = 1e-5, bool affine = true)
    {
        if (numGroups <= 0 || channels <= 0 || channels % numGroups != 0)
            throw new ArgumentException($"GroupNorm: {channels} channels cannot be split into {numGroups} groups; channels must be a positive multiple of numGroups.");
        if (!(eps >= 0)) throw new ArgumentOutOfRangeException(nameof(eps), $"GroupNorm: eps must be ≥ 0, got {eps}.");
        NumGroups = numGroups;
        Channels = channels;
        Eps = eps;
        if (affine)
        {
            Weight = RegisterParameter("weight", Tensor.Ones([channels]));
            Bias = RegisterParameter("bias", Tensor.Zeros([channels]));
        }
    }

    public int NumGroups { get; }
    public int Channels { get; }
    public double Eps { get; }
    public Parameter? Weight { get; }
    public Parameter? Bias { get; }

    /// <param name="input">(N, C, *) with C = Channels</param>
    public override Tensor Forward(Tensor input)
    {
        if (input.Rank < 2 || input.Size(1) != Channels)
            throw new ArgumentException($"GroupNorm({NumGroups}, {Channels}): expected an (N, {Channels}, ...) input, got {ShapeUtil.Format(input.Shape)}.");
        return Tensor.GroupNorm(input, NumGroups, Weight?.Value, Bias?.Value, Eps);
    }
}
