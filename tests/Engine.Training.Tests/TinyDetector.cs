// The shipped synthetic configs shrunk to a detector that trains in seconds, shared by the end-to-end tests: GN
// needs 32 channels per stage at least (32 groups), so the stem and res2 stay at 32 and the FPN, the box head, the
// sampled RoIs and the proposal counts are narrowed instead; images are square at one size.
using Engine.Config;
using Engine.Data.Synthetic;

namespace Engine.Training.Tests;

public static class TinyDetector
{
    private static readonly Lazy<string> Root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Engine.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no Engine.sln above {AppContext.BaseDirectory}");
    });

    public static string RepoRoot => Root.Value;

    /// <summary>Classes of the shared synthetic set.</summary>
    public const int SetClasses = 6;

    private static readonly Lazy<string> SetRoot = new(() =>
    {
        var root = Toy.TempDir();
        SyntheticDataset.Generate(new SyntheticOptions
        {
            OutputDirectory = Path.Combine(root, "synth_lt"), Classes = SetClasses, TrainImages = 24, ValImages = 8, ImageSize = 64, Seed = 5,
        });
        return root;
    });

    /// <summary>DATASETS.ROOT of the synthetic set the end-to-end tests share (6 classes, 24 training and 8 validation
    /// 64×64 JPEGs with LVIS-format annotations, seed 5), written once per test run; read-only for the tests.</summary>
    public static string DatasetRoot => SetRoot.Value;

    /// <summary>configs/synth/<paramref name="file"/> shrunk to the tiny detector on the shared set, without a test set:
    /// <paramref name="maxIter"/> iterations, LR steps at 1 and 1 warm-up iteration, checkpoints every 2, seed 7, then
    /// <paramref name="more"/> overrides.</summary>
    public static EngineConfig Run(string file, string outputDir, long maxIter, params string[] more) =>
        ConfigLoader.Load(SynthConfig(file),
        [
            $"DATASETS.ROOT={DatasetRoot}",
            "DATASETS.TEST=[]",
            $"OUTPUT_DIR={outputDir}",
            .. Overrides(SetClasses),
            $"SOLVER.MAX_ITER={maxIter}",
            "SOLVER.STEPS=[1]",
            "SOLVER.WARMUP_ITERS=1",
            "SOLVER.CHECKPOINT_PERIOD=2",
            "TEST.EVAL_PERIOD=0",
            "SEED=7",
            .. more,
        ]);

    /// <summary>configs/synth/<paramref name="file"/> of the repository.</summary>
    public static string SynthConfig(string file = "faster_rcnn_r18_fpn.yaml") => Path.Combine(RepoRoot, "configs", "synth", file);

    /// <summary>Model, input and batch overrides for <paramref name="classes"/> classes on <paramref name="size"/>-pixel images.</summary>
    public static IEnumerable<string> Overrides(int classes, int size = 64) =>
    [
        $"MODEL.ROI_HEADS.NUM_CLASSES={classes}",
        "MODEL.FPN.OUT_CHANNELS=32",
        "MODEL.ROI_BOX_HEAD.FC_DIM=64",
        "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE=32",
        "MODEL.RPN.PRE_NMS_TOPK_TRAIN=200",
        "MODEL.RPN.POST_NMS_TOPK_TRAIN=64",
        "MODEL.RPN.PRE_NMS_TOPK_TEST=200",
        "MODEL.RPN.POST_NMS_TOPK_TEST=64",
        $"INPUT.MIN_SIZE_TRAIN=[{size}]",
        $"INPUT.MAX_SIZE_TRAIN={size}",
        $"INPUT.MIN_SIZE_TEST={size}",
        $"INPUT.MAX_SIZE_TEST={size}",
        "SOLVER.IMS_PER_BATCH=2",
        "SOLVER.BASE_LR=0.01",
    ];
}
