// SGD against a double reference of PyTorch's update, in-place semantics, state round trip, parameter groups.
using Engine.Nn;
using Engine.Optim;
using Engine.Reference;
using Engine.Tests.Nn;

namespace Engine.Tests.Optim;

public class SgdTests
{
    private static Parameter RandomParameter(Generator g, string name, params int[] shape) =>
        new(name, RefTensor.Random(g, shape).ToTensor());

    private static void SetGrad(Parameter p, double[]? grad)
    {
        p.Value.ZeroGrad();
        if (grad is not null) p.Value.Grad = Tensor.FromDoubles(grad, p.Value.ShapeArray()).DetachFromScope();
    }

    // Parameters and updates are of order 1 and 0.1; over 6 steps each float32 op adds ≤ 6e-8 relative error, so
    // 1e-6 absolute + 1e-5 relative is far above rounding and far below any formula error (≥ lr·|g|·1e-2).
    [Theory]
    [InlineData(0.0, 0.0, false, 0.0)]
    [InlineData(0.0, 0.0, false, 1e-2)]
    [InlineData(0.9, 0.0, false, 0.0)]
    [InlineData(0.9, 0.0, false, 5e-2)]
    [InlineData(0.9, 0.0, true, 0.0)]
    [InlineData(0.8, 0.0, true, 1e-2)]
    [InlineData(0.9, 0.3, false, 1e-2)]
    public void MatchesTheDoubleReferenceOverSeveralSteps(double momentum, double dampening, bool nesterov, double weightDecay)
    {
        var g = TestUtil.Fresh(out var seed);
        // two groups: the second with a learning-rate multiplier and its own weight decay
        var ps = new[] { RandomParameter(g, "a", 3, 5), RandomParameter(g, "b", 7), RandomParameter(g, "c", 2, 1, 3) };
        var groups = new[] { new ParamGroup([ps[0], ps[1]]), new ParamGroup([ps[2]], lrMultiplier: 2.5, weightDecay: 0.1) };
        var sgd = new Sgd(groups, lr: 0.1, momentum, weightDecay, nesterov, dampening);
        var reference = new SgdReference(momentum, dampening, nesterov);
        var values = ps.Select(p => p.Value.ToDoubleArray()).ToArray();
        var lrs = new[] { 0.1, 0.05, 0.2, 0.2, 0.01, 0.1 };
        for (var step = 0; step < lrs.Length; step++)
        {
            sgd.Lr = lrs[step];
            for (var k = 0; k < ps.Length; k++)
            {
                // parameter b has no gradient at step 2: it is skipped and keeps its momentum buffer
                var grad = k == 1 && step == 2 ? null : RefTensor.Random(g, ps[k].Value.ShapeArray()).Data;
                SetGrad(ps[k], grad);
                reference.Step(k, values[k], grad, lrs[step] * (k == 2 ? 2.5 : 1), k == 2 ? 0.1 : weightDecay);
            }
            sgd.Step();
            for (var k = 0; k < ps.Length; k++)
                TestUtil.AssertClose(values[k], ps[k].Value.ToDoubleArray(), $"step {step} param {ps[k].Name} (μ={momentum} τ={dampening} nesterov={nesterov} wd={weightDecay})", seed, 1e-6, 1e-5);
        }
        foreach (var p in ps) p.Dispose();
    }

    [Fact]
    public void StepWritesInPlaceBumpsVersionsAndZeroGradClears()
    {
        var g = TestUtil.Fresh(out _);
        using var p = RandomParameter(g, "w", 4);
        var tensor = p.Value;
        var sgd = new Sgd([p], lr: 0.1, momentum: 0.9);
        using (var y = p.Value.Square())
        using (var s = y.Sum())
            s.Backward();
        var version = tensor.Storage.Version;
        sgd.Step();
        Assert.Same(tensor, p.Value);
        Assert.True(tensor.Storage.Version > version);
        Assert.True(p.RequiresGrad);
        sgd.ZeroGrad();
        Assert.Null(p.Grad);
    }

    [Fact]
    public void AGraphThatSavedTheParameterRefusesBackwardAfterTheStep()
    {
        var g = TestUtil.Fresh(out _);
        using var p = RandomParameter(g, "w", 4);
        var sgd = new Sgd([p], lr: 0.1);
        using (var y = p.Value.Square())
        using (var s = y.Sum())
            s.Backward();
        using var stale = p.Value.Square();     // saves p for its backward
        using var total = stale.Sum();
        sgd.Step();
        Assert.Contains("modified in place", Assert.Throws<InvalidOperationException>(() => total.Backward()).Message);
    }

    [Fact]
    public void FrozenParametersAreNotUpdated()
    {
        var g = TestUtil.Fresh(out _);
        using var model = new Sequential(new Affine(3), new Affine(3));
        model.Freeze("0.**");
        var sgd = new Sgd(model.Parameters(), lr: 0.5, momentum: 0.9, weightDecay: 0.1);
        var frozenBefore = model.Parameters()[0].Value.ToFloatArray();
        var trainedBefore = model.Parameters()[2].Value.ToFloatArray();
        using var x = RefTensor.Random(g, [2, 3]).ToTensor();
        using (var y = model.Forward(x))
        using (var s = y.Sum())
            s.Backward();
        sgd.Step();
        Assert.Equal(frozenBefore, model.Parameters()[0].Value.ToFloatArray());
        Assert.NotEqual(trainedBefore, model.Parameters()[2].Value.ToFloatArray());
        using var state = sgd.StateDict();
        Assert.Equal(["0.2.momentum_buffer", "0.3.momentum_buffer"], state.Keys);
    }

    [Fact]
    public void MomentumStateRoundTripResumesExactly()
    {
        var g = TestUtil.Fresh(out var seed);
        var gradients = Enumerable.Range(0, 6).Select(_ => new[] { RefTensor.Random(g, [5]).Data, RefTensor.Random(g, [2, 2]).Data }).ToList();
        var init = new[] { RefTensor.Random(g, [5]), RefTensor.Random(g, [2, 2]) };

        Parameter[] Fresh() => init.Select((r, i) => new Parameter($"p{i}", r.ToTensor())).ToArray();
        void Run(Sgd sgd, Parameter[] ps, int from, int to)
        {
            for (var s = from; s < to; s++)
            {
                for (var k = 0; k < ps.Length; k++) SetGrad(ps[k], gradients[s][k]);
                sgd.Step();
            }
        }

        var straight = Fresh();
        Run(new Sgd(straight, 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-3), straight, 0, 6);

        var first = Fresh();
        var sgd1 = new Sgd(first, 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-3);
        Run(sgd1, first, 0, 3);
        // a new process: fresh parameters given the saved values, a fresh optimizer given the saved state
        var resumed = Fresh();
        using (GradMode.NoGrad())
            for (var k = 0; k < first.Length; k++) resumed[k].Value.CopyFrom(first[k].Value);
        var sgd2 = new Sgd(resumed, 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-3);
        using (var state = sgd1.StateDict()) sgd2.LoadStateDict(state);
        Run(sgd2, resumed, 3, 6);
        for (var k = 0; k < straight.Length; k++)
            Assert.True(straight[k].Value.ToFloatArray().SequenceEqual(resumed[k].Value.ToFloatArray()), $"param {k} differs after resume (seed {seed})");
    }

    [Fact]
    public void LoadStateDictChecksKeysAndShapes()
    {
        var g = TestUtil.Fresh(out _);
        using var p = RandomParameter(g, "w", 3);
        var sgd = new Sgd([p], 0.1, momentum: 0.9);
        using var wrongShape = Tensor.Zeros([4]);
        var e = Assert.Throws<InvalidOperationException>(() => sgd.LoadStateDict(new Dictionary<string, Tensor> { ["0.0.momentum_buffer"] = wrongShape }));
        Assert.Contains("[4]", e.Message);
        Assert.Contains("[3]", e.Message);
        Assert.Contains("does not have", Assert.Throws<InvalidOperationException>(() =>
            sgd.LoadStateDict(new Dictionary<string, Tensor> { ["1.0.momentum_buffer"] = wrongShape })).Message);
        Assert.Contains("unexpected key 'x'", Assert.Throws<InvalidOperationException>(() =>
            sgd.LoadStateDict(new Dictionary<string, Tensor> { ["x"] = wrongShape })).Message);
    }

    [Fact]
    public void InvalidHyperParametersAreRejected()
    {
        using var p = new Parameter("w", Tensor.Zeros([2]));
        Assert.Contains("Nesterov", Assert.Throws<ArgumentException>(() => new Sgd([p], 0.1, nesterov: true)).Message);
        Assert.Contains("Nesterov", Assert.Throws<ArgumentException>(() => new Sgd([p], 0.1, momentum: 0.9, nesterov: true, dampening: 0.1)).Message);
        Assert.Contains("lr", Assert.Throws<ArgumentException>(() => new Sgd([p], -1)).Message);
        Assert.Contains("more than one group", Assert.Throws<ArgumentException>(() => new Sgd([new ParamGroup([p]), new ParamGroup([p])], 0.1)).Message);
    }

    [Fact]
    public void DefaultGroupsSeparateNormAndBiasParameters()
    {
        // detectron2 naming: a conv-like weight, a GroupNorm (weight, bias) and an affine layer (weight, bias)
        using var model = new Holder(4, ("norm", new GroupNorm(2, 4)), ("head", new Affine(4)), ("frozen", new Affine(2)));
        model.Freeze("frozen.*");
        var names = new Dictionary<Parameter, string>(ReferenceEqualityComparer.Instance);
        foreach (var (name, p) in model.NamedParameters()) names[p] = name;

        var groups = ParamGroups.Build(model, weightDecay: 1e-4, weightDecayNorm: 0, weightDecayBias: 1e-5, biasLrFactor: 2);
        var assigned = groups.SelectMany(gr => gr.Parameters.Select(p => (Name: names[p], gr.LrMultiplier, gr.WeightDecay))).ToDictionary(x => x.Name);
        Assert.Equal((1.0, (double?)1e-4), (assigned["weight"].LrMultiplier, assigned["weight"].WeightDecay));
        Assert.Equal((1.0, (double?)0), (assigned["norm.weight"].LrMultiplier, assigned["norm.weight"].WeightDecay));
        Assert.Equal((2.0, (double?)1e-5), (assigned["norm.bias"].LrMultiplier, assigned["norm.bias"].WeightDecay));
        Assert.Equal((1.0, (double?)1e-4), (assigned["head.weight"].LrMultiplier, assigned["head.weight"].WeightDecay));
        Assert.Equal((2.0, (double?)1e-5), (assigned["head.bias"].LrMultiplier, assigned["head.bias"].WeightDecay));
        Assert.Equal(5, assigned.Count);          // frozen parameters are left out
        Assert.Equal(3, groups.Count);            // equal settings merged

        // without the norm/bias options every trainable parameter shares one group
        var plain = ParamGroups.Build(model, weightDecay: 1e-4);
        Assert.Single(plain);
        Assert.Equal(5, plain[0].Parameters.Count);
    }
}
