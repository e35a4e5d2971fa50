// The training loop on a small real model: the loss falls, a resumed run equals an uninterrupted one bit for
// bit, a non-finite loss stops with the last good weights saved, and the schedule sets the learning rate
// of every iteration.
using Engine.Nn;
using Engine.Optim;

namespace Engine.Training.Tests;

public sealed class TrainerTests
{
    [Fact]
    public void LossFalls()
    {
        var dir = Toy.TempDir();
        var (model, optimizer) = Toy.Build(seed: 3, initSeed: 4);
        using var _ = model.Net;
        using var __ = optimizer;
        var summary = Toy.Trainer(model, optimizer, dir, maxIter: 40, seed: 3).Run();
        var log = TrainingLog.Read(Path.Combine(dir, TrainingLog.FileName));
        Assert.Equal(Enumerable.Range(0, 40).Select(i => (long)i), log.Select(e => e.Iteration));
        var first = log.Take(5).Average(e => e.Losses["loss_cls"]);
        var last = log.TakeLast(5).Average(e => e.Losses["loss_cls"]);
        Assert.True(last < 0.5 * first, $"cross-entropy should at least halve over 40 iterations on separable clusters: first 5 mean {first}, last 5 mean {last}");
        Assert.Equal(39, summary.LastIteration);
        Assert.True(File.Exists(Path.Combine(dir, "model_final.safetensors")));
        Assert.Equal("model_final.safetensors", File.ReadAllText(Path.Combine(dir, Checkpointer.PointerFile)).Trim());
    }

    [Fact]
    public void ResumeAfterCrashIsBitIdenticalToUninterruptedRun()
    {
        const long n = 24;
        // Uninterrupted.
        var straightDir = Toy.TempDir();
        var (a, optA) = Toy.Build(seed: 9, initSeed: 1);
        using var _ = a.Net;
        using var __ = optA;
        Toy.Trainer(a, optA, straightDir, n, checkpointPeriod: 6, seed: 9).Run();

        // The same run crashes while fetching batch 14 (after the checkpoint of iteration 11 and log lines 12, 13) ...
        var dir = Toy.TempDir();
        var (b, optB) = Toy.Build(seed: 9, initSeed: 1);
        using (b.Net)
        using (optB)
        {
            var crash = Assert.Throws<IOException>(() => Toy.Trainer(b, optB, dir, n, checkpointPeriod: 6, seed: 9, failAt: 14).Run());
            Assert.Contains("batch 14", crash.Message);
        }
        Assert.Equal("model_0000011.safetensors", File.ReadAllText(Path.Combine(dir, Checkpointer.PointerFile)).Trim());
        Assert.Equal(13, TrainingLog.Read(Path.Combine(dir, TrainingLog.FileName)).Last().Iteration);

        // ... and resumes in a fresh process: a model initialised differently, a fresh optimizer.
        var (c, optC) = Toy.Build(seed: 9, initSeed: 777);
        using var ___ = c.Net;
        using var ____ = optC;
        var summary = Toy.Trainer(c, optC, dir, n, checkpointPeriod: 6, seed: 9).Run(resume: true);
        Assert.Equal(12, summary.StartIteration);

        var expected = Toy.Bits(a.Net);
        var actual = Toy.Bits(c.Net);
        Assert.Equal(expected.Keys, actual.Keys);
        foreach (var (name, bits) in expected)
            Assert.True(bits.SequenceEqual(actual[name]), $"parameter '{name}' differs bit-wise between the uninterrupted and the resumed run");
        using (var ma = optA.StateDict())
        using (var mc = optC.StateDict())
        {
            Assert.Equal(ma.Keys, mc.Keys);
            foreach (var key in ma.Keys) Assert.Equal(ma[key].ToFloatArray(), mc[key].ToFloatArray());
        }
        Assert.Equal(a.Noise.Position, c.Noise.Position);
        Assert.Equal(a.Counter.Counts, c.Counter.Counts);
        Assert.Equal(a.Counter.Batches, c.Counter.Batches);

        // The log was cut back to iteration 11 and continued: each iteration once, with the uninterrupted run's losses.
        var straightLog = TrainingLog.Read(Path.Combine(straightDir, TrainingLog.FileName));
        var resumedLog = TrainingLog.Read(Path.Combine(dir, TrainingLog.FileName));
        Assert.Equal(straightLog.Select(e => e.Iteration), resumedLog.Select(e => e.Iteration));
        for (var i = 0; i < straightLog.Count; i++)
        {
            Assert.Equal(straightLog[i].TotalLoss, resumedLog[i].TotalLoss);
            Assert.Equal(straightLog[i].Lr, resumedLog[i].Lr);
        }
    }

    [Fact]
    public void ResumeOfFinishedRunDoesNothingAndResumeWithoutCheckpointStartsAtZero()
    {
        var dir = Toy.TempDir();
        var (m, opt) = Toy.Build(seed: 2, initSeed: 2);
        using var _ = m.Net;
        using var __ = opt;
        var first = Toy.Trainer(m, opt, dir, 5).Run(resume: true);
        Assert.Equal(0, first.StartIteration);
        var before = Toy.Bits(m.Net);
        var again = Toy.Trainer(m, opt, dir, 5).Run(resume: true);
        Assert.Equal(5, again.StartIteration);
        Assert.Null(again.FinalWeights);
        Assert.Equal(before, Toy.Bits(m.Net));
        Assert.Equal(5, TrainingLog.Read(Path.Combine(dir, TrainingLog.FileName)).Count);
    }

    [Fact]
    public void NonFiniteLossStopsWithLastGoodWeightsSaved()
    {
        var dir = Toy.TempDir();
        var (m, opt) = Toy.Build(seed: 4, initSeed: 4);
        using var _ = m.Net;
        using var __ = opt;
        var e = Assert.Throws<NonFiniteLossException>(() => Toy.Trainer(m, opt, dir, 12, checkpointPeriod: 3, seed: 4, nanAt: 7).Run());
        Assert.Equal("loss_cls", e.LossName);
        Assert.True(double.IsNaN(e.Value));
        Assert.Equal(7, e.Iteration);
        Assert.Contains("'loss_cls'", e.Message);
        Assert.Contains("NaN", e.Message);
        Assert.Contains("iteration 7", e.Message);
        var saved = Path.Combine(dir, "model_nonfinite_iter7.safetensors");
        Assert.Equal(saved, e.Checkpoint);
        Assert.True(File.Exists(saved));
        // The pointer stays on the last periodic checkpoint: resuming from a NaN would only repeat it.
        Assert.Equal("model_0000005.safetensors", File.ReadAllText(Path.Combine(dir, Checkpointer.PointerFile)).Trim());

        // The saved weights are those after iteration 6: the same as a clean 7-iteration run's final weights.
        var (clean, cleanOpt) = Toy.Build(seed: 4, initSeed: 4);
        using var ___ = clean.Net;
        using var ____ = cleanOpt;
        Toy.Trainer(clean, cleanOpt, Toy.TempDir(), 7, seed: 4).Run();
        var (probe, probeOpt) = Toy.Build(seed: 4, initSeed: 99);
        using var _____ = probe.Net;
        using var ______ = probeOpt;
        probe.Net.Load(saved);
        Assert.Equal(Toy.Bits(clean.Net), Toy.Bits(probe.Net));
        Assert.Equal(Toy.Bits(clean.Net), Toy.Bits(m.Net));
    }

    /// <summary>A model with one scalar parameter w and loss w: the gradient is 1, so plain SGD moves w by exactly
    /// −lr each step and the learning rate of every iteration can be read back from w.</summary>
    private sealed class Probe : ITrainable<int>
    {
        private sealed class One : Module
        {
            public One() => W = RegisterParameter("w", Tensor.Zeros([1]));
            public Parameter W { get; }
        }

        private readonly One _m = new();
        public List<double> Seen { get; } = [];
        public Module Module => _m;
        public Parameter W => _m.W;

        public IReadOnlyDictionary<string, Tensor> Losses(int batch)
        {
            Seen.Add(_m.W.Value.ToArray<float>()[0]);
            return new Dictionary<string, Tensor> { ["loss"] = _m.W.Value.Sum() };
        }
    }

    private sealed class Counting : IBatchSource<int>
    {
        public Counting(long start) => Position = start;
        public long Position { get; private set; }
        public int Next() => (int)Position++;
        public void Dispose() { }
    }

    [Fact]
    public void ScheduleSetsTheLearningRateOfEveryIteration()
    {
        var dir = Toy.TempDir();
        var probe = new Probe();
        using var _ = probe.Module;
        using var opt = new Sgd([probe.W], lr: 123); // overwritten by the schedule every iteration
        const double baseLr = 0.5, warmupFactor = 0.1, gamma = 0.2;
        const int warmup = 4;
        long[] steps = [6, 9];
        var schedule = new WarmupMultiStepLr(baseLr, warmup, warmupFactor, WarmupMethod.Linear, steps, gamma);
        const int n = 12;
        new Trainer<int>(probe, opt, schedule, s => new Counting(s), new TrainerOptions { OutputDir = dir, MaxIter = n, LogPeriod = 1 }).Run();
        var final = probe.W.Value.ToArray<float>()[0];
        var w = probe.Seen.Append(final).ToArray();
        var log = TrainingLog.Read(Path.Combine(dir, TrainingLog.FileName));
        for (var i = 0; i < n; i++)
        {
            // detectron2's definition: gamma^(#steps ≤ i), times the linear warm-up ramp from warmupFactor to 1.
            var expected = baseLr * Math.Pow(gamma, steps.Count(s => s <= i)) *
                           (i < warmup ? warmupFactor * (1 - (double)i / warmup) + (double)i / warmup : 1);
            // w is float32 and moves by at most 0.5 per step from |w| ≤ 3: one rounding of w is ~2.4e-7, two per difference.
            Assert.True(Math.Abs(w[i] - w[i + 1] - expected) <= 1e-6, $"iteration {i}: w moved by {w[i] - w[i + 1]}, schedule says {expected}");
            Assert.Equal(expected, log[i].Lr, 12);
        }
    }

    [Fact]
    public void EvaluationRunsPeriodicallyAndAtTheEndInEvalModeWithoutGradients()
    {
        var dir = Toy.TempDir();
        var (m, opt) = Toy.Build(seed: 6, initSeed: 6);
        using var _ = m.Net;
        using var __ = opt;
        var calls = new List<long>();
        var trainer = new Trainer<ToyBatch>(m, opt, Toy.Schedule(), s => new ToySource(6, s),
                                            new TrainerOptions { OutputDir = dir, MaxIter = 12, EvalPeriod = 5 })
        {
            Evaluate = iter =>
            {
                Assert.False(m.Module.IsTraining);
                Assert.False(GradMode.IsEnabled);
                calls.Add(iter);
                return new EvaluationResult(new Dictionary<string, double> { ["accuracy"] = iter / 100.0 });
            },
        };
        trainer.Run();
        Assert.Equal([4L, 9L, 11L], calls);
        Assert.True(m.Module.IsTraining);
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json")));
        Assert.Equal(11, doc.RootElement.GetProperty("iter").GetInt64());
        Assert.Equal(0.11, doc.RootElement.GetProperty("accuracy").GetDouble());
    }

    [Fact]
    public void LossesWithoutGradientAreRejectedClearly()
    {
        var (m, opt) = Toy.Build(seed: 1, initSeed: 1);
        using var _ = m.Net;
        using var __ = opt;
        m.Net.Freeze("**");
        var e = Assert.Throws<InvalidOperationException>(() => Toy.Trainer(m, opt, Toy.TempDir(), 3, seed: 1).Run());
        Assert.Contains("iteration 0", e.Message);
        Assert.Contains("loss_cls, loss_l2", e.Message);
        Assert.Contains("frozen", e.Message);
    }

    [Fact]
    public void BadOptionsAreRejectedClearly()
    {
        var (m, opt) = Toy.Build(seed: 1, initSeed: 1);
        using var _ = m.Net;
        using var __ = opt;
        var bad = Assert.Throws<ArgumentException>(() => new Trainer<ToyBatch>(m, opt, Toy.Schedule(), s => new ToySource(1, s),
                                                                              new TrainerOptions { OutputDir = Toy.TempDir(), MaxIter = 5, LogPeriod = 0 }));
        Assert.Contains("LogPeriod", bad.Message);
    }
}
