// FrozenBatchNorm2d, GroupNorm and BatchNorm2d modules against the double references (NormReference, NormalizationReference), forward and backward.
using Engine.Nn;
using Engine.Optim;
using Engine.Reference;
using Engine.Serialization;

namespace Engine.Tests.Nn;

public class NormLayerTests
{
    // float32 forward/backward against double: a handful of float32 roundings per element (mean, variance, sqrt,
    // divide) of values of order 1 → a few 1e-7 relative; 2e-5 absolute + 1e-4 relative leaves a wide margin while
    // still catching any wrong index or formula (errors of order 1e-1).
    private const double Atol = 2e-5, Rtol = 1e-4;

    private static void SetRandom(Tensor t, Generator g, double lo, double hi)
    {
        using (GradMode.NoGrad()) Init.Uniform(t, g, lo, hi);
    }

    // ---- FrozenBatchNorm2d ----

    [Fact]
    public void FrozenBatchNormMatchesTheReferenceForwardAndBackward()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (n, c, h, w) in new[] { (2, 3, 5, 7), (1, 1, 1, 1), (3, 17, 2, 9), (0, 4, 3, 3) })
        {
            using var bn = RandomFrozen(c, g);
            var (wt, bs, mean, var) = Buffers(bn);
            var rx = RefTensor.Random(g, [n, c, h, w], -3, 3);
            var u = RefTensor.Random(g, [n, c, h, w]);
            using var x = TestUtil.NonContiguous(rx).RequireGrad();
            using var y = bn.Forward(x);
            var what = $"frozen_bn {ShapeUtil.Format(rx.Shape)}";
            TestUtil.AssertClose(new RefTensor(rx.Shape, NormReference.FrozenBatchNormForward(rx.Data, n, c, h * w, wt, bs, mean, var, 1e-5)), y, what, seed, Atol, Rtol);
            using var gy = u.ToTensor();
            y.Backward(gy);
            TestUtil.AssertClose(new RefTensor(rx.Shape, NormReference.FrozenBatchNormBackward(u.Data, n, c, h * w, wt, var, 1e-5)), x.Grad!, what + " dx", seed, Atol, Rtol);
            Assert.All(bn.NamedBuffers(), b => Assert.Null(b.Buffer.Value.Grad));
        }
    }

    [Fact]
    public void FrozenBatchNormWithReluMatchesTheReferenceAndTheUnfusedLayers()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (n, c, h, w) in new[] { (2, 3, 5, 7), (1, 1, 1, 1), (3, 17, 2, 9), (0, 4, 3, 3) })
        {
            using var bn = RandomFrozen(c, g);
            var (wt, bs, mean, var) = Buffers(bn);
            var rx = RefTensor.Random(g, [n, c, h, w], -3, 3);
            if (rx.Data.Length > 2) rx.Data[1] = double.NaN;   // a NaN stays NaN through the ReLU
            var u = RefTensor.Random(g, [n, c, h, w]);
            using var x = TestUtil.NonContiguous(rx).RequireGrad();
            using var y = bn.Forward(x, relu: true);
            var what = $"frozen_bn+relu {ShapeUtil.Format(rx.Shape)}";
            TestUtil.AssertClose(new RefTensor(rx.Shape, NormReference.FrozenBatchNormReluForward(rx.Data, n, c, h * w, wt, bs, mean, var, 1e-5)), y, what, seed, Atol, Rtol);
            using var gy = u.ToTensor();
            y.Backward(gy);
            var dx = NormReference.FrozenBatchNormReluBackward(u.Data, rx.Data, n, c, h * w, wt, bs, mean, var, 1e-5);
            TestUtil.AssertClose(new RefTensor(rx.Shape, dx), x.Grad!, what + " dx", seed, Atol, Rtol);

            // the same bits as the layer and a separate ReLU, forward and backward
            using var x2 = TestUtil.NonContiguous(rx).RequireGrad();
            using var normalized = bn.Forward(x2);
            using var y2 = normalized.Relu();
            y2.Backward(gy);
            Assert.Equal(y2.ToFloatArray(), y.ToFloatArray());
            Assert.Equal(x2.Grad!.ToFloatArray(), x.Grad!.ToFloatArray());
        }
    }

    /// <summary>A FrozenBatchNorm2d with random weight, bias, running mean and (positive) running variance.</summary>
    private static FrozenBatchNorm2d RandomFrozen(int c, Generator g)
    {
        var bn = new FrozenBatchNorm2d(c);
        SetRandom(bn.Weight, g, -2, 2);
        SetRandom(bn.Bias, g, -1, 1);
        SetRandom(bn.RunningMean, g, -1, 1);
        SetRandom(bn.RunningVar, g, 0.1, 3);
        return bn;
    }

    /// <summary>The layer's weight, bias, running mean and running variance in double, for the reference.</summary>
    private static (double[] Weight, double[] Bias, double[] Mean, double[] Var) Buffers(FrozenBatchNorm2d bn) =>
        (bn.Weight.Value.ToDoubleArray(), bn.Bias.Value.ToDoubleArray(), bn.RunningMean.Value.ToDoubleArray(), bn.RunningVar.Value.ToDoubleArray());

    [Fact]
    public void FrozenBatchNormSeesEveryChangeOfItsBuffersBetweenCalls()
    {
        // scale and shift are kept between calls; each way a buffer changes must reach the next forward
        var g = TestUtil.Fresh(out var seed);
        var (n, c, h, w) = (2, 3, 4, 5);
        using var bn = new FrozenBatchNorm2d(c);
        var rx = RefTensor.Random(g, [n, c, h, w], -3, 3);
        using var x = rx.ToTensor();
        void Check(string what)
        {
            var (wt, bs, mean, var) = Buffers(bn);
            using var y = bn.Forward(x);
            TestUtil.AssertClose(new RefTensor(rx.Shape, NormReference.FrozenBatchNormForward(rx.Data, n, c, h * w, wt, bs, mean, var, 1e-5)), y, what, seed, Atol, Rtol);
        }

        Check("fresh (identity)");
        Check("the same buffers again");
        using (GradMode.NoGrad()) bn.Weight.Value.Fill(2);
        Check("weight filled");
        SetRandom(bn.RunningMean, g, -1, 1);
        Check("running mean written (CopyFrom)");
        using var other = new FrozenBatchNorm2d(c);
        SetRandom(other.Bias, g, -1, 1);
        SetRandom(other.RunningVar, g, 0.1, 3);
        bn.LoadStateDict(other.StateDict());
        Check("state loaded");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void FrozenBatchNormReferenceBackwardPassesGradcheck(bool relu)
    {
        var g = TestUtil.Fresh(out var seed);
        var (n, c, s) = (2, 3, 4);
        var wt = RefTensor.Random(g, [c]).Data;
        var mean = RefTensor.Random(g, [c]).Data;
        var bs = RefTensor.Random(g, [c]).Data;
        var var = RefTensor.Random(g, [c], 0.2, 2).Data;
        var result = Gradcheck.Check(
            inp => relu ? NormReference.FrozenBatchNormReluForward(inp[0], n, c, s, wt, bs, mean, var, 1e-5)
                        : NormReference.FrozenBatchNormForward(inp[0], n, c, s, wt, bs, mean, var, 1e-5),
            (inp, dy) => [relu ? NormReference.FrozenBatchNormReluBackward(dy, inp[0], n, c, s, wt, bs, mean, var, 1e-5)
                               : NormReference.FrozenBatchNormBackward(dy, n, c, s, wt, var, 1e-5)],
            [RefTensor.Random(g, [n * c * s]).Data], g);
        Assert.True(result.Passed, $"{result} (seed {seed})");
    }

    [Fact]
    public void FrozenBatchNormHasDetectron2BufferNamesAndNoParameters()
    {
        using var bn = new FrozenBatchNorm2d(8);
        Assert.Empty(bn.Parameters());
        Assert.Equal(["weight", "bias", "running_mean", "running_var"], bn.NamedBuffers().Select(b => b.Name));
        Assert.IsAssignableFrom<INormLayer>(bn);
        using var x = Tensor.Zeros([1, 5, 2, 2]);
        var e = Assert.Throws<ArgumentException>(() => bn.Forward(x));
        Assert.Contains("FrozenBatchNorm2d(8)", e.Message);
        Assert.Contains("[1, 5, 2, 2]", e.Message);
        using var doubles = Tensor.Zeros([1, 8, 2, 2], DType.Int32);
        var d = Assert.Throws<ArgumentException>(() => bn.Forward(doubles));
        Assert.Contains("FrozenBatchNorm2d(8): expected a float32 input", d.Message);
    }

    // ---- GroupNorm ----

    public static TheoryData<int[], int, bool> GroupNormCases => new()
    {
        { [2, 6, 5, 3], 3, true },
        { [3, 8, 7], 2, true },             // (N, C, L)
        { [1, 4, 3, 3, 2], 4, true },       // 3-D spatial, one channel per group
        { [2, 5, 9], 1, false },            // one group = layer norm over (C, L), no affine
        { [4, 6], 6, true },                // (N, C): groups of size one normalize to 0, y = bias
        { [2, 12, 11, 13], 4, true },       // big enough for parallel reductions
        { [0, 4, 3], 2, true },             // empty batch
    };

    [Theory]
    [MemberData(nameof(GroupNormCases))]
    public void GroupNormMatchesTheReferenceForwardAndBackward(int[] shape, int groups, bool affine)
    {
        var g = TestUtil.Fresh(out var seed);
        var (n, c) = (shape[0], shape[1]);
        var s = (int)ShapeUtil.Numel(shape.AsSpan(2));
        using var gn = new GroupNorm(groups, c, 1e-5, affine);
        double[]? wt = null, bs = null;
        if (affine)
        {
            SetRandom(gn.Weight!, g, -2, 2);
            SetRandom(gn.Bias!, g, -1, 1);
            (wt, bs) = (gn.Weight!.Value.ToDoubleArray(), gn.Bias!.Value.ToDoubleArray());
        }
        else Assert.Empty(gn.Parameters());
        // a common offset makes the mean matter; unit-scale spread keeps the variance well conditioned in float32
        var rx = RefTensor.Random(g, shape, -1, 1).Map(v => v + 0.5);
        using var x = TestUtil.NonContiguous(rx).RequireGrad();
        using var y = gn.Forward(x);
        var what = $"group_norm G={groups} {ShapeUtil.Format(shape)}";
        TestUtil.AssertClose(new RefTensor(shape, NormalizationReference.GroupNormForward(rx.Data, n, c, s, groups, wt, bs, 1e-5)), y, what, seed, Atol, Rtol);

        var u = RefTensor.Random(g, shape);
        using var gy = u.ToTensor();
        y.Backward(gy);
        var (dx, dw, db) = NormalizationReference.GroupNormBackward(rx.Data, n, c, s, groups, wt, 1e-5, u.Data);
        // dx is a difference of sums over the group (Σ dx̂, Σ dx̂·x̂) scaled by 1/σ: allow the sums' rounding
        TestUtil.AssertClose(new RefTensor(shape, dx), x.Grad!, what + " dx", seed, 1e-4, 1e-3);
        if (affine)
        {
            TestUtil.AssertClose(new RefTensor([c], dw), gn.Weight!.Grad!, what + " dweight", seed, 1e-4, Rtol);
            TestUtil.AssertClose(new RefTensor([c], db), gn.Bias!.Grad!, what + " dbias", seed, 1e-4, Rtol);
        }
    }

    [Fact]
    public void GroupNormGroupsOfSizeOneGiveTheBias()
    {
        var g = TestUtil.Fresh(out var seed);
        using var gn = new GroupNorm(3, 3);
        SetRandom(gn.Bias!, g, -1, 1);
        using var x = RefTensor.Random(g, [2, 3, 1, 1]).ToTensor();
        using var y = gn.Forward(x);
        var b = gn.Bias!.Value.ToDoubleArray();
        TestUtil.AssertClose([b[0], b[1], b[2], b[0], b[1], b[2]], y.ToDoubleArray(), "group of one element", seed, 0, 0);
    }

    [Fact]
    public void GroupNormRejectsBadConfigurationsAndInputs()
    {
        Assert.Contains("10 channels cannot be split into 4 groups", Assert.Throws<ArgumentException>(() => new GroupNorm(4, 10)).Message);
        using var gn = new GroupNorm(2, 4);
        Assert.Equal(["weight", "bias"], gn.NamedParameters().Select(p => p.Name));
        Assert.IsAssignableFrom<INormLayer>(gn);
        using var x = Tensor.Zeros([2, 6, 3]);
        var e = Assert.Throws<ArgumentException>(() => gn.Forward(x));
        Assert.Contains("GroupNorm(2, 4)", e.Message);
        Assert.Contains("[2, 6, 3]", e.Message);
    }

    // ---- BatchNorm2d ----

    [Fact]
    public void BatchNormHasPyTorchNamesAndStartsAtUnitStatistics()
    {
        using var bn = new BatchNorm2d(6);
        Assert.Equal(["weight", "bias"], bn.NamedParameters().Select(p => p.Name));
        Assert.Equal(["running_mean", "running_var", "num_batches_tracked"], bn.NamedBuffers().Select(b => b.Name));
        Assert.Equal(DType.Int64, bn.NumBatchesTracked.Value.DType);
        Assert.Equal(0, bn.NumBatchesTracked.Value.Rank);
        Assert.Equal(new double[6], bn.RunningMean.Value.ToDoubleArray());
        Assert.Equal(Enumerable.Repeat(1.0, 6), bn.RunningVar.Value.ToDoubleArray());
        Assert.IsAssignableFrom<INormLayer>(bn);
        using var x = Tensor.Zeros([2, 5, 3, 3]);
        var e = Assert.Throws<ArgumentException>(() => bn.Forward(x));
        Assert.Contains("BatchNorm2d(6)", e.Message);
        Assert.Contains("[2, 5, 3, 3]", e.Message);
    }

    [Fact]
    public void BatchNormTrainsOnBatchStatisticsAndEvaluatesOnRunningStatistics()
    {
        var g = TestUtil.Fresh(out var seed);
        var (n, c, h, w) = (4, 3, 5, 6);
        using var bn = new BatchNorm2d(c);
        SetRandom(bn.Weight, g, 0.5, 2);
        SetRandom(bn.Bias, g, -1, 1);
        var (wt, bs) = (bn.Weight.Value.ToDoubleArray(), bn.Bias.Value.ToDoubleArray());
        var rx = RefTensor.Random(g, [n, c, h, w], -1, 3);
        using var x = rx.ToTensor();

        // training: the batch's own statistics, and the running ones move 10 % toward them; the counter counts it
        using var yTrain = bn.Forward(x);
        TestUtil.AssertClose(new RefTensor(rx.Shape, NormalizationReference.BatchNormTrainForward(rx.Data, n, c, h * w, wt, bs, 1e-5)),
                             yTrain, "train mode", seed, Atol, Rtol);
        var (mean, variance) = NormalizationReference.BatchNormStatistics(rx.Data, n, c, h * w);
        var (rm, rv) = (new double[c], Enumerable.Repeat(1.0, c).ToArray());
        NormalizationReference.BatchNormRunningUpdate(rm, rv, mean, variance, n * h * w, 0.1);
        TestUtil.AssertClose(rm, bn.RunningMean.Value.ToDoubleArray(), "running_mean", seed, 1e-6, 1e-5);
        TestUtil.AssertClose(rv, bn.RunningVar.Value.ToDoubleArray(), "running_var", seed, 1e-6, 1e-5);
        Assert.Equal(1, bn.NumBatchesTracked.Value.Item());

        // evaluation: the running statistics, which are far from the batch's after one step, so the outputs differ
        bn.Eval();
        using var yEval = bn.Forward(x);
        var (runMean, runVar) = (bn.RunningMean.Value.ToDoubleArray(), bn.RunningVar.Value.ToDoubleArray());
        TestUtil.AssertClose(new RefTensor(rx.Shape, NormalizationReference.BatchNormForward(rx.Data, n, c, h * w, runMean, runVar, wt, bs, 1e-5)),
                             yEval, "eval mode", seed, Atol, Rtol);
        var maxDifference = yTrain.ToDoubleArray().Zip(yEval.ToDoubleArray(), (a, b) => Math.Abs(a - b)).Max();
        Assert.True(maxDifference > 0.1, $"train and eval outputs differ by at most {maxDifference} (seed {seed})");
        Assert.Equal(runMean, bn.RunningMean.Value.ToDoubleArray());
        Assert.Equal(runVar, bn.RunningVar.Value.ToDoubleArray());
        Assert.Equal(1, bn.NumBatchesTracked.Value.Item());
    }
}

/// <summary>Checkpoint and resume of a network with BatchNorm2d. Its convolutions run through oneDNN, whose route (and
/// so its rounding) follows the process-wide layout policy that other tests of the "OneDnn" collection change; the
/// collection keeps them from running at the same time as this bit-for-bit comparison.</summary>
[Collection("OneDnn")]
public sealed class BatchNormResumeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("engine-bn-resume-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A small convolutional network with BatchNorm2d, so that training moves every BN buffer.</summary>
    private sealed class ConvBnNet : Module<Tensor, Tensor>
    {
        public ConvBnNet(Generator g)
        {
            Conv = RegisterModule("conv", new Conv2d(2, 4, 3, g, padding: 1, bias: false, norm: new BatchNorm2d(4), relu: true));
            Head = RegisterModule("head", new Conv2d(4, 1, 1, g));
        }

        public Conv2d Conv { get; }
        public Conv2d Head { get; }

        public override Tensor Forward(Tensor input)
        {
            using var h = Conv.Forward(input);
            return Head.Forward(h);
        }
    }

    private static List<double> TrainConvBn(ConvBnNet model, Sgd sgd, Tensor x, Tensor target, int steps)
    {
        var losses = new List<double>();
        for (var it = 0; it < steps; it++)
        {
            using var scope = DisposeScope.Begin();
            sgd.ZeroGrad();
            var loss = model.Forward(x).Sub(target).Square().Mean();
            loss.Backward();
            sgd.Step();
            losses.Add(loss.Item());
        }
        return losses;
    }

    [Fact]
    public void BatchNormBuffersAreCheckpointedAndResumeIsBitIdentical()
    {
        // 12 steps straight against 6, a checkpoint through safetensors files (model with its BN buffers, optimizer),
        // and 6 more in fresh objects: every parameter and buffer must agree bit for bit.
        var g = new Generator(7);
        using var x = Tensor.Randn([4, 2, 6, 6], g);
        using var target = Tensor.Randn([4, 1, 6, 6], g);
        Sgd Optimizer(Module m) => new(ParamGroups.Build(m, weightDecay: 1e-4), lr: 0.05, momentum: 0.9);

        using var straight = new ConvBnNet(new Generator(1));
        var straightLosses = TrainConvBn(straight, Optimizer(straight), x, target, 12);

        using var first = new ConvBnNet(new Generator(1));
        var sgd = Optimizer(first);
        var losses = TrainConvBn(first, sgd, x, target, 6);
        var modelPath = Path.Combine(_dir, "model.safetensors");
        var optimizerPath = Path.Combine(_dir, "optimizer.safetensors");
        first.Save(modelPath);
        using (var state = sgd.StateDict()) SafeTensors.Save(optimizerPath, state);
        using (var file = SafeTensors.Load(modelPath))
        {
            Assert.Contains("conv.norm.running_mean", file.Keys);
            Assert.Contains("conv.norm.running_var", file.Keys);
            Assert.Equal(6, file["conv.norm.num_batches_tracked"].Item());
        }

        using var resumed = new ConvBnNet(new Generator(99));
        resumed.Load(modelPath);
        var sgd2 = Optimizer(resumed);
        using (var state = SafeTensors.Load(optimizerPath)) sgd2.LoadStateDict(state);
        losses.AddRange(TrainConvBn(resumed, sgd2, x, target, 6));

        Assert.Equal(straightLosses, losses);
        using var a = straight.StateDict();
        using var b = resumed.StateDict();
        Assert.Equal(a.Keys, b.Keys);
        foreach (var key in a.Keys)
            Assert.True(a[key].ToDoubleArray().SequenceEqual(b[key].ToDoubleArray()), $"{key} differs after resume");
        Assert.Equal(12, b["conv.norm.num_batches_tracked"].Item());
    }
}
