// Checkpoint compatibility of src/Engine.Detection/Modeling/Backbone: the parameter and buffer names and shapes
// of ResNet-FPN must be exactly detectron2's, so converted detectron2 / torchvision weights load by name.
// The expected lists are generated here from detectron2's construction rules (build_resnet_backbone,
// BottleneckBlock / BasicBlock, FPN), independently of the engine's builder; the parameter counts are
// written out as arithmetic.
using Engine.Detection.Modeling.Backbone;
using Engine.Nn;
using static Engine.Detection.Tests.Modeling.Backbone.BackboneTestUtil;

namespace Engine.Detection.Tests.Modeling.Backbone;

public class CheckpointNameTests
{
    /// <summary>How the detector will hold the backbone: as its child "backbone".</summary>
    private sealed class Holder : Module
    {
        public Holder(Module backbone) => RegisterModule("backbone", backbone);
    }

    /// <summary>detectron2's parameter names and shapes, in named_parameters() order, for ResNet-depth + FPN
    /// (or the ResNet alone, with no prefix, when fpnChannels is 0).</summary>
    private static List<(string Name, string Shape)> Detectron2Parameters(int depth, int fpnChannels, out List<(string Name, string Shape)> buffers)
    {
        var basic = depth is 18 or 34;
        int[] blocks = depth switch { 18 => [2, 2, 2, 2], 34 or 50 => [3, 4, 6, 3], 101 => [3, 4, 23, 3], _ => throw new ArgumentException() };
        int[] stageOut = basic ? [64, 128, 256, 512] : [256, 512, 1024, 2048];
        var parameters = new List<(string, string)>();
        var normBuffers = new List<(string, string)>();
        if (fpnChannels > 0)
            for (var level = 2; level <= 5; level++)
            {
                parameters.Add(($"fpn_lateral{level}.weight", S(fpnChannels, stageOut[level - 2], 1, 1)));
                parameters.Add(($"fpn_lateral{level}.bias", S(fpnChannels)));
                parameters.Add(($"fpn_output{level}.weight", S(fpnChannels, fpnChannels, 3, 3)));
                parameters.Add(($"fpn_output{level}.bias", S(fpnChannels)));
            }
        var prefix = fpnChannels > 0 ? "bottom_up." : "";
        void Conv(string name, int cout, int cin, int k)
        {
            parameters.Add(($"{prefix}{name}.weight", S(cout, cin, k, k)));
            foreach (var b in new[] { "weight", "bias", "running_mean", "running_var" }) normBuffers.Add(($"{prefix}{name}.norm.{b}", S(cout)));
        }
        Conv("stem.conv1", 64, 3, 7);
        var inC = 64;
        for (var s = 0; s < 4; s++)
        {
            var (outC, width) = (stageOut[s], 64 << s);
            for (var b = 0; b < blocks[s]; b++)
            {
                var name = $"res{s + 2}.{b}";
                var cin = b == 0 ? inC : outC;
                if (cin != outC) Conv($"{name}.shortcut", outC, cin, 1);
                if (basic)
                {
                    Conv($"{name}.conv1", outC, cin, 3);
                    Conv($"{name}.conv2", outC, outC, 3);
                }
                else
                {
                    Conv($"{name}.conv1", width, cin, 1);
                    Conv($"{name}.conv2", width, width, 3);
                    Conv($"{name}.conv3", outC, width, 1);
                }
            }
            inC = outC;
        }
        buffers = normBuffers;
        return parameters;
    }

    private static string S(params int[] shape) => ShapeUtil.Format(shape);

    [Fact]
    public void ResNet50FpnHasDetectron2NamesShapesAndParameterCount()
    {
        var g = Fresh(out _);
        using var holder = new Holder(BackboneFactory.BuildResNetFpn(50, g));
        var parameters = holder.NamedParameters().ToList();
        var buffers = holder.NamedBuffers().ToList();

        var names = parameters.Select(p => p.Name).Concat(buffers.Select(b => b.Name)).ToHashSet();
        foreach (var name in new[]
                 {
                     "backbone.bottom_up.stem.conv1.weight", "backbone.bottom_up.stem.conv1.norm.weight",
                     "backbone.bottom_up.res2.0.shortcut.weight", "backbone.bottom_up.res2.0.conv1.weight",
                     "backbone.bottom_up.res2.0.conv1.norm.running_var", "backbone.bottom_up.res3.3.conv3.norm.running_mean",
                     "backbone.bottom_up.res5.2.conv2.weight", "backbone.fpn_lateral2.weight", "backbone.fpn_lateral5.bias",
                     "backbone.fpn_output2.weight", "backbone.fpn_output5.bias",
                 })
            Assert.Contains(name, names);
        Assert.DoesNotContain("backbone.bottom_up.res2.1.shortcut.weight", names);  // identity shortcut after the first block

        var expected = Detectron2Parameters(50, 256, out var expectedBuffers);
        var backbone = (FpnBackbone)holder.NamedChildren().Single().Module;
        Assert.Equal(expected, backbone.NamedParameters().Select(p => (p.Name, ShapeUtil.Format(p.Parameter.Shape))));
        Assert.Equal(expectedBuffers, backbone.NamedBuffers().Select(b => (b.Name, ShapeUtil.Format(b.Buffer.Value.Shape))));

        // ResNet-50 conv weights (no conv has a bias: each is followed by a norm), block by block:
        //   stem 64·3·7·7; bottleneck (in → width → 4·width): in·w + w·w·9 + w·4w, plus in·4w for the first block's shortcut
        long Bottleneck(long cin, long w, bool first) => cin * w + w * w * 9 + w * 4 * w + (first ? cin * 4 * w : 0);
        long Stage(long cin, long w, int count) => Bottleneck(cin, w, true) + (count - 1) * Bottleneck(4 * w, w, false);
        var resnet50 = 64L * 3 * 7 * 7 + Stage(64, 64, 3) + Stage(256, 128, 4) + Stage(512, 256, 6) + Stage(1024, 512, 3);
        // = 23,454,912: torchvision's resnet50 has 25,557,032 parameters, of which fc is 2048·1000 + 1000 = 2,049,000
        // and the batch-norm affine pairs 2·26,560 = 53,120 (here frozen buffers)
        Assert.Equal(25_557_032L - 2_049_000 - 53_120, resnet50);
        // FPN: lateral 1×1 convs C_k → 256 with bias, output 3×3 convs 256 → 256 with bias
        var fpn = (256L + 512 + 1024 + 2048) * 256 + 4 * 256 + 4 * (256L * 256 * 9 + 256);
        var total = parameters.Sum(p => p.Parameter.Value.Numel);
        Assert.Equal(resnet50 + fpn, total);
        Assert.Equal(26_799_296L, total);
        // FrozenBN buffers: 4 per norm channel; norm channels = Σ over convs of their outputs = 26,560
        long NormChannels(long w, int count) => 4 * w + count * (w + w + 4 * w);
        var normChannels = 64 + NormChannels(64, 3) + NormChannels(128, 4) + NormChannels(256, 6) + NormChannels(512, 3);
        Assert.Equal(26_560L, normChannels);
        Assert.Equal(4 * normChannels, buffers.Sum(b => b.Buffer.Value.Numel));
        // freeze-at 2 (detectron2's default): the stem and res2 train nothing
        Assert.All(parameters.Where(p => p.Name.Contains(".stem.", StringComparison.Ordinal) || p.Name.Contains(".res2.", StringComparison.Ordinal)),
                   p => Assert.True(p.Parameter.Frozen, p.Name));
        Assert.All(parameters.Where(p => p.Name.Contains(".res3.", StringComparison.Ordinal) || p.Name.Contains(".fpn_", StringComparison.Ordinal)),
                   p => Assert.False(p.Parameter.Frozen, p.Name));
    }

    [Fact]
    public void ResNet18HasDetectron2NamesAndParameterCount()
    {
        var g = Fresh(out _);
        using var resnet = BackboneFactory.BuildResNet(18, g);
        var expected = Detectron2Parameters(18, 0, out var expectedBuffers);
        Assert.Equal(expected, resnet.NamedParameters().Select(p => (p.Name, ShapeUtil.Format(p.Parameter.Shape))));
        Assert.Equal(expectedBuffers, resnet.NamedBuffers().Select(b => (b.Name, ShapeUtil.Format(b.Buffer.Value.Shape))));
        // basic blocks: two 3×3 convs, plus a 1×1 projection in the first block of res3 … res5
        long Stage(long cin, long c, int count) => cin * c * 9 + c * c * 9 + (cin != c ? cin * c : 0) + (count - 1) * 2 * c * c * 9;
        var expectedCount = 64L * 3 * 7 * 7 + Stage(64, 64, 2) + Stage(64, 128, 2) + Stage(128, 256, 2) + Stage(256, 512, 2);
        // = 11,166,912: torchvision's resnet18 (11,689,512) less fc (512·1000 + 1000) and batch-norm affine (2·4,800)
        Assert.Equal(11_689_512L - 513_000 - 9_600, expectedCount);
        Assert.Equal(expectedCount, resnet.NamedParameters().Sum(p => p.Parameter.Value.Numel));
    }

    [Fact]
    public void StateDictRoundTripsBetweenTwoBackbones()
    {
        var g = Fresh(out var seed);
        using var a = BackboneFactory.BuildResNetFpn(18, g, widthMultiplier: 0.125, fpnOutChannels: 8);
        using var b = BackboneFactory.BuildResNetFpn(18, g, widthMultiplier: 0.125, fpnOutChannels: 8);
        RandomizeNorms(a, g);
        using (var state = a.StateDict()) b.LoadStateDict(state);
        using var x = Tensor.Randn([1, 3, 64, 64], g);
        using var _ = GradMode.NoGrad();
        var ya = a.Forward(x);
        var yb = b.Forward(x);
        // not bitwise: the CPU convolution's first call on a weight (before its reordered copy is cached) rounds
        // differently from later calls, ~1e-6 per conv, amplified to ~3e-5 through 10 convs with random norms;
        // a key that failed to load changes the outputs by O(0.1)
        foreach (var name in a.OutFeatures)
            AssertClose(ya[name].ToDoubleArray(), yb[name].ToDoubleArray(), $"{name} after loading the state dict", seed, 2e-4, 2e-4);
        BackboneModule.DisposeFeatures(ya);
        BackboneModule.DisposeFeatures(yb);
    }
}
