// CudaLongTailBackend.CratTransfuse against CpuLongTailBackend.CratTransfuse on fresh random inputs (seed in every
// failure message): both queries, odd sizes, the weights-only call, one class, a batch without positives and an empty
// batch, outputs poisoned before the call and the bank copied to the GPU before the CPU updates its own; then
// CratTransfuser with its inputs on the GPU (the device path: bank, weights, transfused gradient, extra loss and mask
// term) against the same transfuser on the CPU over three steps; and, without a GPU, the bad-label record's wording.
//
// Tolerances. The bank: both sides sum the class's rows in row order in double with correctly rounded operations and
// round once, so it agrees to a float rounding (within 1e-6 relative). First-sample query: the cosines are double on
// both sides (another summation order, ~1e-16 relative), so each float output differs by at most a rounding or two:
// 1e-9 abs + 1e-6 rel. Per-sample query: the cosines come from float products over D unit-scale terms (the CPU's matmul,
// the kernel's tiles), ~1e-6 relative each, multiplied by 1/T = 20 inside exp: 1e-7 abs + 1e-4 rel (as
// FisherMixingKernelsTests). The gradient λ_b·w·sign and the row loss λ_b·Σ w·|r| (non-negative terms) inherit the
// weights' relative error.
using Engine.Cuda.Backend;
using Engine.LongTail;
using Engine.Tests;
using static Engine.Cuda.Tests.Ops.OpsParity;

namespace Engine.Cuda.Tests.Ops;

public sealed class CudaCratTransfuseTests
{
    private static (double Abs, double Rel) Tolerance(bool perSample) => perSample ? (1e-7, 1e-4) : (1e-9, 1e-6);

    private static long[] Labels(Random g, int r, int c, double background) =>
        Enumerable.Range(0, r).Select(_ => g.NextDouble() < background ? c : g.NextInt64(0, c)).ToArray();

    /// <summary>A bank (C·4D) of small positive values with every third class never seen (gate closed).</summary>
    private static float[] Bank(Random g, int c, int d)
    {
        var bank = Uniform(g, c * 4 * d, 0, 1e-3);
        for (var j = 0; j < c; j += 3) Array.Clear(bank, j * 4 * d, 4 * d);
        return bank;
    }

    public static TheoryData<bool, int, int, int, double, bool> Cases => new()
    {
        // per-sample query, classes C, embedding D, RoIs R, background fraction, bank update
        { false, 9, 16, 31, 0.5, true },
        { true, 9, 16, 31, 0.5, true },
        { false, 61, 37, 130, 0.3, false },
        { true, 61, 37, 130, 0.3, true },
        { false, 1, 5, 6, 0.3, true },
        { true, 300, 33, 17, 0.5, true },
        { false, 7, 3, 12, 1.0, true },
        { true, 4, 2, 0, 0.5, true },
    };

    [CudaTheory]
    [MemberData(nameof(Cases))]
    public void CratTransfuse(bool perSample, int c, int d, int r, double background, bool update)
    {
        var g = Fresh(out var seed);
        var parameters = new CratParameters(c, d, perSample ? CratQuery.PerSample : CratQuery.FirstSample, 0.3, CratTransfuser.DefaultTemperature, 0.05);
        using var deltas = Tensor.From<float>(Uniform(g, r * 4 * c, -2, 2), [r, 4 * c]);
        using var x = Tensor.From<float>(Uniform(g, r * d, 0, 2), [r, d]);
        using var targets = Tensor.From<float>(Uniform(g, r * 4, -2, 2), [r, 4]);
        using var labels = Tensor.From<long>(Labels(g, r, c, background), [r]);
        var fisher = Tensor.From<float>(Bank(g, c, d), [c, 4 * d]);
        var n = Math.Max(r, 1) + 2;
        var (abs, rel) = Tolerance(perSample);
        Check($"CratTransfuse perSample={perSample} C={c} D={d} R={r} background={background} update={update}", seed,
              [deltas, x, targets, labels, fisher], (device, a) =>
        {
            var (w, u, e, loss) = (Tensor.Empty([r, c], DType.Float32, device), Tensor.Empty([r, c], DType.Float32, device),
                                   Tensor.Empty([r, 4 * c], DType.Float32, device), Tensor.Empty([r], DType.Float32, device));
            LongTailBackends.For(device).CratTransfuse(parameters, a[0], a[1], a[2], a[3], n, a[4], update, w, u, e, loss);
            return [w, u, e, loss, a[4]];
        }, abs, rel);
    }

    [CudaTheory]
    [InlineData(CratQuery.FirstSample)]
    [InlineData(CratQuery.PerSample)]
    public void CratTransfuserOnTheGpuMatchesTheCpu(CratQuery query)
    {
        _ = GpuBackend;
        var g = Fresh(out var seed);
        const int c = 23, d = 19, r = 57, h = 3, wd = 5;
        const double lambda = 0.05;
        var (abs, rel) = Tolerance(query == CratQuery.PerSample);
        using var onCpu = new CratTransfuser(c, d, query, fisherRate: 0.3, boxWeight: lambda, maskWeight: 0.5);
        using var onGpu = new CratTransfuser(c, d, query, fisherRate: 0.3, boxWeight: lambda, maskWeight: 0.5);
        for (var step = 0; step < 3; step++)
        {
            var what = $"CratTransfuser {query} step {step}";
            var (deltas, x, targets) = (Uniform(g, r * 4 * c, -2, 2), Uniform(g, r * d, 0, 2), Uniform(g, r * 4, -2, 2));
            var labels = Labels(g, r, c, 0.5);
            var incoming = Normal(g, r * 4 * c, 1);
            var positives = labels.Count(l => l < c);
            var (maskLogits, maskTargets) = (Normal(g, positives * c * h * wd, 2), Uniform(g, positives * h * wd, 0, 1).Select(v => MathF.Round(v)).ToArray());

            (double[] Grad, double Extra, double[] Weights, double[] Fisher, double Mask) Run(CratTransfuser crat, Device device)
            {
                using var scope = DisposeScope.Begin();
                var dl = Tensor.From<float>(deltas, [r, 4 * c], device).RequireGrad();
                using var result = crat.Transfuse(dl, Tensor.From<float>(x, [r, d], device), Tensor.From<float>(targets, [r, 4], device),
                                                  Tensor.From<long>(labels, [r], device), r);
                Assert.Equal(device, result.BoxDeltas.Device);
                result.BoxDeltas.Backward(Tensor.From<float>(incoming, [r, 4 * c], device));
                Assert.Equal(device, dl.Grad!.Device);
                using var f = crat.Fisher();
                var mask = crat.MaskTransfusionLoss(Tensor.From<float>(maskLogits, [positives, c, h, wd], device),
                                                    Tensor.From<float>(maskTargets, [positives, h, wd], device));
                return (dl.Grad.ToDoubleArray(), result.ExtraLoss, crat.LastWeights!, f.ToDoubleArray(), mask.Item());
            }

            var expected = Run(onCpu, Engine.Device.Cpu);
            var actual = Run(onGpu, GpuDevice);
            Close(expected.Fisher, actual.Fisher, 1e-12, 1e-6, "bank");
            Close(expected.Weights, actual.Weights, abs, rel, "weights");
            // incoming + extra: the extra part's error, plus a float rounding of the sum
            Close(expected.Grad, actual.Grad, lambda * abs + 1e-7, rel, "transfused gradient");
            // the device sums float32 row losses: 6e-8 relative more than the weights' error
            Close([expected.Extra], [actual.Extra], abs, rel + 1e-7, "extra loss");
            // the mask term weights the float32 ungated weights the device kept
            Close([expected.Mask], [actual.Mask], abs, rel + 1e-6, "mask transfusion loss");

            void Close(double[] e, double[] a, double atol, double rtol, string name)
            {
                Assert.Equal(e.Length, a.Length);
                for (var i = 0; i < e.Length; i++)
                    if (!(Math.Abs(a[i] - e[i]) <= atol + rtol * Math.Abs(e[i])))
                        Assert.Fail($"{what}: {name} element {i} of {e.Length} is {a[i]:G9} on the GPU, {e[i]:G9} on the CPU (tolerance {atol} + {rtol}·|cpu|; seed {seed})");
            }
        }
    }

    [Fact]
    public void BadLabelRecordReadsAsTheCpuBackendsMessage()
    {
        const int r = 3, d = 2, c = 4;
        var parameters = new CratParameters(c, d, CratQuery.FirstSample, 0.5, 0.05, 1);
        using var fisher = Tensor.Zeros([c, 4 * d]);
        using var deltas = Tensor.Zeros([r, 4 * c]);
        using var x = Tensor.Zeros([r, d]);
        using var targets = Tensor.Zeros([r, 4]);
        using var labels = Tensor.From<long>([0, c, -2], [r]);
        using var w = Tensor.Empty([r, c]);
        using var e = Tensor.Empty([r, 4 * c]);
        using var loss = Tensor.Empty([r]);
        var cpu = Assert.Throws<ArgumentException>(() => LongTailBackends.Cpu.CratTransfuse(parameters, deltas, x, targets, labels, r, fisher, true, w, null, e, loss));
        // what lt_crat_row_loss_kernel records for row 2
        var record = new EngineError { Code = (int)DeviceErrorLog.ErrorCode.LabelOutOfRange, Op = (int)DeviceErrorLog.Op.CratTransfuse, Value = -2, Position = 2, Limit = c };
        var gpu = Assert.IsType<ArgumentException>(DeviceErrorLog.Describe(record));
        Assert.StartsWith(cpu.Message, gpu.Message);
    }
}
