// Tests of src/Engine.Detection/Modeling/Backbone/Fpn.cs and FpnBackbone.cs: the top-down pass (forward and
// backward) against a double reference on a tiny two-level pyramid, naming and shapes, the size checks, and
// the image gradient of a slim ResNet-18 + FPN against the chained references and finite differences.
using Engine.Detection.Modeling.Backbone;
using Engine.Nn;
using Engine.Reference;
using static Engine.Detection.Tests.Modeling.Backbone.BackboneTestUtil;

namespace Engine.Detection.Tests.Modeling.Backbone;

public class FpnTests
{
    private static readonly Dictionary<string, ShapeSpec> TwoLevels = new() { ["c3"] = new(5, 8), ["c4"] = new(7, 16) };

    [Theory]
    [InlineData(FpnFuse.Sum, true, NormKind.None)]
    [InlineData(FpnFuse.Average, true, NormKind.None)]
    [InlineData(FpnFuse.Sum, false, NormKind.None)]
    [InlineData(FpnFuse.Sum, true, NormKind.GroupNorm)]
    public void TopDownPathMatchesTheReference(FpnFuse fuse, bool maxPool, NormKind norm)
    {
        var g = Fresh(out var seed);
        using var fpn = new Fpn(TwoLevels, ["c3", "c4"], 4, g, norm, fuse, maxPool, groupNormGroups: 2);
        Assert.Equal(maxPool ? ["p3", "p4", "p5"] : ["p3", "p4"], fpn.OutFeatures);
        Assert.Equal(maxPool ? [8, 16, 32] : [8, 16], fpn.OutFeatures.Select(f => fpn.OutputShapes[f].Stride));
        var names = fpn.NamedParameters().Select(p => (p.Name, ShapeUtil.Format(p.Parameter.Shape))).ToList();
        var expectedNames = norm == NormKind.None
            ? new[] { ("fpn_lateral3.weight", "[4, 5, 1, 1]"), ("fpn_lateral3.bias", "[4]"), ("fpn_output3.weight", "[4, 4, 3, 3]"), ("fpn_output3.bias", "[4]"),
                      ("fpn_lateral4.weight", "[4, 7, 1, 1]"), ("fpn_lateral4.bias", "[4]"), ("fpn_output4.weight", "[4, 4, 3, 3]"), ("fpn_output4.bias", "[4]") }
            : [("fpn_lateral3.weight", "[4, 5, 1, 1]"), ("fpn_lateral3.norm.weight", "[4]"), ("fpn_lateral3.norm.bias", "[4]"),
               ("fpn_output3.weight", "[4, 4, 3, 3]"), ("fpn_output3.norm.weight", "[4]"), ("fpn_output3.norm.bias", "[4]"),
               ("fpn_lateral4.weight", "[4, 7, 1, 1]"), ("fpn_lateral4.norm.weight", "[4]"), ("fpn_lateral4.norm.bias", "[4]"),
               ("fpn_output4.weight", "[4, 4, 3, 3]"), ("fpn_output4.norm.weight", "[4]"), ("fpn_output4.norm.bias", "[4]")];
        Assert.Equal(expectedNames, names);
        // c2_xavier_fill leaves biases at 0; random ones make a wrong bias path visible
        foreach (var (name, p) in fpn.NamedParameters())
            if (name.EndsWith(".bias", StringComparison.Ordinal) && !name.Contains("norm", StringComparison.Ordinal))
            {
                Assert.All(p.Value.ToDoubleArray(), v => Assert.Equal(0.0, v));
                using var b = Tensor.Rand(p.Value.ShapeArray(), g, -0.5, 0.5);
                using (GradMode.NoGrad()) p.Value.CopyFrom(b);
            }
        RandomizeNorms(fpn, g);
        var reference = new RefFpn(fpn);

        // 1. the reference backward against central differences
        int[][] smallShapes = [[1, 5, 4, 6], [1, 7, 2, 3]];
        var small = smallShapes.Select(s => RefTensor.Random(g, s)).ToArray();
        var check = Gradcheck.Check(
            inputs => reference.Forward(Wrap(inputs, smallShapes), out _).SelectMany(p => p.Data).ToArray(),
            (inputs, u) =>
            {
                var p = reference.Forward(Wrap(inputs, smallShapes), out var saved);
                return reference.Backward(saved, Split(u, p)).Select(d => d.Data).ToArray();
            },
            small.Select(s => (double[])s.Data.Clone()).ToArray(), g);
        Assert.True(check.Passed, $"FPN reference backward: {check} (seed {seed})");

        // 2. engine forward against the reference (two images, odd coarse size)
        var c3 = RefTensor.Random(g, [2, 5, 6, 10]);
        var c4 = RefTensor.Random(g, [2, 7, 3, 5]);
        var expected = reference.Forward([c3, c4], out var savedRef);
        using var x3 = c3.ToTensor().RequireGrad();
        using var x4 = c4.ToTensor().RequireGrad();
        var outputs = fpn.Forward(new Dictionary<string, Tensor> { ["c3"] = x3, ["c4"] = x4 });
        try
        {
            Assert.Equal(fpn.OutFeatures, outputs.Keys);
            // ≤ 36 products per conv output and two convs in sequence: float rounding ~1e-6 of O(1) values
            for (var i = 0; i < expected.Length; i++)
                AssertClose(expected[i], outputs[fpn.OutFeatures[i]], $"FPN {fpn.OutFeatures[i]}", seed, 1e-4, 1e-4);

            // 3. engine backward against the reference backward
            var gradients = expected.Select(e => RefTensor.Random(g, e.Shape)).ToArray();
            using (DisposeScope.Begin())
            {
                var loss = fpn.OutFeatures.Select((f, i) => outputs[f].Mul(gradients[i].ToTensor()).Sum()).Aggregate((a, b) => a + b);
                loss.Backward();
            }
            var refGrads = reference.Backward(savedRef, gradients);
            AssertClose(refGrads[0], x3.Grad!, "FPN d c3", seed, 1e-4, 1e-4);
            AssertClose(refGrads[1], x4.Grad!, "FPN d c4", seed, 1e-4, 1e-4);
        }
        finally
        {
            BackboneModule.DisposeFeatures(outputs);
        }
    }

    private static RefTensor[] Wrap(double[][] data, int[][] shapes) => data.Select((d, i) => new RefTensor(shapes[i], d)).ToArray();

    private static RefTensor[] Split(double[] flat, RefTensor[] like)
    {
        var parts = new RefTensor[like.Length];
        var at = 0;
        for (var i = 0; i < like.Length; i++)
        {
            parts[i] = new RefTensor(like[i].Shape, flat.AsSpan(at, like[i].Data.Length).ToArray());
            at += like[i].Data.Length;
        }
        return parts;
    }

    [Fact]
    public void SizesThatDoNotHalveExactlyAreRejected()
    {
        var g = Fresh(out _);
        using var backbone = BackboneFactory.BuildResNetFpn(18, g, widthMultiplier: 0.125, fpnOutChannels: 8);
        using var x = Tensor.Zeros([1, 3, 70, 96]);
        var message = Assert.Throws<ArgumentException>(() => backbone.Forward(x)).Message;
        Assert.Contains("[1, 3, 70, 96]", message);
        Assert.Contains("multiple of 32", message);

        using var fpn = new Fpn(TwoLevels, ["c3", "c4"], 4, g);
        using var c3 = Tensor.Zeros([1, 5, 5, 8]);
        using var c4 = Tensor.Zeros([1, 7, 3, 4]);
        message = Assert.Throws<ArgumentException>(() => fpn.Forward(new Dictionary<string, Tensor> { ["c3"] = c3, ["c4"] = c4 })).Message;
        Assert.Contains("'c3' is 5x8 but twice 'c4' (3x4) is 6x8", message);
        message = Assert.Throws<ArgumentException>(() => fpn.Forward(new Dictionary<string, Tensor> { ["c3"] = c3 })).Message;
        Assert.Contains("no 'c4' map", message);
    }

    [Fact]
    public void BadPyramidDefinitionsAreRejected()
    {
        var g = new Generator(3);
        var gap = new Dictionary<string, ShapeSpec> { ["a"] = new(4, 4), ["b"] = new(4, 16) };
        Assert.Contains("log2-contiguous", Assert.Throws<ArgumentException>(() => new Fpn(gap, ["a", "b"], 8, g)).Message);
        Assert.Contains("not among", Assert.Throws<ArgumentException>(() => new Fpn(gap, ["a", "z"], 8, g)).Message);
        Assert.Contains("inFeatures is empty", Assert.Throws<ArgumentException>(() => new Fpn(gap, [], 8, g)).Message);
    }

    [Fact]
    public void GradientReachesTheImageThroughResNet18AndFpn()
    {
        var g = Fresh(out var seed);
        using var backbone = BackboneFactory.BuildResNetFpn(18, g, freezeAt: 0, widthMultiplier: 0.125, fpnOutChannels: 8);
        RandomizeNorms(backbone, g);
        var resnet = (ResNet)backbone.BottomUp;
        var rx = RefTensor.Random(g, [1, 3, 64, 64]);
        var weights = new Dictionary<string, double[]>();
        using var x = rx.ToTensor().RequireGrad();
        using (DisposeScope.Begin())
        {
            var outputs = backbone.Forward(x);
            Tensor? loss = null;
            foreach (var (name, p) in outputs)
            {
                var u = RefTensor.Random(g, p.ShapeArray());
                weights[name] = u.Data;
                var term = p.Mul(u.ToTensor()).Sum();
                loss = loss is null ? term : loss + term;
            }
            loss!.Backward();
        }
        var grad = x.Grad!.ToDoubleArray();

        // 1. the whole image gradient against the chained double references: stem conv and max pool, every block,
        // then the FPN (each piece's backward is checked against finite differences in the block and FPN tests)
        var stem = new RefConvLayer(resnet.Stem.Conv1);
        var stemOut = stem.Forward(rx, out var stemSaved);
        var (h, poolIndices) = PoolingReference.MaxPool2d(stemOut, new Pool2dWindow(3, 3, 2, 2, 1, 1));
        var blocks = new List<List<(RefBlock Block, RefBlock.Saved Saved)>>();
        var stageOutputs = new List<RefTensor>();
        foreach (var (_, stage) in resnet.Stages)
        {
            var chain = new List<(RefBlock, RefBlock.Saved)>();
            for (var b = 0; b < stage.Count; b++)
            {
                var block = new RefBlock((ResNetBlock)stage[b]);
                h = block.Forward(h, out var saved);
                chain.Add((block, saved));
            }
            blocks.Add(chain);
            stageOutputs.Add(h);
        }
        var fpn = new RefFpn(backbone.Fpn);
        var pyramid = fpn.Forward(stageOutputs.ToArray(), out var fpnSaved);     // p2 … p6
        var dStages = fpn.Backward(fpnSaved, pyramid.Select((p, i) => new RefTensor(p.Shape, weights[backbone.OutFeatures[i]])).ToArray());
        RefTensor? dh = null;
        for (var s = blocks.Count - 1; s >= 0; s--)
        {
            dh = dh is null ? dStages[s] : RefTensor.Zip(dh, dStages[s], (a, b) => a + b);
            for (var b = blocks[s].Count - 1; b >= 0; b--) dh = blocks[s][b].Block.Backward(blocks[s][b].Saved, dh).Dx;
        }
        var dStem = PoolingReference.MaxPool2dBackward(dh!, poolIndices, stemOut.Shape);
        var dx = stem.Backward(stemSaved, dStem).Dx;
        // float32 through 8 blocks, the stem and the FPN: errors ~1e-5 of gradients of size up to ~10
        AssertClose(dx.Data, grad, "image gradient through ResNet-18 + FPN", seed, 1e-3, 1e-3);

        // 2. central differences in float32 for the two pixels with the largest gradient whose loss is smooth within
        // the step. Perturbing one pixel by 1e-2 moves the loss by ~1e-2 against rounding of ~1e-5; where the step
        // crosses a ReLU or max-pool kink the one-sided differences disagree and the central one means nothing, so
        // such a pixel is passed over (judged from the differences alone, not from the gradient under test).
        // 3% (plus 0.05 absolute) still fails for a missing or wrongly routed gradient path.
        double Loss(double[] input)
        {
            using var scope = DisposeScope.Begin();
            using var _ = GradMode.NoGrad();
            return WeightedSum(backbone.Forward(Tensor.FromDoubles(input, rx.Shape)), weights);
        }
        const double step = 1e-2;
        var centre = Loss(rx.Data);
        var checkedPixels = 0;
        foreach (var i in Enumerable.Range(0, grad.Length).OrderByDescending(i => Math.Abs(grad[i])).Take(20))
        {
            var p = (double[])rx.Data.Clone();
            var m = (double[])rx.Data.Clone();
            p[i] += step;
            m[i] -= step;
            var (up, down) = (Loss(p), Loss(m));
            var fd = (up - down) / (2 * step);
            var (forward, backward) = ((up - centre) / step, (centre - down) / step);
            if (Math.Abs(forward - backward) > 0.05 + 0.03 * Math.Abs(fd)) continue;   // a kink within the step
            Assert.True(Math.Abs(fd - grad[i]) <= 0.05 + 0.03 * Math.Abs(fd), $"d loss / d x[{i}]: backward {grad[i]}, finite difference {fd} (seed {seed})");
            if (++checkedPixels == 2) break;
        }
        Assert.True(checkedPixels == 2, $"only {checkedPixels} of the 20 largest-gradient pixels have a loss smooth within ±{step} (seed {seed})");
    }
}
