// Train-mode BatchNorm in the backbone (MODEL.RESNETS.NORM / MODEL.FPN.NORM = "BN"), with detectron2's semantics:
// every conv of a trained stage and of the FPN is followed by a BatchNorm2d named "norm" (bias-free conv),
// frozen stages get FrozenBatchNorm2d instead (detectron2's freeze converts them), checkpoint names carry
// running_mean / running_var / num_batches_tracked, training moves the running statistics and evaluation uses them.
using Engine.Detection.Modeling.Backbone;
using Engine.Nn;
using static Engine.Detection.Tests.Modeling.Backbone.BackboneTestUtil;

namespace Engine.Detection.Tests.Modeling.Backbone;

public class BatchNormBackboneTests
{
    private static FpnBackbone Build(Generator g, int freezeAt) =>
        BackboneFactory.BuildResNetFpn(18, g, freezeAt: freezeAt, norm: NormKind.BatchNorm, fpnOutChannels: 16, fpnNorm: NormKind.BatchNorm,
                                       widthMultiplier: 0.125);

    [Fact]
    public void FrozenStagesGetFrozenBatchNormAndTrainedOnesBatchNormWithPyTorchNames()
    {
        var g = Fresh(out _);
        using var backbone = Build(g, freezeAt: 2);
        var norms = backbone.NamedModules().Where(m => m.Module is INormLayer).ToList();
        Assert.NotEmpty(norms);
        foreach (var (name, module) in norms)
        {
            var frozenStage = name.StartsWith("bottom_up.stem.", StringComparison.Ordinal) || name.StartsWith("bottom_up.res2.", StringComparison.Ordinal);
            Assert.True(frozenStage ? module is FrozenBatchNorm2d : module is BatchNorm2d, $"{name} is {module.GetType().Name}");
        }
        var buffers = backbone.NamedBuffers().Select(b => b.Name).ToHashSet();
        foreach (var key in new[] { "bottom_up.res3.0.conv1.norm.running_mean", "bottom_up.res3.0.conv1.norm.running_var",
                                    "bottom_up.res3.0.conv1.norm.num_batches_tracked", "bottom_up.res5.1.conv2.norm.running_var",
                                    "fpn_lateral2.norm.running_mean", "fpn_output5.norm.num_batches_tracked",
                                    "bottom_up.stem.conv1.norm.running_mean", "bottom_up.res2.0.conv1.norm.weight" })
            Assert.Contains(key, buffers);
        // frozen layers have detectron2's FrozenBatchNorm2d state: four buffers, no counter
        Assert.DoesNotContain("bottom_up.stem.conv1.norm.num_batches_tracked", buffers);
        var parameters = backbone.NamedParameters().Select(p => p.Name).ToHashSet();
        Assert.Contains("bottom_up.res3.0.conv1.norm.weight", parameters);
        Assert.Contains("fpn_output3.norm.bias", parameters);
        // a conv followed by a norm has no bias of its own, in the FPN too
        Assert.DoesNotContain("fpn_lateral2.bias", parameters);
        Assert.DoesNotContain("bottom_up.res3.0.conv1.bias", parameters);
    }

    [Fact]
    public void TrainingMovesRunningStatisticsAndEvaluationUsesThem()
    {
        var g = Fresh(out var seed);
        using var backbone = Build(g, freezeAt: 1);
        using var x = Tensor.Randn([2, 3, 64, 64], g);
        var bns = backbone.NamedModules().Where(m => m.Module is BatchNorm2d).Select(m => (m.Name, Bn: (BatchNorm2d)m.Module)).ToList();
        var frozen = backbone.NamedModules().Where(m => m.Module is FrozenBatchNorm2d).Select(m => (FrozenBatchNorm2d)m.Module).ToList();
        Assert.NotEmpty(bns);
        Assert.Single(frozen);   // the stem's

        Dictionary<string, float[]> Outputs()
        {
            using var scope = DisposeScope.Begin();
            return backbone.Forward(x).ToDictionary(kv => kv.Key, kv => kv.Value.ToFloatArray());
        }

        var frozenState = frozen[0].RunningVar.Value.ToFloatArray();
        backbone.Train();
        var train = Outputs();
        foreach (var (name, bn) in bns)
        {
            Assert.Equal(1, bn.NumBatchesTracked.Value.Item());
            Assert.Contains(bn.RunningMean.Value.ToDoubleArray(), v => v != 0);           // moved from 0 toward the batch means
            Assert.Contains(bn.RunningVar.Value.ToDoubleArray(), v => v != 1);            // and from 1 toward the variances
        }
        Assert.Equal(frozenState, frozen[0].RunningVar.Value.ToFloatArray());

        // train mode normalizes every BN output channel to batch mean 0 (before the affine, which starts at w 1, b 0):
        // the FPN output convs end in BN, so every p level of the trained FPN has per-channel means ≈ 0
        foreach (var level in new[] { "p2", "p3", "p4", "p5" })
        {
            var values = train[level];
            var perChannel = values.Length / 2 / 16;
            for (var ch = 0; ch < 16; ch++)
            {
                double sum = 0;
                for (var n = 0; n < 2; n++)
                    for (var k = 0; k < perChannel; k++) sum += values[(n * 16 + ch) * perChannel + k];
                Assert.True(Math.Abs(sum / (2 * perChannel)) < 1e-4, $"{level} channel {ch}: batch mean {sum / (2 * perChannel)} (seed {seed})");
            }
        }

        var state = bns.Select(b => (b.Bn.RunningMean.Value.ToFloatArray(), b.Bn.RunningVar.Value.ToFloatArray())).ToList();
        backbone.Eval();
        var eval = Outputs();
        var evalAgain = Outputs();
        foreach (var level in train.Keys)
        {
            Assert.Equal(eval[level], evalAgain[level]);                                        // evaluation is a fixed function
            var difference = eval[level].Zip(train[level], (a, b) => Math.Abs(a - b)).Max();
            Assert.True(difference > 1e-2, $"{level}: train and eval outputs differ by at most {difference} (seed {seed})");
        }
        for (var i = 0; i < bns.Count; i++)
        {
            Assert.Equal(state[i].Item1, bns[i].Bn.RunningMean.Value.ToFloatArray());
            Assert.Equal(state[i].Item2, bns[i].Bn.RunningVar.Value.ToFloatArray());
            Assert.Equal(1, bns[i].Bn.NumBatchesTracked.Value.Item());
        }
    }
}
