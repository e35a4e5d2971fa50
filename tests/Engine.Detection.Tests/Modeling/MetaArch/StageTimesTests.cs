// Tests of the detector's per-stage timing hook: with a StageTimes attached, a training forward and an inference
// forward each record every stage once, with times that add up to no more than the call took; with no timer (the
// default) and with one, the same weights and inputs give bit-identical losses and detections; and StageTimes
// itself sums laps, resets, and rejects a lap before a start.
using System.Diagnostics;
using Engine.Detection.Modeling;
using Engine.Detection.Modeling.MetaArch;
using Engine.Tests;

namespace Engine.Detection.Tests.Modeling.MetaArch;

public class StageTimesTests
{
    private static readonly DetectorStage[] Stages = Enum.GetValues<DetectorStage>();

    [Fact]
    public void TrainingForwardRecordsEveryStageOnce()
    {
        var g = TestUtil.Fresh(out var seed);
        using var model = DetectorBuilder.FromConfig(GeneralizedRcnnTests.TinyConfig(), g);
        var times = new StageTimes();
        model.StageTimer = times;
        var (images, targets) = GeneralizedRcnnTests.SyntheticBatch(g);
        using (images)
        {
            var watch = Stopwatch.StartNew();
            var losses = model.Forward(images, targets).Losses;
            var wall = watch.Elapsed;
            foreach (var l in losses.Values) l.Dispose();
            AssertEveryStageOnce(times, wall, seed);
        }
        foreach (var t in targets) t.Dispose();
    }

    [Fact]
    public void InferenceForwardRecordsEveryStageOnceAndSumsOverCalls()
    {
        var g = TestUtil.Fresh(out var seed);
        using var model = DetectorBuilder.FromConfig(GeneralizedRcnnTests.TinyConfig(), g);
        model.Eval();
        var times = new StageTimes();
        model.StageTimer = times;
        var (images, targets) = GeneralizedRcnnTests.SyntheticBatch(g);
        foreach (var t in targets) t.Dispose();
        using (images)
        {
            var watch = Stopwatch.StartNew();
            foreach (var d in model.Forward(images).Detections) d.Dispose();
            AssertEveryStageOnce(times, watch.Elapsed, seed);

            var first = Stages.Select(s => times[s]).ToArray();
            foreach (var d in model.Forward(images).Detections) d.Dispose();
            foreach (var s in Stages)
            {
                Assert.Equal(2, times.Count(s));
                Assert.True(times[s] > first[(int)s], $"{s}: {times[s]} after two calls, {first[(int)s]} after one; seed {seed}");
            }

            // detached again: nothing more is recorded
            model.StageTimer = null;
            var before = Stages.Select(s => times[s]).ToArray();
            foreach (var d in model.Forward(images).Detections) d.Dispose();
            Assert.Equal(before, Stages.Select(s => times[s]).ToArray());
            Assert.All(Stages, s => Assert.Equal(2, times.Count(s)));
        }
    }

    [Fact]
    public void TimingIsOffByDefaultAndChangesNoResult()
    {
        var seed = (ulong)Random.Shared.NextInt64(1, long.MaxValue);
        // two detectors from the same seed: the same weights and the same sampler streams
        using var plain = DetectorBuilder.FromConfig(GeneralizedRcnnTests.TinyConfig(), new Generator(seed));
        using var timed = DetectorBuilder.FromConfig(GeneralizedRcnnTests.TinyConfig(), new Generator(seed));
        Assert.Null(plain.StageTimer);
        var times = new StageTimes();
        timed.StageTimer = times;
        var (images, targets) = GeneralizedRcnnTests.SyntheticBatch(new Generator(seed + 1));
        using (images)
        {
            var a = plain.Forward(images, targets).Losses;
            var b = timed.Forward(images, targets).Losses;
            Assert.Equal(a.Keys.Order(), b.Keys.Order());
            foreach (var (name, loss) in a)
                Assert.True(loss.Item() == b[name].Item(), $"{name}: {loss.Item()} without the timer, {b[name].Item()} with it; seed {seed}");
            foreach (var l in a.Values.Concat(b.Values)) l.Dispose();

            plain.Eval();
            timed.Eval();
            var da = plain.Forward(images).Detections;
            var db = timed.Forward(images).Detections;
            for (var i = 0; i < da.Count; i++)
            {
                Assert.Equal(da[i].PredBoxes!.ToFloatArray(), db[i].PredBoxes!.ToFloatArray());
                Assert.Equal(da[i].Scores!.ToFloatArray(), db[i].Scores!.ToFloatArray());
                Assert.Equal(da[i].PredClasses!.ToInt64Array(), db[i].PredClasses!.ToInt64Array());
            }
            foreach (var d in da.Concat(db)) d.Dispose();
        }
        foreach (var t in targets) t.Dispose();
        Assert.All(Stages, s => Assert.Equal(2, times.Count(s)));
    }

    [Fact]
    public void StageTimesSumsLapsAndResets()
    {
        var times = new StageTimes();
        var e = Assert.Throws<InvalidOperationException>(() => times.Lap(DetectorStage.Rpn));
        Assert.Contains("call Start()", e.Message);

        var outer = Stopwatch.StartNew();
        times.Start();
        Busy(TimeSpan.FromMilliseconds(3));
        times.Lap(DetectorStage.Backbone);
        Busy(TimeSpan.FromMilliseconds(3));
        times.Lap(DetectorStage.Backbone);
        times.Lap(DetectorStage.RoiHeads);
        var wall = outer.Elapsed;
        Assert.Equal(2, times.Count(DetectorStage.Backbone));
        Assert.Equal(0, times.Count(DetectorStage.Rpn));
        Assert.Equal(1, times.Count(DetectorStage.RoiHeads));
        Assert.True(times[DetectorStage.Backbone] >= TimeSpan.FromMilliseconds(6), $"backbone {times[DetectorStage.Backbone]} after two 3 ms laps");
        Assert.Equal(TimeSpan.Zero, times[DetectorStage.Rpn]);
        Assert.True(times.Total <= wall, $"stages sum to {times.Total}, the calls took {wall}");
        // each stage is converted from clock ticks to TimeSpan ticks on its own, so each may round by one
        var sum = times[DetectorStage.Backbone] + times[DetectorStage.RoiHeads];
        Assert.InRange((times.Total - sum).Duration().Ticks, 0, 2);

        times.Reset();
        Assert.All(Stages, s => Assert.Equal(0, times.Count(s)));
        Assert.Equal(TimeSpan.Zero, times.Total);
        Assert.Throws<InvalidOperationException>(() => times.Lap(DetectorStage.Backbone));
    }

    private static void AssertEveryStageOnce(StageTimes times, TimeSpan wall, ulong seed)
    {
        foreach (var s in Stages)
        {
            Assert.True(times.Count(s) == 1, $"{s} ended {times.Count(s)} times in one forward; seed {seed}");
            Assert.True(times[s] > TimeSpan.Zero, $"{s} took {times[s]}; seed {seed}");
        }
        Assert.True(times.Total <= wall, $"stages sum to {times.Total}, the forward took {wall}; seed {seed}");
    }

    private static void Busy(TimeSpan span)
    {
        var w = Stopwatch.StartNew();
        while (w.Elapsed < span) Thread.SpinWait(100);
    }
}
