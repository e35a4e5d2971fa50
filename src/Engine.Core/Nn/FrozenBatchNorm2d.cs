// Batch normalization with fixed statistics and affine parameters, as detectron2 uses in pretrained
// ResNet backbones: y = x·scale + shift per channel of an NCHW input, with
// scale = weight / sqrt(running_var + eps) and shift = bias − running_mean·scale. All four are buffers
// (saved under detectron2's names, never trained); the gradient flows to x only.
namespace Engine.Nn;

public sealed class FrozenBatchNorm2d : Module<Tensor, Tensor>, INormLayer
{
    public FrozenBatchNorm2d(int numFeatures, double eps = 1e-5)
    {
        if (numFeatures <= 0) throw new ArgumentOutOfRangeException(nameof(numFeatures), $"FrozenBatchNorm2d: numFeatures must be positive, got {numFeatures}.");
        if (!(eps >= 0)) throw new ArgumentOutOfRangeException(nameof(eps), $"FrozenBatchNorm2d: eps must be ≥ 0, got {eps}.");
        NumFeatures = numFeatures;
        Eps = eps;
        Weight = RegisterBuffer("weight", Tensor.Ones([numFeatures]));
        Bias = RegisterBuffer("bias", Tensor.Zeros([numFeatures]));
        RunningMean = RegisterBuffer("running_mean", Tensor.Zeros([numFeatures]));
        // 1 − eps, as detectron2 initializes it, so that a fresh layer is exactly the identity (scale = 1)
        RunningVar = RegisterBuffer("running_var", Tensor.Full([numFeatures], 1 - eps));
    }

    public int NumFeatures { get; }
    public double Eps { get; }
    public ModuleBuffer Weight { get; }
    public ModuleBuffer Bias { get; }
    public ModuleBuffer RunningMean { get; }
    public ModuleBuffer RunningVar { get; }

    /// <param name="input">(N, C, H, W)</param>
    public override Tensor Forward(Tensor input)
    {
        if (input.Rank != 4 || input.Size(1) != NumFeatures)
            throw new ArgumentException($"FrozenBatchNorm2d({NumFeatures}): expected an (N, {NumFeatures}, H, W) input, got {ShapeUtil.Format(input.Shape)}.");
        Tensor scale, shift;
        using (GradMode.NoGrad())
        {
            using var v = RunningVar.Value.Add(Eps);
            using var sd = v.Sqrt();
            using var s = Weight.Value.Div(sd);
            using var ms = RunningMean.Value.Mul(s);
            using var b = Bias.Value.Sub(ms);
            scale = s.Reshape(1, NumFeatures, 1, 1);
            shift = b.Reshape(1, NumFeatures, 1, 1);
        }
        using (scale)
        using (shift)
        using (var scaled = input.Mul(scale))
            return scaled.Add(shift);
    }
}
