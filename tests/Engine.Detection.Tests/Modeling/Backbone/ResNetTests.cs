// Tests of src/Engine.Detection/Modeling/Backbone/ResNet.cs and ResNetBlocks.cs: feature shapes and strides,
// the basic and bottleneck blocks (forward and backward) against double references with random norm state,
// the whole network against a chain of those references, freeze-at, initialization and bad arguments.
using Engine.Detection.Modeling.Backbone;
using Engine.Native;
using Engine.Nn;
using Engine.Reference;
using static Engine.Detection.Tests.Modeling.Backbone.BackboneTestUtil;

namespace Engine.Detection.Tests.Modeling.Backbone;

public class ResNetTests
{
    // float32 against double through ≤ 3 convs of ≤ 16·9 products each, a norm and an add: rounding is ~1e-6 of
    // the O(1) values; 1e-4 leaves a wide margin while any wrong index or stride gives O(0.1) errors.
    private const double BlockAtol = 1e-4, BlockRtol = 1e-4;

    [Theory]
    [InlineData(18, 64, 96)]
    [InlineData(18, 160, 160)]
    [InlineData(50, 64, 96)]
    [InlineData(50, 160, 160)]
    public void FeatureMapsHaveTheDeclaredChannelsAndStrides(int depth, int h, int w)
    {
        var g = Fresh(out var seed);
        using var backbone = BackboneFactory.BuildResNetFpn(depth, g, widthMultiplier: 0.125, fpnOutChannels: 16);
        var resnet = (ResNet)backbone.BottomUp;
        // detectron2's channel plan at width 64·0.125 = 8: stem 8, res2 8 (basic) or 4·8 (bottleneck), doubling per stage
        var res2 = depth == 18 ? 8 : 32;
        Assert.Equal(new Dictionary<string, ShapeSpec>
        {
            ["res2"] = new(res2, 4), ["res3"] = new(2 * res2, 8), ["res4"] = new(4 * res2, 16), ["res5"] = new(8 * res2, 32),
        }, resnet.OutputShapes);
        Assert.Equal(["res2", "res3", "res4", "res5"], resnet.OutFeatures);
        Assert.Equal(["p2", "p3", "p4", "p5", "p6"], backbone.OutFeatures);
        Assert.Equal(32, backbone.SizeDivisibility);

        using var x = Tensor.Randn([2, 3, h, w], g);
        var features = resnet.Forward(x);
        try
        {
            Assert.Equal(resnet.OutFeatures, features.Keys);
            foreach (var (name, spec) in resnet.OutputShapes)
                Assert.True(features[name].Shape.SequenceEqual([2, spec.Channels, h / spec.Stride, w / spec.Stride]),
                    $"{name}: {ShapeUtil.Format(features[name].Shape)} for stride {spec.Stride} (seed {seed})");
        }
        finally
        {
            BackboneModule.DisposeFeatures(features);
        }

        var pyramid = backbone.Forward(x);
        try
        {
            Assert.Equal(backbone.OutFeatures, pyramid.Keys);
            foreach (var (name, spec) in backbone.OutputShapes)
            {
                Assert.Equal(16, spec.Channels);
                // p6 pools p5 with kernel 1, stride 2: ⌈size/2⌉ of p5
                int[] expected = name == "p6" ? [2, 16, (h / 32 + 1) / 2, (w / 32 + 1) / 2] : [2, 16, h / spec.Stride, w / spec.Stride];
                Assert.Equal(1 << int.Parse(name[1..], System.Globalization.CultureInfo.InvariantCulture), spec.Stride);
                Assert.True(pyramid[name].Shape.SequenceEqual(expected), $"{name}: {ShapeUtil.Format(pyramid[name].Shape)}, expected {ShapeUtil.Format(expected)} (seed {seed})");
                Assert.All(pyramid[name].ToDoubleArray(), v => Assert.True(double.IsFinite(v)));
            }
        }
        finally
        {
            BackboneModule.DisposeFeatures(pyramid);
        }
    }

    [Fact]
    public void OddInputSizesHalveWithCeilingAtEveryStride()
    {
        var g = Fresh(out var seed);
        using var resnet = BackboneFactory.BuildResNet(18, g, ["stem", "res2", "res3", "res4", "res5"], widthMultiplier: 0.125);
        using var x = Tensor.Randn([1, 3, 70, 97], g);
        var features = resnet.Forward(x);
        try
        {
            // 7×7/2 pad 3 and 3×3/2 pad 1 and every 3×3/2 pad 1 or 1×1/2 give ⌊(n − 1)/2⌋ + 1 = ⌈n/2⌉
            static int Half(int n) => (n + 1) / 2;
            var (fh, fw) = (Half(Half(70)), Half(Half(97)));
            foreach (var name in resnet.OutFeatures)
            {
                if (name is not ("stem" or "res2")) (fh, fw) = (Half(fh), Half(fw));
                var f = features[name];
                Assert.True(f.Size(2) == fh && f.Size(3) == fw, $"{name}: {ShapeUtil.Format(f.Shape)}, expected {fh}x{fw} (seed {seed})");
            }
        }
        finally
        {
            BackboneModule.DisposeFeatures(features);
        }
    }

    public static TheoryData<int, int, int, NormKind> BasicBlockCases => new()
    {
        { 8, 8, 1, NormKind.FrozenBatchNorm },   // identity shortcut
        { 6, 8, 2, NormKind.FrozenBatchNorm },   // projection shortcut with stride
        { 8, 8, 1, NormKind.GroupNorm },
        { 6, 8, 2, NormKind.None },
    };

    [Theory]
    [MemberData(nameof(BasicBlockCases))]
    public void BasicBlockMatchesTheReferenceForwardAndBackward(int inC, int outC, int stride, NormKind norm)
    {
        var g = Fresh(out var seed);
        using var block = new BasicBlock(inC, outC, stride, norm, g, groupNormGroups: 4);
        Assert.Equal(inC != outC, block.Shortcut is not null);
        CheckBlock(block, g, seed);
    }

    public static TheoryData<int, int, int, int, bool, NormKind> BottleneckCases => new()
    {
        { 8, 16, 4, 2, false, NormKind.FrozenBatchNorm },   // stride on the 3×3 (torchvision weights)
        { 8, 16, 4, 2, true, NormKind.FrozenBatchNorm },    // stride on the first 1×1 (MSRA weights)
        { 16, 16, 4, 1, false, NormKind.GroupNorm },        // identity shortcut
        { 8, 16, 4, 1, false, NormKind.None },              // projection without stride (res2's first block)
    };

    [Theory]
    [MemberData(nameof(BottleneckCases))]
    public void BottleneckBlockMatchesTheReferenceForwardAndBackward(int inC, int outC, int bottleneck, int stride, bool strideIn1x1, NormKind norm)
    {
        var g = Fresh(out var seed);
        using var block = new BottleneckBlock(inC, outC, bottleneck, stride, norm, g, strideIn1x1, groupNormGroups: 2);
        Assert.Equal(strideIn1x1 ? stride : 1, block.Conv1.Stride);
        Assert.Equal(strideIn1x1 ? 1 : stride, block.Conv2.Stride);
        Assert.Equal(inC != outC, block.Shortcut is not null);
        CheckBlock(block, g, seed);
    }

    private static void CheckBlock(ResNetBlock block, Generator g, ulong seed)
    {
        RandomizeNorms(block, g);
        var reference = new RefBlock(block);

        // 1. the reference backward against central differences, for the input and the first conv's weight
        var small = RefTensor.Random(g, [1, block.InChannels, 5, 4]);
        var w1 = reference.Branch[0].Weight;
        var check = Gradcheck.Check(
            inputs =>
            {
                reference.Branch[0].Weight = inputs[1];
                return reference.Forward(new RefTensor(small.Shape, inputs[0])).Data;
            },
            (inputs, u) =>
            {
                reference.Branch[0].Weight = inputs[1];
                var y = reference.Forward(new RefTensor(small.Shape, inputs[0]), out var saved);
                var (dx, dBranch, _) = reference.Backward(saved, new RefTensor(y.Shape, u));
                return [dx.Data, dBranch[0]];
            },
            [(double[])small.Data.Clone(), (double[])w1.Clone()], g);
        reference.Branch[0].Weight = w1;
        Assert.True(check.Passed, $"{block}: reference backward: {check} (seed {seed})");

        // 2. the engine forward against the reference on an odd-sized batch, output poisoned by the allocator
        var rx = RefTensor.Random(g, [2, block.InChannels, 7, 9]);
        var expected = reference.Forward(rx, out var savedRef);
        using var x = rx.ToTensor().RequireGrad();
        using var y = block.Forward(x);
        AssertClose(expected, y, $"{block} forward", seed, BlockAtol, BlockRtol);

        // 3. the engine backward against the reference backward
        var gy = RefTensor.Random(g, expected.Shape);
        using (var gyT = gy.ToTensor()) y.Backward(gyT);
        var (refDx, refDBranch, refDShortcut) = reference.Backward(savedRef, gy);
        AssertClose(refDx, x.Grad!, $"{block} dx", seed, BlockAtol, BlockRtol);
        var convs = block switch
        {
            BasicBlock b => new[] { b.Conv1, b.Conv2 },
            BottleneckBlock b => [b.Conv1, b.Conv2, b.Conv3],
            _ => throw new InvalidOperationException(),
        };
        for (var i = 0; i < convs.Length; i++)
            AssertClose(refDBranch[i], convs[i].Weight.Grad!.ToDoubleArray(), $"{block} conv{i + 1} dw", seed, BlockAtol, BlockRtol);
        if (block.Shortcut is { } sc) AssertClose(refDShortcut!, sc.Weight.Grad!.ToDoubleArray(), $"{block} shortcut dw", seed, BlockAtol, BlockRtol);
    }

    [Theory]
    [InlineData(18)]
    [InlineData(50)]
    public void WholeNetworkMatchesTheChainedReference(int depth)
    {
        var g = Fresh(out var seed);
        using var resnet = BackboneFactory.BuildResNet(depth, g, ["stem", "res2", "res3", "res4", "res5"], freezeAt: 0, widthMultiplier: 0.125);
        RandomizeNorms(resnet, g);
        var rx = RefTensor.Random(g, [1, 3, 37, 45]);
        using var x = rx.ToTensor();
        var features = resnet.Forward(x);
        try
        {
            var h = PoolingReference.MaxPool2d(new RefConvLayer(resnet.Stem.Conv1).Forward(rx), new Pool2dWindow(3, 3, 2, 2, 1, 1)).Values;
            // the error grows with depth (float rounding through up to 17 blocks, relative to O(1)–O(10) activations)
            AssertClose(h, features["stem"], "stem", seed, 1e-3, 1e-3);
            foreach (var (name, stage) in resnet.Stages)
            {
                for (var b = 0; b < stage.Count; b++) h = new RefBlock((ResNetBlock)stage[b]).Forward(h);
                AssertClose(h, features[name], name, seed, 1e-3, 1e-3);
            }
        }
        finally
        {
            BackboneModule.DisposeFeatures(features);
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(5)]
    public void FreezeAtFreezesTheStemAndTheFirstStagesOnly(int freezeAt)
    {
        var g = Fresh(out var seed);
        using var resnet = BackboneFactory.BuildResNet(18, g, freezeAt: freezeAt, norm: NormKind.GroupNorm, widthMultiplier: 0.125, groupNormGroups: 4);
        string[] frozenPrefixes = ["stem.", "res2.", "res3.", "res4.", "res5."];
        var expectFrozen = frozenPrefixes.Take(freezeAt).ToArray();
        var all = resnet.NamedParameters().ToList();
        Assert.Contains(all, p => p.Name == "stem.conv1.norm.weight"); // GroupNorm parameters are frozen with their stage too
        foreach (var (name, p) in all)
            Assert.True(p.Frozen == expectFrozen.Any(name.StartsWith), $"freezeAt {freezeAt}: {name} frozen = {p.Frozen}");

        using var x = Tensor.Randn([2, 3, 32, 32], g).RequireGrad();
        using (DisposeScope.Begin())
        {
            var features = resnet.Forward(x);
            var loss = features.Values.Select(f => f.Square().Mean()).Aggregate((a, b) => a + b);
            loss.Backward();
        }
        foreach (var (name, p) in all)
            if (p.Frozen) Assert.True(p.Grad is null, $"freezeAt {freezeAt}: frozen {name} got a gradient (seed {seed})");
            else
            {
                Assert.True(p.Grad is not null, $"freezeAt {freezeAt}: trainable {name} got no gradient (seed {seed})");
                Assert.Contains(p.Grad!.ToDoubleArray(), v => v != 0);
            }
        Assert.NotNull(x.Grad); // the gradient still flows through frozen stages to the input
        Assert.Contains(x.Grad!.ToDoubleArray(), v => v != 0);
    }

    [Fact]
    public void OnlyTheStagesUpToTheDeepestOutputAreBuilt()
    {
        var g = Fresh(out _);
        using var c3 = BackboneFactory.BuildResNet(50, g, ["res3"], widthMultiplier: 0.125);
        Assert.Equal(["res2", "res3"], c3.Stages.Select(s => s.Name));
        Assert.DoesNotContain(c3.NamedParameters(), p => p.Name.StartsWith("res4", StringComparison.Ordinal));
        Assert.Equal(new Dictionary<string, ShapeSpec> { ["res3"] = new(64, 8) }, c3.OutputShapes);
        using var stemOnly = BackboneFactory.BuildResNet(18, g, ["stem"], freezeAt: 0, widthMultiplier: 0.125);
        Assert.Empty(stemOnly.Stages);
        using var x = Tensor.Randn([1, 3, 32, 32], g);
        var f = stemOnly.Forward(x);
        Assert.Equal(["stem"], f.Keys);
        Assert.Equal([1, 8, 8, 8], f["stem"].ShapeArray());
        BackboneModule.DisposeFeatures(f);
    }

    [Fact]
    public void InitializationFollowsDetectron2()
    {
        var g = Fresh(out var seed);
        using var block = new BottleneckBlock(64, 256, 64, 1, NormKind.FrozenBatchNorm, g);
        // c2_msra_fill: N(0, 2/fan_out) with fan_out = 256·1·1 for conv3 (16384 weights): the sample std has a
        // relative standard error of 1/√(2·16384) ≈ 0.55%, so 3% is more than five standard errors.
        var w = block.Conv3.Weight.Value.ToDoubleArray();
        var std = Math.Sqrt(w.Select(v => v * v).Average());
        Assert.True(Math.Abs(std / Math.Sqrt(2.0 / 256) - 1) < 0.03, $"conv3 weight std {std}, expected {Math.Sqrt(2.0 / 256)} (seed {seed})");
        var w2 = block.Conv2.Weight.Value.ToDoubleArray(); // fan_out = 64·3·3
        var std2 = Math.Sqrt(w2.Select(v => v * v).Average());
        Assert.True(Math.Abs(std2 / Math.Sqrt(2.0 / 576) - 1) < 0.03, $"conv2 weight std {std2}, expected {Math.Sqrt(2.0 / 576)} (seed {seed})");
        Assert.All(new[] { block.Conv1, block.Conv2, block.Conv3, block.Shortcut! }, c => Assert.Null(c.Bias));

        // FrozenBatchNorm2d starts as detectron2's: weight 1, bias 0, mean 0, running_var 1 − eps (an exact identity)
        var bn = (FrozenBatchNorm2d)block.Conv1.Norm!;
        Assert.All(bn.RunningVar.Value.ToDoubleArray(), v => Assert.Equal((double)(float)(1 - 1e-5), v));
        Assert.All(bn.Weight.Value.ToDoubleArray(), v => Assert.Equal(1.0, v));
        Assert.All(bn.Bias.Value.ToDoubleArray().Concat(bn.RunningMean.Value.ToDoubleArray()), v => Assert.Equal(0.0, v));
        using var x = Tensor.Randn([1, 64, 3, 3], g);
        using var normed = bn.Forward(x);
        AssertClose(x.ToDoubleArray(), normed.ToDoubleArray(), "identity frozen BN", seed, 1e-7, 1e-6);
    }

    [Fact]
    public void BadArgumentsAreRejectedWithClearMessages()
    {
        var g = new Generator(1);
        Assert.Contains("depth 42", Assert.Throws<ArgumentOutOfRangeException>(() => new ResNet(42, g)).Message);
        Assert.Contains("res6", Assert.Throws<ArgumentException>(() => new ResNet(18, g, ["res6"])).Message);
        Assert.Contains("freezeAt", Assert.Throws<ArgumentOutOfRangeException>(() => new ResNet(18, g, freezeAt: 6)).Message);
        Assert.Contains("GroupNorm with 32 groups cannot normalize 8 channels",
            Assert.Throws<ArgumentException>(() => BackboneFactory.BuildResNet(18, g, norm: NormKind.GroupNorm, widthMultiplier: 0.125)).Message);
        Assert.Contains("widthMultiplier", Assert.Throws<ArgumentException>(() => BackboneFactory.BuildResNet(18, g, widthMultiplier: 0.3)).Message);
        using var resnet = BackboneFactory.BuildResNet(18, g, widthMultiplier: 0.125);
        using var gray = Tensor.Zeros([1, 1, 32, 32]);
        Assert.Contains("(N, 3, H, W)", Assert.Throws<ArgumentException>(() => resnet.Forward(gray)).Message);
    }
}
