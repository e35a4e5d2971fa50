// Small real models and batch sources the trainer tests drive: a two-layer classifier over Gaussian
// clusters whose batches are a pure function of (seed, batch index), with a noise generator and a
// running class-count component (the shape of a long-tail loss's statistics) that both feed the loss,
// so a resume that forgot either would not reproduce the uninterrupted run.
using System.Text.Json.Nodes;
using Engine.Nn;
using Engine.Optim;

namespace Engine.Training.Tests;

public sealed class ToyBatch(Tensor x, Tensor y, long index) : IDisposable
{
    public Tensor X { get; } = x; // (B, D) float32
    public Tensor Y { get; } = y; // (B) int64
    public long Index { get; } = index;

    public void Dispose()
    {
        X.Dispose();
        Y.Dispose();
    }
}

/// <summary>Batch k: labels uniform over K classes, x = center[label] + N(0, 0.5²), all drawn from a generator
/// derived from (seed, k). <c>nanAt</c> poisons one batch; <c>failAt</c> throws instead of delivering it (a crash).</summary>
public sealed class ToySource : IBatchSource<ToyBatch>
{
    public const int Features = 6, Classes = 3, BatchSize = 16;
    private readonly ulong _seed;
    private readonly float[] _centers;
    private readonly long? _nanAt, _failAt;

    public ToySource(ulong seed, long start, long? nanAt = null, long? failAt = null)
    {
        _seed = seed;
        Position = start;
        _nanAt = nanAt;
        _failAt = failAt;
        var g = new Generator(seed ^ 0xC3);
        _centers = Enumerable.Range(0, Classes * Features).Select(_ => (float)(2 * g.NextNormal())).ToArray();
    }

    public long Position { get; private set; }

    public ToyBatch Next()
    {
        var k = Position;
        if (k == _failAt) throw new IOException($"ToySource: simulated crash while reading batch {k}.");
        var g = new Generator(Engine.Data.Seeds.Derive(_seed, 7, (ulong)k));
        var x = new float[BatchSize * Features];
        var y = new long[BatchSize];
        for (var i = 0; i < BatchSize; i++)
        {
            y[i] = g.NextInt64(Classes);
            for (var d = 0; d < Features; d++) x[i * Features + d] = _centers[y[i] * Features + d] + (float)(0.5 * g.NextNormal());
        }
        if (k == _nanAt) x[3] = float.NaN;
        Position++;
        using (DisposeScope.Suspend())
            return new ToyBatch(Tensor.From(x, BatchSize, Features), Tensor.From(y, BatchSize), k);
    }

    public void Dispose() { }
}

/// <summary>Counts the labels seen; the loss weights classes by 1/√(count + 1) (normalised to mean 1).</summary>
public sealed class ClassCounter : IStatefulComponent
{
    public double[] Counts { get; } = new double[ToySource.Classes];
    public long Batches { get; private set; }

    public void Observe(long[] labels)
    {
        foreach (var l in labels) Counts[l]++;
        Batches++;
    }

    public float[] Weights()
    {
        var w = Counts.Select(c => 1 / Math.Sqrt(c + 1)).ToArray();
        var mean = w.Average();
        return w.Select(v => (float)(v / mean)).ToArray();
    }

    public ComponentState SaveState()
    {
        using (DisposeScope.Suspend())
            return new ComponentState(new Dictionary<string, Tensor> { ["counts"] = Tensor.FromDoubles(Counts, [Counts.Length], DType.Int64) },
                                      new Dictionary<string, JsonNode?> { ["batches"] = Batches });
    }

    public void LoadState(ComponentState state)
    {
        var counts = state.Tensors["counts"].ToInt64Array();
        for (var i = 0; i < Counts.Length; i++) Counts[i] = counts[i];
        Batches = state.Values["batches"]!.GetValue<long>();
    }
}

public sealed class ToyNet : Module
{
    public ToyNet(Generator init, int hidden = 12)
    {
        Fc1 = RegisterModule("fc1", new Linear(ToySource.Features, hidden, init));
        Fc2 = RegisterModule("fc2", new Linear(hidden, ToySource.Classes, init));
    }

    public Linear Fc1 { get; }
    public Linear Fc2 { get; }
}

/// <summary>Cross-entropy with count-based class weights on noisy inputs, plus a small L2 term on fc1.</summary>
public sealed class ToyClassifier : ITrainable<ToyBatch>
{
    private readonly Generator _noise;
    private readonly ClassCounter _counter = new();

    /// <param name="initSeed">initialisation (a resumed run may start from any: the checkpoint replaces it).</param>
    public ToyClassifier(ulong seed, ulong initSeed)
    {
        Net = new ToyNet(new Generator(initSeed));
        _noise = new Generator(Engine.Data.Seeds.Derive(seed, 11, 0));
    }

    public ToyNet Net { get; }
    public Module Module => Net;
    public Generator Noise => _noise;
    public ClassCounter Counter => _counter;

    public IReadOnlyDictionary<string, Generator> Generators => new Dictionary<string, Generator> { ["noise"] = _noise };
    public IReadOnlyDictionary<string, IStatefulComponent> StatefulComponents => new Dictionary<string, IStatefulComponent> { ["class_counter"] = _counter };

    public IReadOnlyDictionary<string, Tensor> Losses(ToyBatch batch)
    {
        var noise = Tensor.Randn(batch.X.ShapeArray(), _noise, 0, 0.1);
        var x = batch.X.Add(noise);
        var logits = Net.Fc2.Forward(Net.Fc1.Forward(x).Relu());
        _counter.Observe(batch.Y.ToInt64Array());
        var weight = Tensor.From(_counter.Weights(), ToySource.Classes);
        var cls = Engine.Losses.CrossEntropy(logits, batch.Y, weight);
        var l2 = Net.Fc1.Weight.Value.Square().Sum().Mul(1e-3);
        return new Dictionary<string, Tensor> { ["loss_cls"] = cls, ["loss_l2"] = l2 };
    }
}

public static class Toy
{
    public static (ToyClassifier Model, Sgd Optimizer) Build(ulong seed, ulong initSeed, double lr = 0.1)
    {
        var model = new ToyClassifier(seed, initSeed);
        var optimizer = new Sgd(ParamGroups.Build(model.Module, weightDecay: 1e-4), lr, momentum: 0.9);
        return (model, optimizer);
    }

    public static WarmupMultiStepLr Schedule(double lr = 0.1) => new(lr, 4, 0.01, WarmupMethod.Linear, [20, 30], 0.1);

    public static Trainer<ToyBatch> Trainer(ToyClassifier model, Sgd optimizer, string dir, long maxIter, long checkpointPeriod = 0,
                                            int logPeriod = 1, ulong seed = 5, long? nanAt = null, long? failAt = null,
                                            ILrSchedule? schedule = null) =>
        new(model, optimizer, schedule ?? Schedule(), start => new ToySource(seed, start, nanAt, failAt),
            new TrainerOptions { OutputDir = dir, MaxIter = maxIter, CheckpointPeriod = checkpointPeriod, LogPeriod = logPeriod });

    /// <summary>Every parameter and buffer as raw bits, by name.</summary>
    public static Dictionary<string, int[]> Bits(Module m)
    {
        using var dict = m.StateDict();
        return dict.ToDictionary(kv => kv.Key, kv => kv.Value.ToFloatArray().Select(BitConverter.SingleToInt32Bits).ToArray());
    }

    private static readonly string Root = CreateRoot();

    // One folder per test process, removed when the process exits. The test host may be stopped before its ProcessExit
    // handlers run, so the folders of earlier processes that are no longer running are removed first (each run writes
    // several hundred MB of checkpoints).
    private static string CreateRoot()
    {
        var parent = Path.Combine(Path.GetTempPath(), "engine-training-tests");
        RemoveFoldersOfEndedProcesses(parent);
        var root = Path.Combine(parent, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (IOException)
            {
                // Another handle still open: the folder stays in the temp directory.
            }
        };
        return root;
    }

    private static void RemoveFoldersOfEndedProcesses(string parent)
    {
        if (!Directory.Exists(parent)) return;
        foreach (var dir in Directory.EnumerateDirectories(parent))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == Environment.ProcessId || IsRunning(pid)) continue;
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // another user's folder, or one being removed by a concurrent run: leave it
            }
        }
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    public static string TempDir()
    {
        var dir = Path.Combine(Root, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }
}
