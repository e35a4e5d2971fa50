// Checkpoint files: a failed save leaves the previous checkpoint whole and the pointer on it; missing or
// corrupt files give errors that name the file.
using System.Text.Json.Nodes;
using Engine.Optim;

namespace Engine.Training.Tests;

public sealed class CheckpointerTests
{
    [Fact]
    public void FailedSaveLeavesPreviousCheckpointAndPointerIntact()
    {
        const long n = 12;
        var dir = Toy.TempDir();
        // A directory where the trainer state of iteration 7 must go makes that save fail after the weights are written.
        Directory.CreateDirectory(Path.Combine(dir, Checkpointer.TrainerJsonFile(Checkpointer.PeriodicName(7))));
        var (m, opt) = Toy.Build(seed: 8, initSeed: 8);
        using (m.Net)
        using (opt)
        {
            var e = Assert.Throws<IOException>(() => Toy.Trainer(m, opt, dir, n, checkpointPeriod: 4, seed: 8).Run());
            Assert.Contains("model_0000007.trainer.json", e.Message);
        }
        Assert.Equal("model_0000003.safetensors", File.ReadAllText(Path.Combine(dir, Checkpointer.PointerFile)).Trim());
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
        Assert.Empty(Directory.GetFiles(dir, ".*"));

        // The previous checkpoint is whole: resuming from it reproduces the uninterrupted run.
        Directory.Delete(Path.Combine(dir, Checkpointer.TrainerJsonFile(Checkpointer.PeriodicName(7))));
        var (r, optR) = Toy.Build(seed: 8, initSeed: 80);
        using var _ = r.Net;
        using var __ = optR;
        Assert.Equal(4, Toy.Trainer(r, optR, dir, n, checkpointPeriod: 4, seed: 8).Run(resume: true).StartIteration);
        var (s, optS) = Toy.Build(seed: 8, initSeed: 8);
        using var ___ = s.Net;
        using var ____ = optS;
        Toy.Trainer(s, optS, Toy.TempDir(), n, checkpointPeriod: 4, seed: 8).Run();
        Assert.Equal(Toy.Bits(s.Net), Toy.Bits(r.Net));
    }

    private static string TrainedDir(out ToyClassifier model, out Sgd optimizer)
    {
        var dir = Toy.TempDir();
        (model, optimizer) = Toy.Build(seed: 2, initSeed: 2);
        Toy.Trainer(model, optimizer, dir, 4, checkpointPeriod: 2, seed: 2).Run();
        return dir;
    }

    private static Exception ResumeError(string dir)
    {
        var (m, opt) = Toy.Build(seed: 2, initSeed: 3);
        using var _ = m.Net;
        using var __ = opt;
        return Assert.Throws<CheckpointException>(() => Toy.Trainer(m, opt, dir, 6, seed: 2).Run(resume: true));
    }

    [Fact]
    public void PointerToMissingWeightsNamesTheFile()
    {
        var dir = TrainedDir(out var m, out var opt);
        using var _ = m.Net;
        using var __ = opt;
        File.WriteAllText(Path.Combine(dir, Checkpointer.PointerFile), "model_0000999.safetensors\n");
        var e = ResumeError(dir);
        Assert.Contains("model_0000999.safetensors", e.Message);
        Assert.Contains("does not exist", e.Message);
    }

    [Fact]
    public void MissingTrainerStateNamesTheFile()
    {
        var dir = TrainedDir(out var m, out var opt);
        using var _ = m.Net;
        using var __ = opt;
        File.Delete(Path.Combine(dir, "model_final.trainer.safetensors"));
        var e = ResumeError(dir);
        Assert.Contains("model_final.trainer.safetensors", e.Message);
        Assert.Contains("missing", e.Message);
    }

    [Fact]
    public void CorruptTrainerJsonNamesTheFile()
    {
        var dir = TrainedDir(out var m, out var opt);
        using var _ = m.Net;
        using var __ = opt;
        var json = Path.Combine(dir, "model_final.trainer.json");
        File.WriteAllText(json, File.ReadAllText(json)[..20]);
        var e = ResumeError(dir);
        Assert.Contains(json, e.Message);
        Assert.Contains("corrupt", e.Message);
    }

    [Fact]
    public void TruncatedWeightsNameTheFile()
    {
        var dir = TrainedDir(out var m, out var opt);
        using var _ = m.Net;
        using var __ = opt;
        var weights = Path.Combine(dir, "model_final.safetensors");
        var bytes = File.ReadAllBytes(weights);
        File.WriteAllBytes(weights, bytes[..(bytes.Length - 9)]);
        var e = ResumeError(dir);
        Assert.Contains(weights, e.Message);
    }

    [Fact]
    public void ResumeWithAnotherSeedIsRefused()
    {
        var dir = TrainedDir(out var m, out var opt);
        using var _ = m.Net;
        using var __ = opt;
        var (other, otherOpt) = Toy.Build(seed: 5, initSeed: 2);
        using var ___ = other.Net;
        using var ____ = otherOpt;
        var e = Assert.Throws<CheckpointException>(() => Toy.Trainer(other, otherOpt, dir, 6, seed: 5).Run(resume: true));
        Assert.Contains("generator 'noise'", e.Message);
        Assert.Contains("SEED", e.Message);
    }

    [Fact]
    public void TrainerStateRecordsIterationPositionGeneratorsAndComponents()
    {
        var dir = TrainedDir(out var m, out var opt);
        using var _ = m.Net;
        using var __ = opt;
        var state = Checkpointer.ReadState(Path.Combine(dir, "model_0000001.trainer.json"));
        Assert.Equal(1, state.Iteration);
        Assert.Equal(2, state.SourcePosition);
        Assert.True(state.Generators["noise"].Position > 0);
        Assert.Equal(2, state.ComponentValues["class_counter"]["batches"]!.GetValue<long>());
        using var tensors = Engine.Serialization.SafeTensors.Load(Path.Combine(dir, "model_0000001.trainer.safetensors"));
        Assert.Equal(2 * ToySource.BatchSize, tensors["component.class_counter.counts"].ToInt64Array().Sum());
        Assert.Contains(tensors.Keys, k => k.StartsWith("optimizer.", StringComparison.Ordinal) && k.EndsWith(".momentum_buffer", StringComparison.Ordinal));
        Assert.IsType<JsonObject>(JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "model_0000001.trainer.json"))));
    }
}
