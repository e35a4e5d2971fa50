// kernels/logit_norm.cu on a GPU against the double reference (LogitNormReference) and the CPU implementation
// (LongTailBackends.Cpu for the statistics, LogitNormCalibrator for the calibration): EMA updates repeated on one
// state, the exact merge over batches of several sizes (one row, none), the calibration with a variance below the
// 1e-11 floor and a zero variance, the background column bit-identical, the softmax scores, odd column counts and
// an empty batch; `repo` mode's batch standardization, forward (with and without the fused running update) and
// backward, in several block shapes; outputs poisoned with NaN.
using Engine.Cuda.Kernels;
using Engine.LongTail;
using Engine.LongTail.Reference;
using Engine.Tests;
using static Engine.Cuda.Tests.Kernels.KernelTestSupport;

namespace Engine.Cuda.Tests.Kernels;

public sealed class LogitNormKernelsTests
{
    // The statistics are formed in double and rounded once to float, like the reference's final values: within
    // half an ulp (6e-8 relative) plus the difference of two double sums, so 3e-7 relative (about 2.5 ulp) is ample,
    // and the 1e-9 absolute term covers values that cancel to near zero. Each EMA or merge step rounds the stored
    // float state again, so the references below replay the same float roundings step by step.
    private const double StatisticsAbs = 1e-9, StatisticsRel = 3e-7;

    public static TheoryData<int, int> Shapes => new() { { 2, 1 }, { 3, 2 }, { 513, 33 }, { 64, 1204 }, { 1000, 7 } };

    [CudaTheory]
    [MemberData(nameof(Shapes))]
    public void EmaUpdateMatchesTheReference(int rows, int columns)
    {
        var random = new SeededRandom();
        var mean = random.Uniform(columns, -3, 3);
        var variance = random.Uniform(columns, 0.1, 4);
        using var meanBuffer = Upload(mean);
        using var varianceBuffer = Upload(variance);
        double[] expectedMean = Doubles(mean), expectedVariance = Doubles(variance);
        foreach (var momentum in new[] { 5e-5, 0.3, 1.0 })
        {
            var logits = random.Uniform((long)rows * columns, -8, 8);
            using var logitBuffer = Upload(logits);
            LogitNorm.UpdateRunningStatistics(DeviceView.Dense(logitBuffer, rows, columns), momentum, meanBuffer, varianceBuffer);
            LogitNormReference.EmaUpdate(Doubles(logits), rows, columns, momentum, expectedMean, expectedVariance);
            var (actualMean, actualVariance) = (meanBuffer.ToArray(), varianceBuffer.ToArray());
            var context = $"EMA ({rows}, {columns}) momentum {momentum}";
            AssertClose(expectedMean, actualMean, StatisticsAbs, StatisticsRel, $"{context} mean", random.Seed, guard: false);
            AssertClose(expectedVariance, actualVariance, StatisticsAbs, StatisticsRel, $"{context} variance", random.Seed, guard: false);
            // the reference continues from the stored floats, as the calibrator's state does
            (expectedMean, expectedVariance) = (Doubles(actualMean), Doubles(actualVariance));
        }
    }

    /// <summary>Every block shape a benchmark may pick gives the reference's statistics, in both modes: fewer columns
    /// per block than K has (several blocks, a partial last one), more than K has, and one slice or many.</summary>
    [CudaTheory]
    [InlineData(32, 8)]
    [InlineData(8, 32)]
    [InlineData(8, 128)]
    [InlineData(16, 64)]
    [InlineData(32, 32)]
    [InlineData(1, 1)]
    [InlineData(64, 16)]
    [InlineData(5, 24)] // a slice count that is no power of two
    public void EveryStatisticsBlockShapeMatchesTheReference(int blockColumns, int slices)
    {
        using var kernels = new LogitNormKernels(GpuContext.Device, GpuContext.Compiler) { StatisticsBlock = (blockColumns, slices) };
        var random = new SeededRandom();
        // rows past 16 per slice are read twice instead of held in registers: 1025 rows are at 16 × 64
        foreach (var (rows, columns) in new[] { (513, 37), (3, 1204), (200, 5), (1025, 19) })
        {
            var context = $"block {blockColumns}x{slices}, ({rows}, {columns})";
            var mean = random.Uniform(columns, -3, 3);
            var variance = random.Uniform(columns, 0.1, 4);
            var logits = random.Uniform((long)rows * columns, -8, 8);
            using var logitBuffer = Upload(logits);
            using var meanBuffer = Upload(mean);
            using var varianceBuffer = Upload(variance);
            kernels.UpdateRunningStatistics(DeviceView.Dense(logitBuffer, rows, columns), 0.3, meanBuffer, varianceBuffer);
            double[] expectedMean = Doubles(mean), expectedVariance = Doubles(variance);
            LogitNormReference.EmaUpdate(Doubles(logits), rows, columns, 0.3, expectedMean, expectedVariance);
            AssertClose(expectedMean, meanBuffer.ToArray(), StatisticsAbs, StatisticsRel, $"{context} EMA mean", random.Seed, guard: false);
            AssertClose(expectedVariance, varianceBuffer.ToArray(), StatisticsAbs, StatisticsRel, $"{context} EMA variance", random.Seed, guard: false);

            using var count = Upload(new long[] { 0 });
            using var merged = Upload(new float[columns]);
            using var m2 = Upload(new float[columns]);
            kernels.MergeStatistics(DeviceView.Dense(logitBuffer, rows, columns), count, merged, m2);
            var (batchMean, batchVariance) = LogitNormReference.BatchStatistics(Doubles(logits), rows, columns);
            Assert.Equal(rows, count.ToArray()[0]);
            AssertClose(batchMean, merged.ToArray(), StatisticsAbs, StatisticsRel, $"{context} merged mean", random.Seed, guard: false);
            AssertClose(batchVariance.Select(v => v * (rows - 1)).ToArray(), m2.ToArray(), StatisticsAbs, StatisticsRel, $"{context} M2",
                        random.Seed, guard: false);
        }
    }

    [CudaTheory]
    [MemberData(nameof(Shapes))]
    public void ExactMergeMatchesTheCpuBackend(int rows, int columns)
    {
        var random = new SeededRandom();
        using var count = Upload(new long[] { 0 });
        using var mean = Upload(new float[columns]);
        using var m2 = Upload(new float[columns]);
        using var cpuCount = Tensor.Zeros([1], DType.Int64);
        using var cpuMean = Tensor.Zeros([columns]);
        using var cpuM2 = Tensor.Zeros([columns]);
        var all = new List<float>();
        foreach (var batch in new[] { rows, 1, 0, rows + 5 })
        {
            var logits = random.Uniform((long)batch * columns, -8, 8);
            all.AddRange(logits);
            using var logitBuffer = Upload(logits);
            LogitNorm.MergeStatistics(DeviceView.Dense(logitBuffer, batch, columns), count, mean, m2);
            using var cpuLogits = Tensor.From(logits, [batch, columns]);
            LongTailBackends.Cpu.MergeStatistics(cpuLogits, cpuCount, cpuMean, cpuM2);

            var context = $"merge ({batch}, {columns}) after {all.Count / columns} rows";
            Assert.Equal(cpuCount.ToArray<long>()[0], count.ToArray()[0]);
            AssertClose(Doubles(cpuMean.ToArray<float>()), mean.ToArray(), StatisticsAbs, StatisticsRel, $"{context} mean", random.Seed, guard: false);
            AssertClose(Doubles(cpuM2.ToArray<float>()), m2.ToArray(), StatisticsAbs, StatisticsRel, $"{context} M2", random.Seed, guard: false);
        }
        // and the merged statistics are those of all rows at once (float state rounded after each merge: 1e-5)
        var n = all.Count / columns;
        var (exactMean, exactVariance) = LogitNormReference.BatchStatistics(Doubles(all.ToArray()), n, columns);
        AssertClose(exactMean, mean.ToArray(), 1e-5, 1e-5, "merged mean vs all rows", random.Seed, guard: false);
        AssertClose(exactVariance.Select(v => v * (n - 1)).ToArray(), m2.ToArray(), 1e-5, 1e-5, "merged M2 vs all rows", random.Seed, guard: false);
    }

    public static TheoryData<int, int> CalibrationShapes => new() { { 0, 5 }, { 1, 2 }, { 7, 2 }, { 37, 31 }, { 300, 1204 } };

    [CudaTheory]
    [MemberData(nameof(CalibrationShapes))]
    public void CalibrationMatchesTheCalibrator(int rows, int columns)
    {
        var random = new SeededRandom();
        var classes = columns - 1;
        var mean = random.Uniform(columns, -4, 2);
        var variance = random.Uniform(columns, 0.05, 9);
        if (classes >= 3)
        {
            variance[0] = 1e-13f;   // below the 1e-11 floor
            variance[1] = 0f;
        }
        var logits = random.Uniform((long)rows * columns, -6, 6);
        using var calibrator = new LogitNormCalibrator(classes);
        using (var m = Tensor.From(mean, [columns]))
        using (var v = Tensor.From(variance, [columns]))
            calibrator.LoadStateDict(new Dictionary<string, Tensor> { ["running_mean"] = m, ["running_var"] = v });
        using var cpuLogits = Tensor.From(logits, [rows, columns]);
        using var cpuCalibrated = calibrator.Calibrate(cpuLogits);
        using var cpuScores = calibrator.Scores(cpuLogits);

        using var logitBuffer = Upload(logits);
        using var meanBuffer = Upload(mean);
        using var varianceBuffer = Upload(variance);
        var view = DeviceView.Dense(logitBuffer, rows, columns);
        using var calibrated = GpuContext.Poisoned((long)rows * columns);
        using var scores = GpuContext.Poisoned((long)rows * columns);
        LogitNorm.Calibrate(view, meanBuffer, varianceBuffer, softmax: false, calibrated);
        LogitNorm.Calibrate(view, meanBuffer, varianceBuffer, softmax: true, scores);
        var context = $"calibration ({rows}, {columns})";

        // the same float operations as the CPU path: bit-identical, background column included
        var actual = calibrated.ToArray();
        AssertBitEqual(cpuCalibrated.ToArray<float>(), actual, context, random.Seed);
        Assert.True(float.IsNaN(actual[^1]), $"{context}: guard overwritten (seed {random.Seed})");
        for (var i = 0; i < rows; i++)
            Assert.True(BitConverter.SingleToInt32Bits(actual[i * columns + classes]) == BitConverter.SingleToInt32Bits(logits[i * columns + classes]),
                $"{context}: background of row {i} changed (seed {random.Seed})");

        // against the double definition: the float path rounds z − shift (|z| + |shift| ≤ 12) and the quotient, so
        // the error is a few ulps of 12 / sd plus a few ulps of the result
        var expected = LogitNormReference.Calibrate(Doubles(logits), rows, classes, Doubles(mean), Doubles(variance));
        for (var i = 0; i < expected.Length; i++)
        {
            var c = i % columns;
            var sd = c < classes ? Math.Sqrt(Math.Max(variance[c], 1e-11)) : 1;
            var tolerance = 4 * 6e-8 * (12 / sd + Math.Abs(expected[i]));
            Assert.True(Math.Abs(actual[i] - expected[i]) <= tolerance,
                $"{context}: element {i} is {actual[i]:R}, reference {expected[i]:R} (tolerance {tolerance:G3}; seed {random.Seed})");
        }

        // softmax: float exp and sums over K ≤ 1204 terms of at most 1: 1e-6 absolute, 1e-5 relative
        AssertClose(Doubles(cpuScores.ToArray<float>()), scores.ToArray(), 1e-6, 1e-5, $"{context} scores", random.Seed);
    }

    public static TheoryData<int, int, int, int> StandardizeCases => new()
    {
        { 2, 1, 32, 32 }, { 3, 2, 32, 32 }, { 513, 33, 32, 32 }, { 64, 1204, 32, 32 }, { 1000, 7, 32, 32 },
        { 513, 37, 8, 128 }, { 200, 5, 1, 1 }, { 3, 1204, 64, 16 },
        // the default block: every row held in registers (1024 = 16 × 64), and one row more (read again from memory)
        { 1024, 1204, 16, 64 }, { 1025, 37, 16, 64 },
    };

    [CudaTheory]
    [MemberData(nameof(StandardizeCases))]
    public void StandardizeMatchesTheReferenceAndTheCpuBackend(int rows, int columns, int blockColumns, int slices)
    {
        using var kernels = new LogitNormKernels(GpuContext.Device, GpuContext.Compiler) { StatisticsBlock = (blockColumns, slices) };
        var random = new SeededRandom();
        var context = $"standardize ({rows}, {columns}), block {blockColumns}x{slices}";
        const double eps = 1e-5;
        var logits = random.Uniform((long)rows * columns, -8, 8);
        // two rows: keep every column's gap ≥ 1, so 1/sd ≤ 2 and the tolerances below hold (see the CPU tests)
        while (rows == 2 && Enumerable.Range(0, columns).Any(j => Math.Abs(logits[j] - logits[columns + j]) < 1))
            logits = random.Uniform((long)rows * columns, -8, 8);
        var gradient = random.Uniform((long)rows * columns, -1, 1);
        var mean = random.Uniform(columns, -3, 3);
        var variance = random.Uniform(columns, 0.1, 4);
        using var logitBuffer = Upload(logits);
        using var gradientBuffer = Upload(gradient);
        using var meanBuffer = Upload(mean);
        using var varianceBuffer = Upload(variance);
        using var output = GpuContext.Poisoned((long)rows * columns);
        using var inverseSd = GpuContext.Poisoned(columns);
        using var gradLogits = GpuContext.Poisoned((long)rows * columns);
        var view = DeviceView.Dense(logitBuffer, rows, columns);
        kernels.Standardize(view, eps, output, inverseSd, (meanBuffer, varianceBuffer, 0.3));
        kernels.StandardizeBackward(DeviceView.Dense(output, rows, columns), DeviceView.Dense(gradientBuffer, rows, columns), inverseSd, gradLogits);

        // against the double definitions: y is formed in double and rounded once; the running statistics as the EMA
        // update's (StatisticsAbs/Rel); the gradient reads the float y and 1/sd, whose roundings times |g| ≤ 1 and 1/sd of
        // a few stay below 1e-5
        var z = Doubles(logits);
        AssertClose(LogitNormReference.Standardize(z, rows, columns, eps), output.ToArray(), 1e-6, 1e-6, $"{context} y", random.Seed);
        var (_, unbiased) = LogitNormReference.BatchStatistics(z, rows, columns);
        AssertClose(unbiased.Select(v => 1 / Math.Sqrt(v * (rows - 1) / rows + eps)).ToArray(), inverseSd.ToArray(), 1e-9, 1e-7, $"{context} 1/sd",
                    random.Seed);
        double[] expectedMean = Doubles(mean), expectedVariance = Doubles(variance);
        LogitNormReference.EmaUpdate(z, rows, columns, 0.3, expectedMean, expectedVariance);
        AssertClose(expectedMean, meanBuffer.ToArray(), StatisticsAbs, StatisticsRel, $"{context} running mean", random.Seed, guard: false);
        AssertClose(expectedVariance, varianceBuffer.ToArray(), StatisticsAbs, StatisticsRel, $"{context} running variance", random.Seed, guard: false);
        AssertClose(LogitNormReference.StandardizeBackward(z, rows, columns, eps, Doubles(gradient)), gradLogits.ToArray(), 1e-5, 1e-4,
                    $"{context} gradient", random.Seed);

        // and the CPU backend's results (the same formulas; only the order of the double sums differs)
        using var cpuLogits = Tensor.From(logits, [rows, columns]);
        using var cpuY = Tensor.Empty([rows, columns]);
        using var cpuR = Tensor.Empty([columns]);
        LongTailBackends.Cpu.StandardizeLogits(cpuLogits, eps, cpuY, cpuR, null, null, 0);
        AssertClose(Doubles(cpuY.ToArray<float>()), output.ToArray(), 1e-6, 1e-6, $"{context} y vs CPU", random.Seed);

        // without running statistics nothing else is written, and y is the same
        using var untouched = Upload(mean);
        using var again = GpuContext.Poisoned((long)rows * columns);
        kernels.Standardize(view, eps, again, inverseSd);
        AssertBitEqual(output.ToArray(), again.ToArray(), $"{context} y without the running update", random.Seed);
        AssertBitEqual(mean, untouched.ToArray(), $"{context} a buffer not passed", random.Seed);
    }

    [CudaFact]
    public void BadArgumentsAreRejected()
    {
        using var logits = GpuContext.Device.Allocate<float>(12);
        using var stats = GpuContext.Device.Allocate<float>(4);
        using var other = GpuContext.Device.Allocate<float>(4);
        var one = Assert.Throws<ArgumentException>(() => LogitNorm.UpdateRunningStatistics(DeviceView.Dense(logits, 1, 4), 0.1, stats, other));
        Assert.Contains("at least 2", one.Message);
        var momentum = Assert.Throws<ArgumentException>(() => LogitNorm.UpdateRunningStatistics(DeviceView.Dense(logits, 3, 4), 0, stats, other));
        Assert.Contains("momentum 0", momentum.Message);
        var same = Assert.Throws<ArgumentException>(() => LogitNorm.UpdateRunningStatistics(DeviceView.Dense(logits, 3, 4), 0.1, stats, stats));
        Assert.Contains("same buffer", same.Message);
        var small = Assert.Throws<ArgumentException>(() => LogitNorm.Calibrate(DeviceView.Dense(logits, 2, 6), stats, other, false, logits));
        Assert.Contains("mean holds 4", small.Message);
        var background = Assert.Throws<ArgumentException>(() => LogitNorm.Calibrate(DeviceView.Dense(logits, 12, 1), stats, other, false, other));
        Assert.Contains("background", background.Message);
        var rows = Assert.Throws<ArgumentException>(() => LogitNorm.Standardize(DeviceView.Dense(logits, 1, 4), 1e-5, other, stats));
        Assert.Contains("at least 2", rows.Message);
        var aliased = Assert.Throws<ArgumentException>(() => LogitNorm.Standardize(DeviceView.Dense(logits, 3, 4), 1e-5, logits, stats));
        Assert.Contains("output and logits are the same buffer", aliased.Message);
        using var y = GpuContext.Device.Allocate<float>(12);
        using var two = GpuContext.Device.Allocate<float>(2);
        var shortMean = Assert.Throws<ArgumentException>(() => LogitNorm.Standardize(DeviceView.Dense(logits, 3, 4), 1e-5, y, stats, (two, other, 0.1)));
        Assert.Contains("mean holds 2", shortMean.Message);
        var gradient = Assert.Throws<ArgumentException>(() => LogitNorm.StandardizeBackward(DeviceView.Dense(y, 3, 4), DeviceView.Dense(logits, 4, 3), stats, other));
        Assert.Contains("gradOutput has shape", gradient.Message);
        var block = Assert.Throws<ArgumentOutOfRangeException>(() => LogitNorm.StatisticsBlock = (64, 32));
        Assert.Contains("at most 1024 threads", block.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => LogitNorm.StatisticsBlock = (0, 8));
        Assert.Equal((16, 64), LogitNorm.StatisticsBlock); // the default, unchanged by the refused shapes
    }
}
