// The starting point of a run and the decoupled stages (ARCHITECTURE.md: "configs that start from a checkpoint and
// freeze all but named parameters"): MODEL.WEIGHTS is loaded into the freshly built detector, except the module
// groups of MODEL.REINIT_MODULES, which keep their fresh initialization (BAGS replaces the classifier with a (C+6)-
// output one); MODEL.TRAINABLE_MODULES then freezes every parameter outside the listed groups (BACL stage 2:
// rpn, classifier, regressor). The calibrator's statistics are optional on both sides: a model calibrated later
// starts from an uncalibrated checkpoint, and a calibrated checkpoint can seed a model without a calibrator.
// Also the class statistics of the training set the long-tail components read.
using Engine.Config;
using Engine.Data.Records;
using Engine.Detection.Modeling;
using Engine.Detection.Modeling.MetaArch;
using Engine.Nn;
using Engine.Serialization;

namespace Engine.Training.Detection;

public static class DetectorWeights
{
    /// <summary>Prefix of the calibrator's statistics buffers.</summary>
    public const string CalibratorPrefix = "roi_heads.box_predictor.calibrator.";

    /// <summary>Whether the parameter or buffer <paramref name="name"/> belongs to <paramref name="group"/>.</summary>
    public static bool InGroup(string name, ModuleGroup group) => group switch
    {
        ModuleGroup.Backbone => name.StartsWith("backbone.bottom_up.", StringComparison.Ordinal),
        ModuleGroup.Fpn => name.StartsWith("backbone.", StringComparison.Ordinal) && !name.StartsWith("backbone.bottom_up.", StringComparison.Ordinal),
        ModuleGroup.Rpn => name.StartsWith("proposal_generator.", StringComparison.Ordinal),
        ModuleGroup.BoxHead => name.StartsWith("roi_heads.box_head.", StringComparison.Ordinal),
        ModuleGroup.Classifier => name.StartsWith("roi_heads.box_predictor.cls_score.", StringComparison.Ordinal),
        ModuleGroup.Regressor => name.StartsWith("roi_heads.box_predictor.bbox_pred.", StringComparison.Ordinal),
        ModuleGroup.MaskHead => name.StartsWith("roi_heads.mask_head.", StringComparison.Ordinal),
        _ => throw new ArgumentException($"DetectorWeights: module group {group} has no parameter names."),
    };

    /// <summary>Loads MODEL.WEIGHTS (when set) and applies MODEL.TRAINABLE_MODULES; returns the loaded keys' count.</summary>
    public static int Prepare(GeneralizedRcnn detector, ModelConfig model)
    {
        ArgumentNullException.ThrowIfNull(detector);
        ArgumentNullException.ThrowIfNull(model);
        if (model.Weights.Length == 0 && model.ReinitModules.Count > 0)
            throw new ArgumentException($"DetectorWeights: MODEL.REINIT_MODULES [{string.Join(", ", model.ReinitModules.Select(g => KeyNames.ValueOf(g)))}] re-initializes part of a loaded model, but MODEL.WEIGHTS is empty; name the checkpoint to start from.");
        var loaded = model.Weights.Length == 0 ? 0 : LoadInitial(detector, model.Weights, model.ReinitModules);
        Freeze(detector, model.TrainableModules);
        return loaded;
    }

    /// <summary>Copies every tensor of the safetensors file <paramref name="path"/> into the detector, except those of the
    /// re-initialized groups. Each parameter and buffer outside them (the calibrator's statistics excepted) must be in
    /// the file with its shape, and the file may hold nothing else; otherwise nothing is loaded.</summary>
    public static int LoadInitial(GeneralizedRcnn detector, string path, IReadOnlyCollection<ModuleGroup> reinit)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"DetectorWeights: MODEL.WEIGHTS file {Path.GetFullPath(path)} does not exist (a run writes model_final.safetensors into its OUTPUT_DIR).", path);
        bool Skipped(string key) => reinit.Any(g => InGroup(key, g));
        using var file = SafeTensors.Load(path);
        var model = detector.StateDict();
        using (model)
        {
            var problems = new List<string>();
            var unexpected = file.Keys.Where(k => !model.ContainsKey(k) && !Skipped(k) && !k.StartsWith(CalibratorPrefix, StringComparison.Ordinal)).ToList();
            if (unexpected.Count > 0) problems.Add($"the file has {unexpected.Count} key(s) the model lacks: {Show(unexpected)}");
            var missing = model.Keys.Where(k => !file.ContainsKey(k) && !Skipped(k) && !k.StartsWith(CalibratorPrefix, StringComparison.Ordinal)).ToList();
            if (missing.Count > 0) problems.Add($"the model has {missing.Count} key(s) the file lacks: {Show(missing)}");
            var wrongShape = model.Keys.Where(k => file.ContainsKey(k) && !Skipped(k) && !file[k].Shape.SequenceEqual(model[k].Shape))
                                  .Select(k => $"'{k}' {ShapeUtil.Format(file[k].Shape)} in the file, {ShapeUtil.Format(model[k].Shape)} in the model").ToList();
            if (wrongShape.Count > 0) problems.Add($"{wrongShape.Count} shape mismatch(es): {string.Join("; ", wrongShape.Take(10))}");
            if (problems.Count > 0)
                throw new InvalidOperationException($"DetectorWeights: MODEL.WEIGHTS {path} does not fit the detector this config builds, nothing was loaded: {string.Join(". ", problems)}. " +
                                                    "Start from a checkpoint of the same architecture, and list the parts that change (a classifier of another width) in MODEL.REINIT_MODULES.");
        }
        var selected = file.Where(kv => !Skipped(kv.Key) && (!kv.Key.StartsWith(CalibratorPrefix, StringComparison.Ordinal) || HasKey(detector, kv.Key)))
                           .ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        detector.LoadStateDict(selected, strict: false);
        return selected.Count;
    }

    /// <summary>Freezes every parameter outside the <paramref name="trainable"/> groups (none when the list is empty);
    /// parameters frozen already (MODEL.BACKBONE.FREEZE_AT) stay frozen.</summary>
    public static void Freeze(GeneralizedRcnn detector, IReadOnlyCollection<ModuleGroup> trainable)
    {
        if (trainable.Count == 0) return;
        var parameters = detector.NamedParameters().ToList();
        foreach (var g in trainable)
            if (!parameters.Any(p => InGroup(p.Name, g)))
                throw new ArgumentException($"DetectorWeights: MODEL.TRAINABLE_MODULES lists \"{KeyNames.ValueOf(g)}\", but the detector has no such parameters.");
        foreach (var (name, p) in parameters)
            if (!trainable.Any(g => InGroup(name, g))) p.Frozen = true;
    }

    /// <summary>m_c, n_c and I of the training records (long-tail-methods.md 0.1).</summary>
    public static ClassStatistics Statistics(IReadOnlyList<DatasetRecord> records, int numClasses) =>
        ClassStatistics.FromAnnotations(numClasses, records.Select(r => (IReadOnlyList<int>)r.Instances.Select(a => a.CategoryIndex).ToList()));

    private static bool HasKey(GeneralizedRcnn detector, string key) => detector.NamedBuffers().Any(b => b.Name == key) || detector.NamedParameters().Any(p => p.Name == key);

    private static string Show(List<string> keys) => string.Join(", ", keys.Take(10).Select(k => $"'{k}'")) + (keys.Count > 10 ? $", … ({keys.Count - 10} more)" : "");
}
