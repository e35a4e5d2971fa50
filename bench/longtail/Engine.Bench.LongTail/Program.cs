// Time of one forward + backward of every classification loss, and of one LogN statistics update and
// calibration, at the size they run at per iteration: N = 1024 sampled RoIs, C = 1203 LVIS classes.
// Median of repeats after enough warm-up calls for tiered compilation to settle.
// Run: dotnet run -c Release --project bench/longtail/Engine.Bench.LongTail [-- repeats]
using System.Diagnostics;
using Engine;
using Engine.LongTail;

const int N = 1024, C = 1203;
var repeats = args.Length > 0 && int.TryParse(args[0], out var r) ? r : 15;
var g = new Generator(1);
var counts = Enumerable.Range(0, C).Select(_ => 1 + g.NextInt64(20000)).ToArray();
// 25 % foreground RoIs with random classes, the rest background (index C)
var labels = Enumerable.Range(0, N).Select(_ => g.NextDouble() < 0.25 ? g.NextInt64(C) : C).ToArray();

Tensor Logits(int k) => Tensor.Rand([N, k], g, -6, 6);

double MedianMs(Action run)
{
    for (var w = 0; w < 40; w++) run();
    var times = new double[repeats];
    for (var i = 0; i < repeats; i++)
    {
        var sw = Stopwatch.StartNew();
        run();
        times[i] = sw.Elapsed.TotalMilliseconds;
    }
    Array.Sort(times);
    return times[repeats / 2];
}

using var repoCalibrator = new LogitNormCalibrator(C);
var losses = new (string, IClassificationLoss)[]
{
    ("softmax CE", new SoftmaxCrossEntropyLoss(C)),
    ("re-weighted CE", new SoftmaxCrossEntropyLoss(C, ClassWeights.InverseFrequency(counts))),
    ("sigmoid BCE", new SigmoidBceLoss(C)),
    ("EQL", new EqlLoss(counts, 100_000, 0.0011)),
    ("EQLv2", new Eqlv2Loss(C)),
    ("Federated", new FederatedLoss(counts, new Generator(2))),
    ("Seesaw", new SeesawLoss(C)),
    ("BAGS", new GroupSoftmaxLoss(counts, new Generator(3))),
    ("FCBL", new FcblLoss(C)),
    ("LogN repo", new LogitNormSoftmaxLoss(repoCalibrator)),   // standardized logits, the running update in the same pass
};
Console.WriteLine($"N = {N}, C = {C}, median of {repeats}, {Environment.ProcessorCount} cores");
using var y = Tensor.From(labels);
foreach (var (name, loss) in losses)
    using (loss)
    {
        using var z = Logits(loss.LogitCount).RequireGrad();
        var ms = MedianMs(() =>
        {
            using var scope = DisposeScope.Begin();
            loss.Loss(z, y).Backward();
            z.ZeroGrad();
        });
        Console.WriteLine($"{name,-16} forward+backward {ms,8:F2} ms");
    }
using var calibrator = new LogitNormCalibrator(C);
using var zc = Logits(C + 1);
Console.WriteLine($"{"LogN",-16} statistics update {MedianMs(() => calibrator.Accumulate(zc)),7:F2} ms, calibrated scores {MedianMs(() => { using var s = calibrator.Scores(zc); }):F2} ms");
