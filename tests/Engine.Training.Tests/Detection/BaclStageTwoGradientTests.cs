// BACL's stage 2 (long-tail-methods.md 4.1, 4.5 "in stage 2, gradients of frozen parameters are exactly zero"): a
// stage-1 run (sigmoid BCE) writes the weights, the stage-2 config (FCBL + feature hallucination, only RPN,
// classifier and regressor trainable) starts from them through DetectorTraining as `engine train` does, and after its
// training steps every frozen parameter (backbone, FPN, the box head's shared FCs) holds no gradient or an all-zero
// one, while the trainable classifier and regressor received a non-zero gradient in the same backward.
using Engine.Config;
using Engine.Data.Synthetic;
using Engine.Training.Detection;

namespace Engine.Training.Tests.Detection;

public sealed class BaclStageTwoGradientTests
{
    private const int Classes = 6;

    private static EngineConfig Config(string file, string root, string outputDir, params string[] more) =>
        ConfigLoader.Load(TinyDetector.SynthConfig(file),
        [
            $"DATASETS.ROOT={root}",
            "DATASETS.TEST=[]",
            $"OUTPUT_DIR={outputDir}",
            .. TinyDetector.Overrides(Classes),
            "SOLVER.MAX_ITER=2",
            "SOLVER.STEPS=[1]",
            "SOLVER.WARMUP_ITERS=1",
            "SOLVER.CHECKPOINT_PERIOD=2",
            "TEST.EVAL_PERIOD=0",
            "SEED=11",
            .. more,
        ]);

    [Fact]
    public void FrozenParametersOfStageTwoGetNoGradient()
    {
        var root = Toy.TempDir();
        SyntheticDataset.Generate(new SyntheticOptions
        {
            OutputDirectory = Path.Combine(root, "synth_lt"), Classes = Classes, TrainImages = 12, ValImages = 4, ImageSize = 64, Seed = 3,
        });
        var options = new DetectorTrainingOptions { LogPeriod = 1 };
        var stage1 = Toy.TempDir();
        using (var run = DetectorTraining.Build(Config("bacl_stage1.yaml", root, stage1), options)) run.Run();

        var config = Config("bacl.yaml", root, Toy.TempDir(), $"MODEL.WEIGHTS={Path.Combine(stage1, "model_final.safetensors")}");
        Assert.Equal([ModuleGroup.Rpn, ModuleGroup.Classifier, ModuleGroup.Regressor], config.Model.TrainableModules);
        using var stage2 = DetectorTraining.Build(config, options);
        stage2.Run();
        var parameters = stage2.Detector.NamedParameters().ToList();
        // the groups 4.1 freezes are there and frozen
        foreach (var prefix in new[] { "backbone.bottom_up.", "roi_heads.box_head." })
            Assert.Contains(parameters, p => p.Name.StartsWith(prefix, StringComparison.Ordinal) && p.Parameter.Frozen);
        foreach (var (name, p) in parameters)
        {
            var trainable = config.Model.TrainableModules.Any(g => DetectorWeights.InGroup(name, g));
            Assert.True(p.Frozen == !trainable, $"{name}: frozen = {p.Frozen}, trainable group = {trainable}");
            if (p.Frozen)
                Assert.True(p.Grad is null || p.Grad.ToDoubleArray().All(v => v == 0), $"frozen {name} holds a non-zero gradient after the stage-2 step");
        }
        // the same backward did reach the trainable predictor (so the check above is not of a run that kept no gradients)
        foreach (var name in new[] { "roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.bbox_pred.weight" })
        {
            var p = parameters.Single(q => q.Name == name).Parameter;
            Assert.True(p.Grad is not null && p.Grad.ToDoubleArray().Any(v => v != 0), $"{name} has no gradient after the stage-2 step");
        }
    }
}
