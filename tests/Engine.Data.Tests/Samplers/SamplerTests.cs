// Tests of the samplers: uniform epochs are permutations, reproducible from the seed and different
// from each other; shards interleave back into the unsharded stream; repeat factors on a worked
// example; repeat counts over many epochs for stochastic and ceiling rounding.
using Engine.Data.Records;
using Engine.Data.Samplers;

namespace Engine.Data.Tests.Samplers;

public class SamplerTests
{
    [Fact]
    public void TrainingSamplerEpochsArePermutationsReshuffledEachEpoch()
    {
        var g = TestSupport.Fresh(out var seed);
        var sampler = new TrainingSampler(37, seed);
        var stream = sampler.Indices().Take(37 * 4).ToArray();
        var epochs = stream.Chunk(37).ToArray();
        foreach (var e in epochs) Assert.Equal(Enumerable.Range(0, 37), e.Order());
        Assert.True(epochs.Select(e => string.Join(",", e)).Distinct().Count() == 4, $"epochs repeat (seed {seed})");
        Assert.Equal(stream, new TrainingSampler(37, seed).Indices().Take(37 * 4));
        Assert.NotEqual(stream, new TrainingSampler(37, seed + 1).Indices().Take(37 * 4));
        Assert.Equal(Enumerable.Range(0, 5).Concat(Enumerable.Range(0, 5)), new TrainingSampler(5, seed, shuffle: false).Indices().Take(10));
        _ = g;
    }

    [Fact]
    public void ShardsInterleaveIntoTheWholeStream()
    {
        TestSupport.Fresh(out var seed);
        var whole = new TrainingSampler(11, seed).Indices().Take(60).ToArray();
        var shards = Enumerable.Range(0, 3).Select(r => new TrainingSampler(11, seed, rank: r, worldSize: 3).Indices().Take(20).ToArray()).ToArray();
        for (var p = 0; p < 60; p++) Assert.Equal(whole[p], shards[p % 3][p / 3]);

        var parts = Enumerable.Range(0, 4).Select(r => new InferenceSampler(10, r, 4).Indices().ToArray()).ToArray();
        Assert.Equal(Enumerable.Range(0, 10), parts.SelectMany(p => p));
        Assert.Throws<ArgumentException>(() => new TrainingSampler(5, 1, rank: 2, worldSize: 2));
    }

    // Worked example, t = 0.4, eleven images over classes A = 0, B = 1, C = 2:
    //   image 0 {A, C}; images 1, 2 {A, B}; images 3–9 {A}; image 10 no annotations. f_c counts
    //   only the ten images with an annotation (section 1.2: I = images with at least one annotation).
    //   f_A = 10/10 = 1 → r_A = max(1, √(0.4/1) = 0.632) = 1
    //   f_B = 2/10 = 0.2 → r_B = √(0.4/0.2) = √2 = 1.41421
    //   f_C = 1/10 = 0.1 → r_C = √(0.4/0.1) = √4 = 2
    //   r_i = max over the image's classes: [2, √2, √2, 1, 1, 1, 1, 1, 1, 1, 1] (image 10: 1, nothing to repeat for).
    private static readonly int[][] WorkedClasses = [[0, 2], [0, 1], [1, 0], [0], [0], [0], [0], [0], [0], [0], []];

    [Fact]
    public void RepeatFactorsOnTheWorkedExample()
    {
        var factors = RepeatFactorTrainingSampler.ComputeRepeatFactors(WorkedClasses, 0.4);
        double[] expected = [2, Math.Sqrt(2), Math.Sqrt(2), 1, 1, 1, 1, 1, 1, 1, 1];
        for (var i = 0; i < 11; i++) Assert.Equal(expected[i], factors[i], 12);

        // Through records: duplicated classes in an image count once.
        var records = WorkedClasses.Select((cs, i) => new DatasetRecord(i, $"{i}.jpg", 10, 10,
            cs.Concat(cs).Select(c => new InstanceAnnotation(c, [0, 0, 1, 1], [])).ToArray())).ToArray();
        Assert.Equal(factors, RepeatFactorTrainingSampler.FromRecords(records, 0.4, 1).RepeatFactors);
        Assert.Throws<ArgumentException>(() => RepeatFactorTrainingSampler.ComputeRepeatFactors(WorkedClasses, 0));
    }

    [Fact]
    public void StochasticRoundingRepeatsEachImageByItsFactorOnAverage()
    {
        TestSupport.Fresh(out var seed);
        var factors = RepeatFactorTrainingSampler.ComputeRepeatFactors(WorkedClasses, 0.4);
        var sampler = new RepeatFactorTrainingSampler(factors, seed);
        const int epochs = 4000;
        var counts = new long[11];
        for (var e = 0; e < epochs; e++)
        {
            var epoch = sampler.Epoch(e);
            var perEpoch = new int[11];
            foreach (var i in epoch) perEpoch[i]++;
            Assert.Equal(2, perEpoch[0]);
            for (var i = 3; i < 11; i++) Assert.Equal(1, perEpoch[i]);
            Assert.InRange(perEpoch[1], 1, 2);
            Assert.InRange(perEpoch[2], 1, 2);
            for (var i = 0; i < 11; i++) counts[i] += perEpoch[i];
        }
        // Images 1 and 2 get ⌊√2⌋ + Bernoulli(√2 − 1) copies: mean √2·E, σ = √(E·p(1−p)) ≈ 31 for E = 4000; allow 5σ.
        var p = Math.Sqrt(2) - 1;
        var sigma = Math.Sqrt(epochs * p * (1 - p));
        foreach (var i in new[] { 1, 2 })
            Assert.True(Math.Abs(counts[i] - epochs * Math.Sqrt(2)) <= 5 * sigma,
                $"image {i} appeared {counts[i]} times in {epochs} epochs, expected {epochs * Math.Sqrt(2):F0} ± {5 * sigma:F0} (seed {seed})");
        Assert.Equal(sampler.Epoch(17), new RepeatFactorTrainingSampler(factors, seed).Epoch(17));
        Assert.Equal(sampler.Epoch(0).Concat(sampler.Epoch(1)), sampler.Indices().Take(sampler.Epoch(0).Length + sampler.Epoch(1).Length));
    }

    [Fact]
    public void CeilingRoundingRepeatsDeterministically()
    {
        TestSupport.Fresh(out var seed);
        var factors = RepeatFactorTrainingSampler.ComputeRepeatFactors(WorkedClasses, 0.4);
        var sampler = new RepeatFactorTrainingSampler(factors, seed, RepeatRounding.Ceiling);
        for (var e = 0; e < 5; e++)
        {
            var counts = sampler.Epoch(e).GroupBy(i => i).ToDictionary(g => g.Key, g => g.Count());
            Assert.Equal([2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1], Enumerable.Range(0, 11).Select(i => counts[i]));
        }
        Assert.Throws<ArgumentException>(() => new RepeatFactorTrainingSampler([1, 0.5], 1));
    }
}
