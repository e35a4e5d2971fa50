// Tests of building the detector from the shipped configuration files: the settings reach the modules (RPN
// top-k, anchors on the backbone's strides, LVIS-style score threshold and detections per image, class
// count, norm layers), and settings the engine does not build are rejected with a message naming the key.
using Engine.Config;
using Engine.Detection.Modeling;
using Engine.Detection.Modeling.Backbone;
using Engine.Tests;

namespace Engine.Detection.Tests.Modeling;

public class DetectorBuilderTests
{
    private static string ConfigPath(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Engine.sln")) && File.Exists(Path.Combine(dir.FullName, "configs", relative)))
                return Path.Combine(dir.FullName, "configs", relative);
        throw new FileNotFoundException($"configs/{relative} not found above {AppContext.BaseDirectory}.");
    }

    [Fact]
    public void SyntheticConfigReachesEveryModule()
    {
        var g = TestUtil.Fresh(out _);
        var config = ConfigLoader.Load(ConfigPath("synth/faster_rcnn_r18_fpn.yaml"));
        using var model = DetectorBuilder.FromConfig(config, g);
        var rpn = model.ProposalGenerator;
        Assert.Equal((1000, 1000), rpn.PreNmsTopk);
        Assert.Equal((500, 300), rpn.PostNmsTopk);
        Assert.Equal([4, 8, 16, 32, 64], rpn.AnchorGenerator.Strides);
        using (var cell = rpn.AnchorGenerator.CellAnchors(0))
            Assert.Equal(16.0 * 16.0, cell.ToFloatArray().Chunk(4).Select(a => (a[2] - a[0]) * (a[3] - a[1])).Average(), 2);   // SIZES [[16], …] on p2
        Assert.Equal(256, rpn.Sampler.BatchSizePerImage);
        var predictor = model.RoiHeads.BoxPredictor;
        Assert.Equal(40, predictor.NumClasses);
        Assert.Equal(1e-4, predictor.ScoreThreshold);
        Assert.Equal(300, predictor.DetectionsPerImage);
        Assert.Equal(64, model.RoiHeads.Sampler.BatchSizePerImage);
        Assert.Equal([1.0 / 4, 1.0 / 8, 1.0 / 16, 1.0 / 32], model.RoiHeads.Pooler.Scales);
        Assert.Equal(new BoxCoderWeights(10, 10, 5, 5), predictor.BoxTransform.Weights);
        Assert.Equal([512, 128 * 7 * 7], model.NamedParameters().Single(p => p.Name == "roi_heads.box_head.fc1.weight").Parameter.Shape.ToArray());
        Assert.Equal(NormKind.GroupNorm, ((ResNet)((FpnBackbone)model.Backbone).BottomUp).Norm);
        Assert.Equal([57.375f, 57.12f, 58.395f], model.PixelStd);
    }

    [Fact]
    public void BatchNormConfigBuildsBatchNormBackboneAndFpn()
    {
        var g = TestUtil.Fresh(out _);
        var config = ConfigLoader.Load(ConfigPath("synth/faster_rcnn_r18_fpn.yaml"), ["MODEL.RESNETS.NORM=BN", "MODEL.FPN.NORM=BN"]);
        using var model = DetectorBuilder.FromConfig(config, g);
        Assert.Equal(NormKind.BatchNorm, ((ResNet)((FpnBackbone)model.Backbone).BottomUp).Norm);
        var buffers = model.NamedBuffers().Select(b => b.Name).ToHashSet();
        // FREEZE_AT 0 in this config: every stage trains, so the stem has a BatchNorm2d too
        Assert.Contains("backbone.bottom_up.stem.conv1.norm.running_mean", buffers);
        Assert.Contains("backbone.bottom_up.res4.1.conv2.norm.num_batches_tracked", buffers);
        Assert.Contains("backbone.fpn_output2.norm.running_var", buffers);
        Assert.DoesNotContain(model.NamedModules(), m => m.Module is Engine.Nn.FrozenBatchNorm2d or Engine.Nn.GroupNorm);
    }

    [Fact]
    public void UnknownRoiFeatureIsRejectedNamingTheKey()
    {
        var g = TestUtil.Fresh(out _);
        var config = MetaArch.GeneralizedRcnnTests.TinyConfig();
        config = config with { Model = config.Model with { RoiHeads = config.Model.RoiHeads with { InFeatures = ["p2", "p9"] } } };
        var e = Assert.Throws<ArgumentException>(() => DetectorBuilder.FromConfig(config, g));
        Assert.Contains("MODEL.ROI_HEADS.IN_FEATURES", e.Message);
        Assert.Contains("p9", e.Message);
    }
}
