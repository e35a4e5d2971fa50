// kernels/fisher_mixing.cu on a GPU against CratTransfuser (the CPU implementation, itself tested against
// CratReference): the Fisher bank after two consecutive steps from a random bank with closed gates, the gated weights,
// the transfused gradient and the extra loss, for both query modes; the ungated (mask-term) weights against
// CratReference.UngatedWeights; the weights-only call (no bank update); a batch without positives; one class; and
// outputs poisoned with NaN.
using Engine.Cuda.Kernels;
using Engine.LongTail;
using Engine.LongTail.Reference;
using Engine.Tests;
using static Engine.Cuda.Tests.Kernels.KernelTestSupport;

namespace Engine.Cuda.Tests.Kernels;

public sealed class FisherMixingKernelsTests
{
    // The bank update repeats the CPU's double sums in the same row order with correctly rounded operations, so it
    // matches to the last bit; 1e-6 relative only tolerates a different rounding of the one-step double expression.
    private const double FisherAbs = 1e-12, FisherRel = 1e-6;

    // Weights: softmax of cos/T with T = 0.05 (logits up to 20). First sample: cos in double, weights rounded to
    // float: 1e-6 relative. Per sample: cos from a float product over D terms of unit-scale operands (error ~1e-6,
    // as the CPU's float matmul has its own), times 1/T = 20 inside exp: 1e-4 relative, 1e-7 absolute.
    private static (double Abs, double Rel) WeightTolerance(bool perSample) => perSample ? (1e-7, 1e-4) : (1e-9, 1e-6);

    public static TheoryData<bool, int, int, int> Cases => new()
    {
        // per-sample query, classes C, embedding D, RoIs R
        { false, 9, 16, 31 },
        { true, 9, 16, 31 },
        { false, 61, 37, 130 },
        { true, 61, 37, 130 },
        { false, 1, 5, 6 },
        { true, 300, 33, 17 },
    };

    [CudaTheory]
    [MemberData(nameof(Cases))]
    public void TwoStepsMatchCratTransfuser(bool perSample, int classes, int dim, int rois)
    {
        var random = new SeededRandom();
        var query = perSample ? CratQuery.PerSample : CratQuery.FirstSample;
        var spec = new CratSpec(classes, dim, perSample, CratTransfuser.DefaultFisherRate, CratTransfuser.DefaultTemperature, CratTransfuser.DefaultBoxWeight);
        // a random bank with every third class never seen (row 0: gate closed)
        var bank = random.Uniform((long)classes * 4 * dim, 0, 1e-3);
        for (var c = 0; c < classes; c += 3) Array.Clear(bank, c * 4 * dim, 4 * dim);
        using var cpu = new CratTransfuser(classes, dim, query);
        using (var state = Tensor.From(bank, [classes, 4 * dim])) cpu.LoadStateDict(new Dictionary<string, Tensor> { ["fisher_box"] = state });
        using var fisher = Upload(bank);

        for (var step = 0; step < 2; step++)
        {
            var context = $"{query} C={classes} D={dim} R={rois} step {step}";
            var batch = RandomBatch(random, rois, classes, dim);
            var expected = CpuStep(cpu, batch, rois, classes, dim);
            using var outputs = new GpuOutputs(rois, classes);
            using var inputs = new GpuInputs(batch, rois, classes, dim);
            FisherMixing.Transfuse(spec, inputs.Deltas, inputs.Embeddings, inputs.Targets, inputs.Labels, rois, fisher, updateFisher: true,
                                   outputs.Weights, outputs.Ungated, outputs.Extra, outputs.RowLoss);

            using (var cpuFisher = cpu.Fisher())
                AssertClose(Doubles(cpuFisher.ToArray<float>()), fisher.ToArray(), FisherAbs, FisherRel, $"{context} Fisher bank", random.Seed, guard: false);
            var (abs, rel) = WeightTolerance(perSample);
            AssertClose(expected.Weights, outputs.Weights.ToArray(), abs, rel, $"{context} weights", random.Seed);
            AssertClose(expected.Extra, outputs.Extra.ToArray(), CratTransfuser.DefaultBoxWeight * abs, rel, $"{context} gradient", random.Seed);
            var loss = outputs.RowLoss.ToArray();
            Assert.True(double.IsNaN(loss[^1]), $"{context}: row loss guard overwritten (seed {random.Seed})");
            var total = loss.Take(rois).Sum();
            Assert.True(Math.Abs(total - expected.Loss) <= 1e-12 + rel * Math.Abs(expected.Loss),
                $"{context}: extra loss {total:R}, CratTransfuser {expected.Loss:R} (seed {random.Seed})");

            // ungated weights: the mask term's, positives' rows against the double definition on the updated bank
            using var bankNow = cpu.Fisher();
            var ungated = CratReference.UngatedWeights(query, Doubles(bankNow.ToArray<float>()), Doubles(batch.Embeddings), Doubles(batch.Deltas),
                                                       Doubles(batch.Targets), batch.Labels, dim, classes, rois, CratTransfuser.DefaultTemperature);
            var positives = Enumerable.Range(0, rois).Where(n => batch.Labels[n] < classes).ToArray();
            var expectedUngated = new double[rois * classes];
            for (var p = 0; p < positives.Length; p++) Array.Copy(ungated, p * classes, expectedUngated, positives[p] * classes, classes);
            AssertClose(expectedUngated, outputs.Ungated.ToArray(), abs, rel, $"{context} ungated weights", random.Seed);

            // the weights-only call reads the bank it was given and leaves it alone
            var before = fisher.ToArray();
            using var again = new GpuOutputs(rois, classes);
            FisherMixing.Transfuse(spec, inputs.Deltas, inputs.Embeddings, inputs.Targets, inputs.Labels, rois, fisher, updateFisher: false,
                                   again.Weights, null, again.Extra, again.RowLoss);
            Assert.Equal(before, fisher.ToArray());
            using var cpuWeights = cpu.Weights(batch.DeltasTensor, batch.EmbeddingsTensor, batch.TargetsTensor, batch.LabelsTensor, rois);
            AssertClose(Doubles(cpuWeights.ToArray<float>()), again.Weights.ToArray(), abs, rel, $"{context} weights without update", random.Seed);
            batch.Dispose();
        }
    }

    [CudaFact]
    public void BatchWithoutPositivesLeavesTheBankAndWritesZeros()
    {
        var random = new SeededRandom();
        const int classes = 5, dim = 8, rois = 9;
        var spec = new CratSpec(classes, dim, false, 0.01, 0.05, 0.001);
        var bank = random.Uniform(classes * 4 * dim, 0, 1e-3);
        using var fisher = Upload(bank);
        using var batch = RandomBatch(random, rois, classes, dim, background: true);
        using var inputs = new GpuInputs(batch, rois, classes, dim);
        using var outputs = new GpuOutputs(rois, classes);
        FisherMixing.Transfuse(spec, inputs.Deltas, inputs.Embeddings, inputs.Targets, inputs.Labels, rois, fisher, true,
                               outputs.Weights, outputs.Ungated, outputs.Extra, outputs.RowLoss);
        Assert.Equal(bank, fisher.ToArray());
        AssertClose(new double[rois * classes], outputs.Weights.ToArray(), 0, 0, "weights", random.Seed);
        AssertClose(new double[rois * 4 * classes], outputs.Extra.ToArray(), 0, 0, "gradient", random.Seed);
        Assert.All(outputs.RowLoss.ToArray().Take(rois), v => Assert.Equal(0.0, v));
    }

    [CudaFact]
    public void BadArgumentsAreRejected()
    {
        using var deltas = GpuContext.Device.Allocate<float>(3 * 8);
        using var x = GpuContext.Device.Allocate<float>(3 * 4);
        using var t = GpuContext.Device.Allocate<float>(3 * 4);
        using var labels = GpuContext.Device.Allocate<long>(3);
        using var fisher = GpuContext.Device.Allocate<float>(2 * 16);
        using var weights = GpuContext.Device.Allocate<float>(6);
        using var extra = GpuContext.Device.Allocate<float>(24);
        using var loss = GpuContext.Device.Allocate<double>(3);
        var spec = new CratSpec(2, 4, false, 0.01, 0.05, 0.001);
        var shape = Assert.Throws<ArgumentException>(() => FisherMixing.Transfuse(spec with { Classes = 3 }, DeviceView.Dense(deltas, 3, 8),
            DeviceView.Dense(x, 3, 4), DeviceView.Dense(t, 3, 4), labels, 3, fisher, true, weights, null, extra, loss));
        Assert.Contains("(R, 4C) = (R, 12)", shape.Message);
        var normalizer = Assert.Throws<ArgumentException>(() => FisherMixing.Transfuse(spec, DeviceView.Dense(deltas, 3, 8),
            DeviceView.Dense(x, 3, 4), DeviceView.Dense(t, 3, 4), labels, 2, fisher, true, weights, null, extra, loss));
        Assert.Contains("normalizer N = 2", normalizer.Message);
        var alias = Assert.Throws<ArgumentException>(() => FisherMixing.Transfuse(spec, DeviceView.Dense(deltas, 3, 8),
            DeviceView.Dense(x, 3, 4), DeviceView.Dense(t, 3, 4), labels, 3, fisher, true, weights, null, deltas, loss));
        Assert.Contains("extraGradient and deltas", alias.Message);
    }

    private sealed class Batch : IDisposable
    {
        public required float[] Deltas, Embeddings, Targets;
        public required long[] Labels;
        public required Tensor DeltasTensor, EmbeddingsTensor, TargetsTensor, LabelsTensor;

        public void Dispose()
        {
            DeltasTensor.Dispose();
            EmbeddingsTensor.Dispose();
            TargetsTensor.Dispose();
            LabelsTensor.Dispose();
        }
    }

    /// <summary>R RoIs: about a third background, labels drawn from the first half of the classes (so some classes
    /// are absent), embeddings ≥ 0 (after ReLU, a few exact zeros), deltas and targets in [-1, 1].</summary>
    private static Batch RandomBatch(SeededRandom random, int rois, int classes, int dim, bool background = false)
    {
        var labels = Enumerable.Range(0, rois)
            .Select(n => background || random.Random.Next(3) == 0 ? classes : random.Random.Next(Math.Max(1, (classes + 1) / 2))).Select(v => (long)v).ToArray();
        var x = random.Uniform((long)rois * dim, 0, 2);
        for (var i = 0; i < x.Length; i += 7) x[i] = 0;
        var deltas = random.Uniform((long)rois * 4 * classes, -1, 1);
        var targets = random.Uniform((long)rois * 4, -1, 1);
        return new Batch
        {
            Deltas = deltas, Embeddings = x, Targets = targets, Labels = labels,
            DeltasTensor = Tensor.From(deltas, [rois, 4 * classes]), EmbeddingsTensor = Tensor.From(x, [rois, dim]),
            TargetsTensor = Tensor.From(targets, [rois, 4]), LabelsTensor = Tensor.From(labels, [rois]),
        };
    }

    /// <summary>One CratTransfuser step: its weights (R·C), the transfused gradient (R·4C: the backward of its output
    /// under a zero upstream gradient) and the extra loss.</summary>
    private static (double[] Weights, double[] Extra, double Loss) CpuStep(CratTransfuser cpu, Batch batch, int rois, int classes, int dim)
    {
        using var deltas = batch.DeltasTensor.Clone();
        deltas.RequireGrad();
        using var result = cpu.Transfuse(deltas, batch.EmbeddingsTensor, batch.TargetsTensor, batch.LabelsTensor, rois);
        using var zero = Tensor.Zeros([rois, 4 * classes]);
        result.BoxDeltas.Backward(zero);
        var extra = deltas.Grad is null ? new double[rois * 4 * classes] : Doubles(deltas.Grad.ToArray<float>());
        return (cpu.LastWeights!, extra, result.ExtraLoss);
    }

    private sealed class GpuInputs(Batch batch, int rois, int classes, int dim) : IDisposable
    {
        private readonly DeviceBuffer<float> _deltas = Upload(batch.Deltas), _x = Upload(batch.Embeddings), _t = Upload(batch.Targets);
        public DeviceBuffer<long> Labels { get; } = Upload(batch.Labels);
        public DeviceView Deltas => DeviceView.Dense(_deltas, rois, 4 * classes);
        public DeviceView Embeddings => DeviceView.Dense(_x, rois, dim);
        public DeviceView Targets => DeviceView.Dense(_t, rois, 4);

        public void Dispose()
        {
            _deltas.Dispose();
            _x.Dispose();
            _t.Dispose();
            Labels.Dispose();
        }
    }

    private sealed class GpuOutputs(int rois, int classes) : IDisposable
    {
        public DeviceBuffer<float> Weights { get; } = GpuContext.Poisoned((long)rois * classes);
        public DeviceBuffer<float> Ungated { get; } = GpuContext.Poisoned((long)rois * classes);
        public DeviceBuffer<float> Extra { get; } = GpuContext.Poisoned((long)rois * 4 * classes);
        public DeviceBuffer<double> RowLoss { get; } = Poisoned(rois, double.NaN);

        public void Dispose()
        {
            Weights.Dispose();
            Ungated.Dispose();
            Extra.Dispose();
            RowLoss.Dispose();
        }
    }
}
