// Module tree behaviour: dotted names, sharing, freezing by glob, train/eval, state dicts and their errors, Sequential.
using Engine.Nn;
using Engine.Reference;

namespace Engine.Tests.Nn;

public class ModuleTests
{
    /// <summary>A detectron2-shaped tree: backbone.{stem.conv1, res2.{0,1}.conv1} with norms.</summary>
    private static Holder Backbone()
    {
        Holder Conv(int c, Module norm) => new(c, ("norm", norm));
        var stem = new Holder(4, ("conv1", Conv(4, new FrozenBatchNorm2d(4))));
        var res2 = new Sequential(new Block(Conv(6, new GroupNorm(2, 6))), new Block(Conv(6, new GroupNorm(3, 6))));
        return new Holder(1, ("backbone", new Holder(2, ("stem", stem), ("res2", res2))));
    }

    private sealed class Block : Module<Tensor, Tensor>
    {
        public Block(Module conv) => RegisterModule("conv1", conv);
        public override Tensor Forward(Tensor input) => input.Relu();
    }

    [Fact]
    public void NamesAreDottedOwnEntriesFirstInRegistrationOrder()
    {
        using var model = Backbone();
        Assert.Equal(
        [
            "weight", "backbone.weight", "backbone.stem.weight", "backbone.stem.conv1.weight",
            "backbone.res2.0.conv1.weight", "backbone.res2.0.conv1.norm.weight", "backbone.res2.0.conv1.norm.bias",
            "backbone.res2.1.conv1.weight", "backbone.res2.1.conv1.norm.weight", "backbone.res2.1.conv1.norm.bias",
        ], model.NamedParameters().Select(p => p.Name));
        Assert.Equal(
        [
            "backbone.stem.conv1.norm.weight", "backbone.stem.conv1.norm.bias",
            "backbone.stem.conv1.norm.running_mean", "backbone.stem.conv1.norm.running_var",
        ], model.NamedBuffers().Select(b => b.Name));
        Assert.Equal(["", "backbone", "backbone.stem", "backbone.stem.conv1", "backbone.stem.conv1.norm", "backbone.res2",
                      "backbone.res2.0", "backbone.res2.0.conv1", "backbone.res2.0.conv1.norm",
                      "backbone.res2.1", "backbone.res2.1.conv1", "backbone.res2.1.conv1.norm"],
                     model.NamedModules().Select(m => m.Name));
        using var sd = model.StateDict();
        Assert.Equal(model.NamedParameters().Select(p => p.Name).Concat(model.NamedBuffers().Select(b => b.Name)), sd.Keys);
    }

    [Fact]
    public void ASharedParameterOrChildIsListedOnce()
    {
        using var shared = new Affine(3);
        var model = new Holder(1, ("a", shared), ("b", shared));
        Assert.Equal(["weight", "a.weight", "a.bias"], model.NamedParameters().Select(p => p.Name));
        Assert.Equal(3, model.Parameters().Count);
    }

    [Fact]
    public void BadNamesAreRejected()
    {
        var m = new Holder(2);
        Assert.Contains("already", Assert.Throws<ArgumentException>(() => m.AddParameter("weight", Tensor.Zeros([1]))).Message);
        Assert.Contains("'a.b'", Assert.Throws<ArgumentException>(() => m.AddBuffer("a.b", Tensor.Zeros([1]))).Message);
        Assert.Contains("''", Assert.Throws<ArgumentException>(() => m.Add("", new ReLU())).Message);
        Assert.Contains("itself", Assert.Throws<ArgumentException>(() => m.Add("self", m)).Message);
        Assert.Contains("int64", Assert.Throws<ArgumentException>(() => m.AddParameter("idx", Tensor.Zeros([1], DType.Int64))).Message);
        using var leaf = Tensor.Ones([2]).RequireGrad();
        using var derived = leaf.Mul(2.0);
        Assert.Contains("leaf", Assert.Throws<ArgumentException>(() => m.AddParameter("d", derived)).Message);
        Assert.Contains("Detach", Assert.Throws<ArgumentException>(() => m.AddBuffer("g", leaf)).Message);
    }

    [Theory]
    [InlineData("a.b", "a.b", true)]
    [InlineData("a.*", "a.b", true)]
    [InlineData("a.*", "a.b.c", false)]
    [InlineData("a.**", "a.b.c", true)]
    [InlineData("a.**", "a", true)]
    [InlineData("a.**", "ab.c", false)]
    [InlineData("**.bias", "bias", true)]
    [InlineData("**.bias", "x.y.bias", true)]
    [InlineData("**.bias", "x.ybias", false)]
    [InlineData("*", "weight", true)]
    [InlineData("*", "a.weight", false)]
    [InlineData("res*.*.conv1.*", "res2.0.conv1.weight", true)]
    [InlineData("res*.*.conv1.*", "res2.0.conv2.weight", false)]
    [InlineData("a.**.w", "a.w", true)]
    [InlineData("a.**.w", "a.x.y.w", true)]
    [InlineData("a+b", "aab", false)]
    public void GlobsMatchWholeDottedNames(string pattern, string name, bool expected) =>
        Assert.Equal(expected, NamePattern.ToRegex(pattern).IsMatch(name));

    [Fact]
    public void FrozenParametersDoNotRequireGradAndGetNoGradient()
    {
        var g = TestUtil.Fresh(out var seed);
        using var model = new Sequential(new Affine(5), new ReLU(), new Affine(5));
        Assert.Equal(2, model.Freeze("0.*"));
        Assert.Equal(["2.weight", "2.bias"], model.NamedParameters(trainableOnly: true).Select(p => p.Name));
        Assert.Equal(2, model.Parameters(trainableOnly: true).Count);
        Assert.All(model.Parameters().Take(2), p => Assert.False(p.RequiresGrad));

        using var x = RefTensor.Random(g, [3, 5], 0.5, 1).ToTensor();
        using (var y = model.Forward(x))
        using (var s = y.Sum())
            s.Backward();
        var ps = model.Parameters();
        Assert.Null(ps[0].Grad);
        Assert.Null(ps[1].Grad);
        Assert.NotNull(ps[2].Grad);
        Assert.NotNull(ps[3].Grad);

        // freezing drops an existing gradient; unfreezing lets gradients flow again
        Assert.Equal(2, model.Freeze("**.bias"));
        Assert.Null(ps[3].Grad);
        Assert.Equal(4, model.Unfreeze("**"));
        using (var y = model.Forward(x))
        using (var s = y.Sum())
            s.Backward();
        Assert.All(ps, p => Assert.True(p.Grad is not null, $"{p} has no gradient (seed {seed})"));
    }

    [Fact]
    public void AFreezePatternThatMatchesNothingIsAnError()
    {
        using var model = Backbone();
        var e = Assert.Throws<ArgumentException>(() => model.Freeze("backbone.res3.**"));
        Assert.Contains("backbone.res3.**", e.Message);
        Assert.Contains("'weight'", e.Message);
        Assert.Throws<ArgumentException>(() => model.Freeze("*.weight.*"));
    }

    [Fact]
    public void TrainAndEvalReachEveryModule()
    {
        using var model = Backbone();
        Assert.All(model.NamedModules(), m => Assert.True(m.Module.IsTraining));
        Assert.Same(model, model.Eval());
        Assert.All(model.NamedModules(), m => Assert.False(m.Module.IsTraining, m.Name));
        model.Train();
        Assert.All(model.NamedModules(), m => Assert.True(m.Module.IsTraining, m.Name));
    }

    private static Holder RandomModel(Generator g)
    {
        var model = Backbone();
        using (GradMode.NoGrad())
        {
            foreach (var (_, p) in model.NamedParameters()) Init.Uniform(p, g, -1, 1);
            foreach (var (_, b) in model.NamedBuffers()) Init.Uniform(b, g, 0.5, 1.5);
        }
        return model;
    }

    [Fact]
    public void StateDictRoundTripCopiesValuesIntoTheSameTensors()
    {
        var g = TestUtil.Fresh(out var seed);
        using var a = RandomModel(g);
        using var b = RandomModel(g);
        var before = b.NamedParameters().Select(p => p.Parameter.Value).ToList();
        var versions = before.Select(t => t.Storage.Version).ToList();
        LoadResult result;
        using (var sd = a.StateDict())
            result = b.LoadStateDict(sd);
        Assert.Empty(result.MissingKeys);
        Assert.Empty(result.UnexpectedKeys);
        foreach (var ((name, pa), (_, pb)) in a.NamedParameters().Zip(b.NamedParameters()))
            Assert.True(pa.Value.ToFloatArray().SequenceEqual(pb.Value.ToFloatArray()), $"{name} (seed {seed})");
        foreach (var ((name, ba), (_, bb)) in a.NamedBuffers().Zip(b.NamedBuffers()))
            Assert.True(ba.Value.ToFloatArray().SequenceEqual(bb.Value.ToFloatArray()), $"{name} (seed {seed})");
        // same tensor objects (optimizers keep working), versions bumped, module intact after the dict was disposed
        Assert.Equal(before, b.NamedParameters().Select(p => p.Parameter.Value));
        Assert.All(before.Zip(versions), x => Assert.True(x.First.Storage.Version > x.Second));
        Assert.All(a.NamedParameters(), p => Assert.False(p.Parameter.Value.IsDisposed));
        Assert.True(b.Parameters()[0].RequiresGrad);
    }

    [Fact]
    public void StrictLoadNamesMissingAndUnexpectedKeysAndLoadsNothing()
    {
        var g = TestUtil.Fresh(out _);
        using var a = RandomModel(g);
        using var b = RandomModel(g);
        var original = b.Parameters()[0].Value.ToFloatArray();
        using var sd = a.StateDict();
        var partial = sd.Where(kv => kv.Key != "backbone.stem.weight").ToDictionary();
        partial["backbone.extra.weight"] = sd["weight"];
        var e = Assert.Throws<InvalidOperationException>(() => b.LoadStateDict(partial));
        Assert.Contains("'backbone.stem.weight'", e.Message);
        Assert.Contains("missing", e.Message);
        Assert.Contains("'backbone.extra.weight'", e.Message);
        Assert.Contains("unexpected", e.Message);
        Assert.Contains("strict: false", e.Message);
        Assert.Equal(original, b.Parameters()[0].Value.ToFloatArray());

        var result = b.LoadStateDict(partial, strict: false);
        Assert.Equal(["backbone.stem.weight"], result.MissingKeys);
        Assert.Equal(["backbone.extra.weight"], result.UnexpectedKeys);
        Assert.Equal(sd["weight"].ToFloatArray(), b.Parameters()[0].Value.ToFloatArray());
    }

    [Fact]
    public void ShapeAndDtypeMismatchesNameTheKeyAndBothShapesEvenWhenNotStrict()
    {
        var g = TestUtil.Fresh(out _);
        using var b = RandomModel(g);
        using var sd = b.StateDict();
        var bad = sd.ToDictionary();
        using var wrong = Tensor.Zeros([7]);
        bad["backbone.res2.0.conv1.weight"] = wrong;
        var e = Assert.Throws<InvalidOperationException>(() => b.LoadStateDict(bad, strict: false));
        Assert.Contains("'backbone.res2.0.conv1.weight'", e.Message);
        Assert.Contains("[7]", e.Message);
        Assert.Contains("[6]", e.Message);

        // a broadcastable shape is still a mismatch
        using var one = Tensor.Zeros([1]);
        bad["backbone.res2.0.conv1.weight"] = one;
        Assert.Contains("[1]", Assert.Throws<InvalidOperationException>(() => b.LoadStateDict(bad)).Message);

        using var ints = Tensor.Zeros([6], DType.Int64);
        bad["backbone.res2.0.conv1.weight"] = ints;
        var e2 = Assert.Throws<InvalidOperationException>(() => b.LoadStateDict(bad));
        Assert.Contains("int64", e2.Message);
        Assert.Contains("float32", e2.Message);
    }

    [Fact]
    public void DisposeReleasesParametersAndBuffersOfTheWholeTree()
    {
        var model = Backbone();
        var tensors = model.NamedParameters().Select(p => p.Parameter.Value).Concat(model.NamedBuffers().Select(b => b.Buffer.Value)).ToList();
        model.Dispose();
        Assert.All(tensors, t => Assert.True(t.IsDisposed));
    }

    [Fact]
    public void ParametersSurviveTheScopeTheyWereCreatedIn()
    {
        Affine layer;
        using (DisposeScope.Begin()) layer = new Affine(3);
        using (layer)
            Assert.Equal([1f, 1f, 1f], layer.Weight.Value.ToFloatArray());
    }

    [Fact]
    public void ToTheCurrentDeviceKeepsValuesAndIdentity()
    {
        var g = TestUtil.Fresh(out _);
        using var model = RandomModel(g);
        var p = model.Parameters()[3];
        var (tensor, values) = (p.Value, p.Value.ToFloatArray());
        Assert.Same(model, model.To(Device.Cpu));
        Assert.Same(tensor, p.Value);
        Assert.Equal(values, p.Value.ToFloatArray());
    }

    [Fact]
    public void SequentialAppliesLayersInOrder()
    {
        var g = TestUtil.Fresh(out var seed);
        using var a = new Affine(4);
        using var b = new Affine(4);
        using (GradMode.NoGrad())
            foreach (var p in a.Parameters().Concat(b.Parameters())) Init.Uniform(p, g, -1, 1);
        var wa = a.Weight.Value.ToDoubleArray();
        var ba = a.Bias.Value.ToDoubleArray();
        var wb = b.Weight.Value.ToDoubleArray();
        var bb = b.Bias.Value.ToDoubleArray();
        using var seq = new Sequential(a, new ReLU(), b);
        var rx = RefTensor.Random(g, [3, 4]);
        using var x = rx.ToTensor();
        using var y = seq.Forward(x);
        var expected = rx.Data.Select((v, i) => Math.Max(v * wa[i % 4] + ba[i % 4], 0) * wb[i % 4] + bb[i % 4]).ToArray();
        TestUtil.AssertClose(expected, y.ToDoubleArray(), "sequential", seed);
        Assert.Equal(3, seq.Count);
        Assert.Same(a, seq[0]);

        using var empty = new Sequential();
        var same = empty.Forward(x);
        Assert.NotSame(x, same);
        same.Dispose();
        Assert.False(x.IsDisposed);
    }

    [Fact]
    public void SequentialDisposesIntermediatesWithoutLosingGradients()
    {
        // Each intermediate output is disposed inside Forward before Backward runs; gradients must still reach the
        // first layer (its weight gradient is x·w2 summed over the batch, since ReLU passes positive values).
        var g = TestUtil.Fresh(out var seed);
        using var a = new Affine(3);
        using var b = new Affine(3);
        using (GradMode.NoGrad()) Init.Uniform(b.Weight, g, 0.5, 2);
        using var seq = new Sequential(a, new ReLU(), b);
        var rx = RefTensor.Random(g, [4, 3], 0.1, 1);
        using var x = rx.ToTensor();
        using (var y = seq.Forward(x))
        using (var s = y.Sum())
            s.Backward();
        var w2 = b.Weight.Value.ToDoubleArray();
        var expected = Enumerable.Range(0, 3).Select(j => Enumerable.Range(0, 4).Sum(i => rx.Data[i * 3 + j]) * w2[j]).ToArray();
        TestUtil.AssertClose(expected, a.Weight.Grad!.ToDoubleArray(), "first layer weight gradient", seed);
    }
}
