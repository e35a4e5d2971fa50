// The root of the resolved configuration: detector (MODEL), input pipeline (INPUT), datasets, loader,
// solver and test settings, plus the seed and output folder. Built once by ConfigLoader from YAML files
// and --set overrides; the drivers hand its sub-records to each module's FromConfig and nothing below the
// drivers sees the config tree. Defaults are detectron2's config/defaults.py with its
// configs/Base-RCNN-FPN.yaml applied (the engine builds only the FPN detector), so an absent key means
// what it means in a detectron2 Faster R-CNN FPN run.
namespace Engine.Config;

public sealed record EngineConfig
{
    public ModelConfig Model { get; init; } = new();
    public InputConfig Input { get; init; } = new();
    public DatasetsConfig Datasets { get; init; } = new();
    public DataloaderConfig Dataloader { get; init; } = new();
    public SolverConfig Solver { get; init; } = new();
    public TestConfig Test { get; init; } = new();

    /// <summary>Seed of every random generator of a run; negative draws one from the clock (detectron2: -1).</summary>
    public long Seed { get; init; } = -1;

    /// <summary>Folder of a run's outputs: effective config, log.jsonl, checkpoints, metrics.</summary>
    public string OutputDir { get; init; } = "./output";

    /// <summary>detectron2's config-format version; only 2 exists.</summary>
    public int Version { get; init; } = 2;

    /// <summary>The fully resolved config as YAML (every key, defaults included). Loading it back gives an
    /// equal record; the trainer saves it as a run's effective config.</summary>
    public string ToYaml() => ConfigYamlWriter.Write(this);

    /// <summary>Semantic checks (see ConfigValidator); throws a ConfigException listing every problem.</summary>
    public void Validate()
    {
        var issues = ConfigValidator.Check(this);
        if (issues.Count > 0) throw ConfigValidator.ToException(issues, locations: null);
    }
}
