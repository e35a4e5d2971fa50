// The documented key mapping: UPPER_SNAKE keys from PascalCase property names, the one explicit exception,
// and uniqueness of every key path of the schema.
using System.Reflection;

namespace Engine.Config.Tests.Binding;

public sealed class KeyNamesTests
{
    [Theory]
    [InlineData("BaseLr", "BASE_LR")]
    [InlineData("MinSizeTrain", "MIN_SIZE_TRAIN")]
    [InlineData("RoiBoxHead", "ROI_BOX_HEAD")]
    [InlineData("Res2OutChannels", "RES2_OUT_CHANNELS")]
    [InlineData("SmoothL1Beta", "SMOOTH_L1_BETA")]
    [InlineData("PreNmsTopkTrain", "PRE_NMS_TOPK_TRAIN")]
    [InlineData("Eqlv2", "EQLV2")]
    [InlineData("Seed", "SEED")]
    public void MechanicalRule(string property, string key) => Assert.Equal(key, KeyNames.FromPascalCase(property));

    [Fact]
    public void ExplicitKeyOverridesTheRule()
    {
        var p = typeof(ResnetsConfig).GetProperty(nameof(ResnetsConfig.StrideIn1x1))!;
        Assert.Equal("STRIDE_IN_1X1", KeyNames.KeyOf(p));
        Assert.False(ConfigLoader.LoadText("MODEL:\n  RESNETS:\n    STRIDE_IN_1X1: false\n").Model.Resnets.StrideIn1x1);
    }

    [Fact]
    public void EverySchemaKeyIsUpperSnakeCaseAndUnique()
    {
        var paths = ConfigSchema.KeyPaths(ConfigSchema.For(typeof(EngineConfig)), "").ToArray();
        Assert.Equal(paths.Length, paths.Distinct().Count());
        foreach (var path in paths)
            foreach (var segment in path.Split('.'))
                Assert.True(segment == ConfigSchema.AnyName || System.Text.RegularExpressions.Regex.IsMatch(segment, "^[A-Z][A-Z0-9_]*$"), path);
        // The keys the detectron2-style configs rely on are all there.
        foreach (var key in new[] { "MODEL.RESNETS.DEPTH", "MODEL.ROI_HEADS.NUM_CLASSES", "SOLVER.BASE_LR", "INPUT.MIN_SIZE_TRAIN",
                                    "DATASETS.TRAIN", "DATALOADER.SAMPLER_TRAIN", "DATALOADER.REPEAT_THRESHOLD", "TEST.DETECTIONS_PER_IMAGE",
                                    "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "MODEL.RESNETS.STRIDE_IN_1X1", "SOLVER.CLIP_GRADIENTS.CLIP_VALUE",
                                    "MODEL.LONG_TAIL.EQLV2.GAMMA", "MODEL.LONG_TAIL.BACL.FHM.FEATURES_PER_CLASS", "DATASETS.CATALOG.<name>.JSON" })
            Assert.Contains(key, paths);
    }

    [Fact]
    public void EveryEnumSpellingIsDistinct()
    {
        var enums = typeof(EngineConfig).Assembly.GetTypes().Where(t => t.IsEnum && t.IsPublic);
        foreach (var type in enums)
        {
            var spellings = KeyNames.EnumSpellings(type).Select(s => s.Spelling).ToArray();
            Assert.Equal(spellings.Length, spellings.Distinct().Count());
        }
    }

    [Fact]
    public void RecordsAreImmutable()
    {
        // Every bound property has an init-only setter (the records cannot change after loading).
        foreach (var type in typeof(EngineConfig).Assembly.GetTypes().Where(t => t.Namespace == "Engine.Config" && t.Name.EndsWith("Config", StringComparison.Ordinal) && t.IsClass && !t.IsAbstract && t.IsPublic))
            foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.SetMethod is { IsPublic: true }))
                Assert.True(p.SetMethod!.ReturnParameter.GetRequiredCustomModifiers().Any(m => m.Name == "IsExternalInit"), $"{type.Name}.{p.Name} must be init-only.");
    }
}
