// The long-tail backend of a cuda:N device: every member of ILongTailBackend on the stream of that device's
// CudaBackend. The group softmax runs through GroupSoftmaxKernels, LogN's statistics through LogitNormKernels,
// and the losses, FCBL's confusion update, the calibration with given shift and sd (LogitNormKernels' calibration
// derives shift and sd from the statistics itself, so it does not fit this member) and the scalar scale through
// long_tail_losses.cu (CudaLongTailKernels). CRAT's transfusion runs through FisherMixingKernels, whose double row
// losses lt_crat_row_loss_kernel rounds to the member's float32 row loss while it checks the labels.
//
// Host synchronizations, each where it happens:
//   GroupSoftmax, GroupSoftmaxBackward   one read of the G + 1 group offsets (the kernel takes them by value)
// Everything else is queued without a wait. A label outside an op's range is found on the device and raised, with
// the op and row, at the next host wait on the stream (DeviceErrorLog); that row's loss and gradient are NaN.
// Reductions across rows (WeightedSigmoidBce's gradient statistics, the confusion update, the statistics) run one
// thread per column over the rows in order, so they are reproducible from run to run.
using Engine.Cuda.Backend;
using Engine.Cuda.Kernels;
using Engine.LongTail;
using static Engine.Cuda.Ops.CudaTensors;

namespace Engine.Cuda.Ops;

public sealed class CudaLongTailBackend : ILongTailBackend, IDisposable
{
    private readonly CudaBackend _backend;
    private readonly Lazy<CudaLongTailKernels> _losses;
    private readonly Lazy<GroupSoftmaxKernels> _groupSoftmax;
    private readonly Lazy<LogitNormKernels> _logitNorm;
    private readonly Lazy<FisherMixingKernels> _fisherMixing;

    /// <summary>The long-tail backend of <paramref name="backend"/>'s device, launching on its stream.</summary>
    public CudaLongTailBackend(CudaBackend backend)
    {
        _backend = backend ?? throw new ArgumentNullException(nameof(backend));
        var (device, compiler) = (backend.CudaDevice, backend.Compiler);
        _losses = new(() => new CudaLongTailKernels(device, compiler));
        _groupSoftmax = new(() => new GroupSoftmaxKernels(device, compiler));
        _logitNorm = new(() => new LogitNormKernels(device, compiler));
        _fisherMixing = new(() => new FisherMixingKernels(device, compiler));
    }

    public Device Device => _backend.Device;

    private CudaDevice Gpu => _backend.CudaDevice;

    private CudaStream Stream => _backend.Stream;

    private void Float(string op, string name, Tensor t) => Require(op, name, t, Device, DType.Float32);

    private void Long(string op, string name, Tensor t) => Require(op, name, t, Device, DType.Int64);

    /// <summary>The arguments every row loss shares: logits (N, K), labels (N), the outputs and the error record.</summary>
    private LongTailArgs LossArgs(string op, Tensor logits, Tensor labels, double scale, Tensor rowLoss, Tensor gradLogits)
    {
        Float(op, nameof(logits), logits);
        Long(op, nameof(labels), labels);
        Float(op, nameof(rowLoss), rowLoss);
        Float(op, nameof(gradLogits), gradLogits);
        return new LongTailArgs
        {
            Logits = Ptr(logits), Labels = Ptr(labels), RowLoss = Ptr(rowLoss), Grad = Ptr(gradLogits), Errors = _backend.Errors.DevicePointer,
            Scale = scale, Rows = logits.Size(0), Columns = logits.Size(1),
        };
    }

    public void WeightedSigmoidBce(Tensor logits, Tensor labels, int numForeground, Tensor posWeight, Tensor negWeightForeground,
                                   Tensor negWeightBackground, double scale, Tensor rowLoss, Tensor gradLogits,
                                   Tensor? gradMagnitudePos, Tensor? gradMagnitudeNeg)
    {
        const string op = "WeightedSigmoidBce";
        var args = LossArgs(op, logits, labels, scale, rowLoss, gradLogits);
        Float(op, nameof(posWeight), posWeight);
        Float(op, nameof(negWeightForeground), negWeightForeground);
        Float(op, nameof(negWeightBackground), negWeightBackground);
        args.W0 = Ptr(posWeight);
        args.W1 = Ptr(negWeightForeground);
        args.W2 = Ptr(negWeightBackground);
        args.NumForeground = numForeground;
        _losses.Value.PerRow(CudaLongTailKernels.WeightedBce, args, Stream);
        if (gradMagnitudePos is null || gradMagnitudeNeg is null) return;
        Float(op, nameof(gradMagnitudePos), gradMagnitudePos);
        Float(op, nameof(gradMagnitudeNeg), gradMagnitudeNeg);
        args.StatPos = Ptr(gradMagnitudePos);
        args.StatNeg = Ptr(gradMagnitudeNeg);
        _losses.Value.PerItem(CudaLongTailKernels.BceStatistics, args.Columns, args, Stream);
    }

    public void Fcbl(Tensor logits, Tensor labels, Tensor confusion, Tensor counts, double alpha, double probThreshold, bool reweight,
                     double scale, Tensor rowLoss, Tensor gradLogits)
    {
        const string op = "Fcbl";
        var args = LossArgs(op, logits, labels, scale, rowLoss, gradLogits);
        Float(op, nameof(confusion), confusion);
        Float(op, nameof(counts), counts);
        args.W0 = Ptr(confusion);
        args.W1 = Ptr(counts);
        args.Alpha = alpha;
        args.Beta = probThreshold;
        args.Flag = reweight ? 1 : 0;
        _losses.Value.PerRow(CudaLongTailKernels.Fcbl, args, Stream);
    }

    public void AccumulateConfusion(Tensor logits, Tensor labels, Tensor confusion, Tensor counts)
    {
        const string op = "AccumulateConfusion";
        Float(op, nameof(logits), logits);
        Long(op, nameof(labels), labels);
        Float(op, nameof(confusion), confusion);
        Float(op, nameof(counts), counts);
        var (n, k) = (logits.Size(0), logits.Size(1));
        if (n == 0) return;
        // per row: max and Σ exp of the foreground logits; freed in stream order after the launches that read it
        using var moments = Tensor.Empty([n, 2], DType.Float32, Device);
        var args = new LongTailArgs
        {
            Logits = Ptr(logits), Labels = Ptr(labels), W0 = Ptr(confusion), W1 = Ptr(counts), W2 = Ptr(moments),
            Errors = _backend.Errors.DevicePointer, Rows = n, Columns = k,
        };
        _losses.Value.PerRow(CudaLongTailKernels.ConfusionRows, args, Stream);
        _losses.Value.PerItem(CudaLongTailKernels.ConfusionColumns, k, args, Stream);
    }

    public void SoftmaxCrossEntropy(Tensor logits, Tensor labels, Tensor weight, double scale, Tensor rowLoss, Tensor gradLogits)
    {
        const string op = "SoftmaxCrossEntropy";
        var args = LossArgs(op, logits, labels, scale, rowLoss, gradLogits);
        Float(op, nameof(weight), weight);
        args.W0 = Ptr(weight);
        _losses.Value.PerRow(CudaLongTailKernels.SoftmaxCe, args, Stream);
    }

    public void Seesaw(Tensor logits, Tensor labels, Tensor counts, double p, double q, double eps, double scale, Tensor rowLoss, Tensor gradLogits)
    {
        const string op = "Seesaw";
        var args = LossArgs(op, logits, labels, scale, rowLoss, gradLogits);
        Long(op, nameof(counts), counts);
        args.W0 = Ptr(counts);
        args.Alpha = p;
        args.Beta = q;
        args.Eps = eps;
        _losses.Value.PerRow(CudaLongTailKernels.Seesaw, args, Stream);
    }

    /// <summary>HOST SYNC only when the offsets live on the device: reads them (G + 1 int64).</summary>
    public void GroupSoftmax(Tensor x, Tensor offsets, bool log, Tensor y)
    {
        const string op = "GroupSoftmax";
        Float(op, nameof(x), x);
        Float(op, nameof(y), y);
        _groupSoftmax.Value.Forward(View(Gpu, x), Offsets(op, offsets), log, Buffer<float>(Gpu, y), Stream);
    }

    /// <summary>HOST SYNC only when the offsets live on the device: reads them (G + 1 int64).</summary>
    public void GroupSoftmaxBackward(Tensor y, Tensor gradY, Tensor offsets, bool log, Tensor gradX)
    {
        const string op = "GroupSoftmaxBackward";
        Float(op, nameof(y), y);
        Float(op, nameof(gradY), gradY);
        Float(op, nameof(gradX), gradX);
        _groupSoftmax.Value.Backward(View(Gpu, y), View(Gpu, gradY), Offsets(op, offsets), log, Buffer<float>(Gpu, gradX), Stream);
    }

    /// <summary>The group offsets on the host (a copy from the device when they live there: a host wait).</summary>
    private long[] Offsets(string op, Tensor offsets)
    {
        if (offsets.DType != DType.Int64 || offsets.Rank != 1)
            throw new ArgumentException($"{op}: offsets must be int64 (G + 1), got {offsets.DType.Name()} {ShapeUtil.Format(offsets.Shape)}.", nameof(offsets));
        return offsets.ToArray<long>();
    }

    public void UpdateRunningStatistics(Tensor logits, double momentum, Tensor mean, Tensor variance)
    {
        const string op = "UpdateRunningStatistics";
        Float(op, nameof(logits), logits);
        Float(op, nameof(mean), mean);
        Float(op, nameof(variance), variance);
        _logitNorm.Value.UpdateRunningStatistics(View(Gpu, logits), momentum, Buffer<float>(Gpu, mean), Buffer<float>(Gpu, variance), Stream);
    }

    public void StandardizeLogits(Tensor logits, double eps, Tensor y, Tensor inverseSd, Tensor? mean, Tensor? variance, double momentum)
    {
        const string op = "StandardizeLogits";
        Float(op, nameof(logits), logits);
        Float(op, nameof(y), y);
        Float(op, nameof(inverseSd), inverseSd);
        if ((mean is null) != (variance is null))
            throw new ArgumentException($"{op}: pass both the running mean and variance, or neither.");
        (DeviceBuffer<float>, DeviceBuffer<float>, double)? running = null;
        if (mean is not null)
        {
            Float(op, nameof(mean), mean);
            Float(op, nameof(variance), variance!);
            running = (Buffer<float>(Gpu, mean), Buffer<float>(Gpu, variance!), momentum);
        }
        _logitNorm.Value.Standardize(View(Gpu, logits), eps, Buffer<float>(Gpu, y), Buffer<float>(Gpu, inverseSd), running, Stream);
    }

    public void StandardizeLogitsBackward(Tensor y, Tensor gradY, Tensor inverseSd, Tensor gradX)
    {
        const string op = "StandardizeLogitsBackward";
        Float(op, nameof(y), y);
        Float(op, nameof(gradY), gradY);
        Float(op, nameof(inverseSd), inverseSd);
        Float(op, nameof(gradX), gradX);
        _logitNorm.Value.StandardizeBackward(View(Gpu, y), View(Gpu, gradY), Buffer<float>(Gpu, inverseSd), Buffer<float>(Gpu, gradX), Stream);
    }

    public void MergeStatistics(Tensor logits, Tensor count, Tensor mean, Tensor m2)
    {
        const string op = "MergeStatistics";
        Float(op, nameof(logits), logits);
        Long(op, nameof(count), count);
        Float(op, nameof(mean), mean);
        Float(op, nameof(m2), m2);
        _logitNorm.Value.MergeStatistics(View(Gpu, logits), Buffer<long>(Gpu, count), Buffer<float>(Gpu, mean), Buffer<float>(Gpu, m2), Stream);
    }

    public void Scale(Tensor x, Tensor factor, Tensor y)
    {
        const string op = "Scale";
        Float(op, nameof(x), x);
        Float(op, nameof(factor), factor);
        Float(op, nameof(y), y);
        if (factor.Numel != 1)
            throw new ArgumentException($"{op}: factor has shape {ShapeUtil.Format(factor.Shape)}; it must hold exactly one element.", nameof(factor));
        _losses.Value.PerItem(CudaLongTailKernels.Scale, x.Numel, new LongTailArgs { Logits = Ptr(x), W0 = Ptr(factor), Grad = Ptr(y), Count = x.Numel }, Stream);
    }

    public void Calibrate(Tensor logits, Tensor shift, Tensor sd, bool softmax, Tensor y)
    {
        const string op = "Calibrate";
        Float(op, nameof(logits), logits);
        Float(op, nameof(shift), shift);
        Float(op, nameof(sd), sd);
        Float(op, nameof(y), y);
        _losses.Value.PerRow(CudaLongTailKernels.Calibrate, new LongTailArgs
        {
            Logits = Ptr(logits), W0 = Ptr(shift), W1 = Ptr(sd), Grad = Ptr(y), Rows = logits.Size(0), Columns = logits.Size(1), Flag = softmax ? 1 : 0,
        }, Stream);
    }

    public void CratTransfuse(CratParameters parameters, Tensor boxDeltas, Tensor embeddings, Tensor targets, Tensor labels, int normalizer,
                              Tensor fisher, bool updateFisher, Tensor weights, Tensor? ungatedWeights, Tensor extraGradient, Tensor rowLoss)
    {
        const string op = "CratTransfuse";
        ArgumentNullException.ThrowIfNull(parameters);
        Float(op, nameof(boxDeltas), boxDeltas);
        Float(op, nameof(embeddings), embeddings);
        Float(op, nameof(targets), targets);
        Long(op, nameof(labels), labels);
        Float(op, nameof(fisher), fisher);
        Float(op, nameof(weights), weights);
        if (ungatedWeights is not null) Float(op, nameof(ungatedWeights), ungatedWeights);
        Float(op, nameof(extraGradient), extraGradient);
        Float(op, nameof(rowLoss), rowLoss);
        var r = labels.Numel;
        var spec = new CratSpec(parameters.NumClasses, parameters.EmbeddingDim, parameters.Query == CratQuery.PerSample,
                                parameters.FisherRate, parameters.Temperature, parameters.BoxWeight);
        // the kernel's row losses are double: (R, 2) float32 of scratch, freed in stream order after the rounding reads it
        using var rowLossDouble = Tensor.Empty([(int)r, 2], DType.Float32, Device);
        // the kernel's outputs match the member's contract as they stand: gated and ungated weights zero on background
        // rows (and everywhere without positives), λ_b inside the gradient and the row loss
        _fisherMixing.Value.Transfuse(spec, View(Gpu, boxDeltas), View(Gpu, embeddings), View(Gpu, targets), Buffer<long>(Gpu, labels), normalizer,
                                      Buffer<float>(Gpu, fisher), updateFisher, Buffer<float>(Gpu, weights),
                                      ungatedWeights is null ? null : Buffer<float>(Gpu, ungatedWeights), Buffer<float>(Gpu, extraGradient),
                                      DeviceBuffer<double>.Borrow(Gpu, Ptr(rowLossDouble), r), Stream);
        _losses.Value.PerItem(CudaLongTailKernels.CratRowLoss, r, new LongTailArgs
        {
            W0 = Ptr(rowLossDouble), Labels = Ptr(labels), RowLoss = Ptr(rowLoss), Errors = _backend.Errors.DevicePointer,
            Rows = (int)r, Columns = parameters.NumClasses,
        }, Stream);
    }

    public void Dispose()
    {
        if (_losses.IsValueCreated) _losses.Value.Dispose();
        if (_groupSoftmax.IsValueCreated) _groupSoftmax.Value.Dispose();
        if (_logitNorm.IsValueCreated) _logitNorm.Value.Dispose();
        if (_fisherMixing.IsValueCreated) _fisherMixing.Value.Dispose();
    }
}
