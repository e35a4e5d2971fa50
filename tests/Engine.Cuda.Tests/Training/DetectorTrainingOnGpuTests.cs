// `engine train --device cuda` against the CPU on the tiny end-to-end schedule (the shipped synthetic config shrunk to a
// 6-class detector on 64×64 images, as Engine.Training.Tests' TinyDetector shrinks it): the same weights, batches and
// samplers' generators on both devices, so the runs differ only by the kernels' rounding (cuDNN/cuBLAS against oneDNN,
// the CUDA ops against the CPU ones) and by what that rounding flips downstream (proposals near the NMS threshold or the
// top-k cut, hence some sampled RoIs). The RPN losses of the first iteration see identical anchors and labels and must
// agree to float rounding; the box head's to a few percent; over the schedule the GPU's losses must track the CPU's, and
// the final evaluation must run on the GPU and score within noise of the CPU's.
using System.Text.Json;
using Engine.Config;
using Engine.Cuda.Tests.Ops;
using Engine.Data.Synthetic;
using Engine.Evaluation;
using Engine.Tests;
using Engine.Training;
using Engine.Training.Detection;

namespace Engine.Cuda.Tests.Training;

public sealed class DetectorTrainingOnGpuTests
{
    private const int Classes = 6;

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Engine.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no Engine.sln above {AppContext.BaseDirectory}");
    }

    private static EngineConfig Config(string root, string output, Device device) =>
        ConfigLoader.Load(Path.Combine(RepoRoot(), "configs", "synth", "faster_rcnn_r18_fpn.yaml"),
        [
            $"DATASETS.ROOT={root}", $"OUTPUT_DIR={output}", $"MODEL.DEVICE={device}",
            $"MODEL.ROI_HEADS.NUM_CLASSES={Classes}", "MODEL.FPN.OUT_CHANNELS=32", "MODEL.ROI_BOX_HEAD.FC_DIM=64",
            "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE=32", "MODEL.RPN.PRE_NMS_TOPK_TRAIN=200", "MODEL.RPN.POST_NMS_TOPK_TRAIN=64",
            "MODEL.RPN.PRE_NMS_TOPK_TEST=200", "MODEL.RPN.POST_NMS_TOPK_TEST=64",
            "INPUT.MIN_SIZE_TRAIN=[64]", "INPUT.MAX_SIZE_TRAIN=64", "INPUT.MIN_SIZE_TEST=64", "INPUT.MAX_SIZE_TEST=64",
            "SOLVER.IMS_PER_BATCH=2", "SOLVER.BASE_LR=0.01", "SOLVER.MAX_ITER=12", "SOLVER.STEPS=[8]", "SOLVER.WARMUP_ITERS=2",
            "SOLVER.CHECKPOINT_PERIOD=100", "TEST.EVAL_PERIOD=0", "SEED=7",
        ]);

    [CudaFact]
    public void TinyScheduleOnTheGpuTracksTheCpuRun()
    {
        var gpu = OpsParity.GpuDevice; // registers the CUDA backends
        var root = Path.Combine(Path.GetTempPath(), $"engine-gpu-train-{Guid.NewGuid():N}");
        SyntheticDataset.Generate(new SyntheticOptions
        {
            OutputDirectory = Path.Combine(root, "synth_lt"), Classes = Classes, TrainImages = 24, ValImages = 8, ImageSize = 64, Seed = 5,
        });
        var runs = new Dictionary<Device, string>();
        foreach (var device in new[] { Device.Cpu, gpu })
        {
            var output = Path.Combine(root, device.ToString().Replace(':', '_'));
            using var run = DetectorTraining.Build(Config(root, output, device), new DetectorTrainingOptions { LogPeriod = 1 });
            run.Run();
            Assert.Equal(device, run.Detector.Device);
            runs[device] = output;
        }

        var cpu = TrainingLog.Read(Path.Combine(runs[Device.Cpu], TrainingLog.FileName));
        var cuda = TrainingLog.Read(Path.Combine(runs[gpu], TrainingLog.FileName));
        Assert.Equal(cpu.Select(e => e.Iteration), cuda.Select(e => e.Iteration));
        string Show(LogEntry e) => string.Join(", ", e.Losses.Select(kv => $"{kv.Key}={kv.Value:G6}"));
        var (c0, g0) = (cpu[0], cuda[0]);
        // float32 sums over a few thousand anchors in another order: a few ulps, far inside 1e-3
        foreach (var key in new[] { "loss_rpn_cls", "loss_rpn_loc" })
            Assert.True(Math.Abs(c0.Losses[key] - g0.Losses[key]) <= 1e-4 + 1e-3 * Math.Abs(c0.Losses[key]),
                        $"iteration 0 {key}: cpu {Show(c0)}; cuda {Show(g0)}");
        foreach (var key in new[] { "loss_cls", "loss_box_reg" })
            Assert.True(Math.Abs(c0.Losses[key] - g0.Losses[key]) <= 1e-3 + 0.05 * Math.Abs(c0.Losses[key]),
                        $"iteration 0 {key}: cpu {Show(c0)}; cuda {Show(g0)}");
        Assert.All(cuda, e => Assert.True(double.IsFinite(e.TotalLoss), $"cuda iteration {e.Iteration}: {Show(e)}"));
        var (cpuMean, cudaMean) = (cpu.Average(e => e.TotalLoss), cuda.Average(e => e.TotalLoss));
        Assert.True(Math.Abs(cpuMean - cudaMean) <= 0.1 * cpuMean,
                    $"mean total loss over the schedule: cpu {cpuMean:G6}, cuda {cudaMean:G6}; per iteration cpu [{string.Join(", ", cpu.Select(e => e.TotalLoss.ToString("G4")))}], " +
                    $"cuda [{string.Join(", ", cuda.Select(e => e.TotalLoss.ToString("G4")))}]");

        double Ap(string dir)
        {
            using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, ReportFiles.MetricsFile)));
            return metrics.RootElement.GetProperty("AP").GetDouble();
        }
        // 8 validation images after 12 iterations: AP is small and noisy; the GPU's must be within 0.05 of the CPU's
        Assert.True(Math.Abs(Ap(runs[Device.Cpu]) - Ap(runs[gpu])) <= 0.05, $"AP: cpu {Ap(runs[Device.Cpu])}, cuda {Ap(runs[gpu])}");
        Directory.Delete(root, recursive: true);
    }
}
