// Batch normalization of NCHW maps (Ioffe & Szegedy, 2015, Alg. 1) with PyTorch's nn.BatchNorm2d semantics,
// as detectron2's NORM: "BN" builds it. Training mode normalizes each channel by the batch's mean and biased
// variance over (N, H, W) and moves the running statistics toward the batch's (momentum 0.1, running_var with
// the unbiased variance); evaluation mode normalizes by the running statistics. Parameters weight/bias and
// buffers running_mean/running_var/num_batches_tracked carry PyTorch's names, so checkpoints read
// "backbone.res2.0.conv1.norm.running_mean" and every buffer is saved and restored with the weights.
namespace Engine.Nn;

public sealed class BatchNorm2d : Module<Tensor, Tensor>, INormLayer
{
    public BatchNorm2d(int numFeatures, double eps = 1e-5, double momentum = 0.1)
    {
        if (numFeatures <= 0) throw new ArgumentOutOfRangeException(nameof(numFeatures), $"BatchNorm2d: numFeatures must be positive, got {numFeatures}.");
        if (!(eps >= 0)) throw new ArgumentOutOfRangeException(nameof(eps), $"BatchNorm2d: eps must be ≥ 0, got {eps}.");
        if (!(momentum >= 0 && momentum <= 1)) throw new ArgumentOutOfRangeException(nameof(momentum), $"BatchNorm2d: momentum must be in [0, 1], got {momentum}.");
        NumFeatures = numFeatures;
        Eps = eps;
        Momentum = momentum;
        Weight = RegisterParameter("weight", Tensor.Ones([numFeatures]));
        Bias = RegisterParameter("bias", Tensor.Zeros([numFeatures]));
        RunningMean = RegisterBuffer("running_mean", Tensor.Zeros([numFeatures]));
        RunningVar = RegisterBuffer("running_var", Tensor.Ones([numFeatures]));
        // int64 scalar, as PyTorch stores it; counts training steps (informational: momentum is fixed)
        NumBatchesTracked = RegisterBuffer("num_batches_tracked", Tensor.Zeros([], DType.Int64));
    }

    public int NumFeatures { get; }
    public double Eps { get; }
    public double Momentum { get; }
    public Parameter Weight { get; }
    public Parameter Bias { get; }
    public ModuleBuffer RunningMean { get; }
    public ModuleBuffer RunningVar { get; }
    public ModuleBuffer NumBatchesTracked { get; }

    /// <param name="input">(N, C, H, W) with C = NumFeatures</param>
    public override Tensor Forward(Tensor input)
    {
        if (input.Rank != 4 || input.Size(1) != NumFeatures)
            throw new ArgumentException($"BatchNorm2d({NumFeatures}): expected an (N, {NumFeatures}, H, W) input, got {ShapeUtil.Format(input.Shape)}.");
        var y = Tensor.BatchNorm(input, RunningMean.Value, RunningVar.Value, Weight.Value, Bias.Value, IsTraining, Momentum, Eps);
        if (IsTraining && input.Numel > 0)
            using (GradMode.NoGrad())
            using (var one = Tensor.Ones([], DType.Int64))
                NumBatchesTracked.Value.AddInPlace(one);
        return y;
    }
}
