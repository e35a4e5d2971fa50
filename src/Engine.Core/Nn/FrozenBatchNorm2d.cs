// Batch normalization with fixed statistics and affine parameters, as detectron2 uses in pretrained
// ResNet backbones: y = x·scale + shift per channel of an NCHW input, with
// scale = weight / sqrt(running_var + eps) and shift = bias − running_mean·scale. All four are buffers
// (saved under detectron2's names, never trained); the gradient flows to x only. scale and shift are computed
// once and kept while the buffers stay the same tensors with the same contents (storage versions: CopyFrom,
// Fill and LoadStateDict bump them; Module.To replaces the tensors). A forward is one pass over the input
// (the backend's batch-norm primitive with mean 0, rstd = scale and bias = shift), not a multiply and then an add,
// and no small launches for the per-channel values; the backward is dx = dy·scale, one pass as well
// (IBackend.BatchNormScaleBackward). Forward(x, relu: true) folds a following ReLU into the forward pass (Conv2d with
// this norm and relu uses it), and its backward applies the ReLU's mask in the same pass as the scale.
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

    private Tensor? _scale, _shift, _zeros;
    // the buffer tensors scale and shift were computed from, and their storage versions then
    private readonly Tensor?[] _derivedFrom = new Tensor?[4];
    private readonly long[] _derivedVersions = new long[4];

    /// <param name="input">(N, C, H, W)</param>
    public override Tensor Forward(Tensor input) => Forward(input, relu: false);

    /// <summary>The layer followed by a ReLU, in the same single pass: relu(x·scale + shift), and in the backward
    /// dx = dy·scale where the output is positive, also one pass (a Conv2d with this norm and relu calls it).</summary>
    /// <param name="input">(N, C, H, W)</param>
    public Tensor Forward(Tensor input, bool relu)
    {
        if (input.Rank != 4 || input.Size(1) != NumFeatures)
            throw new ArgumentException($"FrozenBatchNorm2d({NumFeatures}): expected an (N, {NumFeatures}, H, W) input, got {ShapeUtil.Format(input.Shape)}.");
        var (scale, shift) = ScaleAndShift();
        if (input.DType != DType.Float32 || input.Device != scale.Device)
            throw new ArgumentException($"FrozenBatchNorm2d({NumFeatures}): expected a float32 input on {scale.Device}, got {input.DType.Name()} on {input.Device}.");
        var y = Tensor.Empty(input.Shape, DType.Float32, input.Device);
        if (input.Numel > 0)
        {
            using var x = input.DenseUnrecorded();
            x.Backend.BatchNormForward(x, _zeros!, scale, null, shift, y, relu);   // (C) operands, read by element count
        }
        if (Autograd.Tape.IsNeeded(input))
            Autograd.Tape.Record(y, relu ? "frozen_batch_norm_relu" : "frozen_batch_norm", [input], node =>
            {
                var saved = node.Save(scale);
                var output = relu ? node.Save(y) : null;   // positive exactly where the normalized input is
                return g =>
                {
                    // dx = dy·scale, masked by the ReLU's output: one pass, the same bits as (ReluBackward then) Mul
                    var dx = Tensor.Empty(g.Shape, DType.Float32, g.Device);
                    if (dx.Numel == 0) return [dx];
                    using var dense = g.DenseUnrecorded();
                    dense.Backend.BatchNormScaleBackward(dense, output, saved, null, dx);
                    return [dx];
                };
            });
        return y;
    }

    /// <summary>(1, C, 1, 1) scale and shift, recomputed only when a buffer was replaced or written; a (C) zero mean
    /// for the batch-norm primitive is kept beside them.</summary>
    private (Tensor Scale, Tensor Shift) ScaleAndShift()
    {
        ReadOnlySpan<ModuleBuffer> buffers = [Weight, Bias, RunningMean, RunningVar];
        var current = _scale is not null && _shift is not null;
        for (var i = 0; i < buffers.Length && current; i++)
            current = ReferenceEquals(_derivedFrom[i], buffers[i].Value) && _derivedVersions[i] == buffers[i].Value.Storage.Version;
        if (current) return (_scale!, _shift!);
        ReleaseDerived();
        using (GradMode.NoGrad())
        using (DisposeScope.Suspend())
        {
            using var v = RunningVar.Value.Add(Eps);
            using var sd = v.Sqrt();
            using var s = Weight.Value.Div(sd);
            using var ms = RunningMean.Value.Mul(s);
            using var b = Bias.Value.Sub(ms);
            _scale = s.Reshape(1, NumFeatures, 1, 1);
            _shift = b.Reshape(1, NumFeatures, 1, 1);
            _zeros = Tensor.Zeros([NumFeatures], DType.Float32, s.Device);
        }
        for (var i = 0; i < buffers.Length; i++)
            (_derivedFrom[i], _derivedVersions[i]) = (buffers[i].Value, buffers[i].Value.Storage.Version);
        return (_scale, _shift);
    }

    protected override void ReleaseDerived()
    {
        _scale?.Dispose();
        _shift?.Dispose();
        _zeros?.Dispose();
        (_scale, _shift, _zeros) = (null, null, null);
        Array.Clear(_derivedFrom);
    }
}
