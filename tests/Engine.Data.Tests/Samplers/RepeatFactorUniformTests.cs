// The RFS row of the long-tail test matrix (long-tail-methods.md 1.2 and section 8): when every class's image
// frequency f_c is at least the threshold t, every repeat factor is exactly 1 and the sampler is uniform shuffling:
// each epoch holds every image exactly once (in both roundings), and the order is a uniformly random permutation
// (the position of each image is uniform over the epoch, and consecutive epochs are reshuffled).
using Engine.Data.Samplers;

namespace Engine.Data.Tests.Samplers;

public class RepeatFactorUniformTests
{
    [Theory]
    [InlineData(RepeatRounding.Stochastic)]
    [InlineData(RepeatRounding.Ceiling)]
    public void EveryClassAtOrAboveTheThresholdGivesUniformShuffling(RepeatRounding rounding)
    {
        var g = TestSupport.Fresh(out var seed);
        const int images = 12, classes = 5, epochs = 6000;
        // class c is in images c, c + 5, c + 10, …: f_c ∈ {3/12, 2/12}; t = 2/12 puts the rarest classes exactly at the
        // threshold (r_c = max(1, √1) = 1) and the others above it. Image order and extra classes are random.
        var perImage = Enumerable.Range(0, images).Select(i => new List<int> { i % classes }).ToArray();
        foreach (var list in perImage)
            if (g.NextDouble() < 0.5) list.Add(list[0]); // a duplicate annotation of the same class counts once
        var shuffled = g.Permutation(images).Select(p => (IReadOnlyCollection<int>)perImage[p]).ToArray();
        var factors = RepeatFactorTrainingSampler.ComputeRepeatFactors(shuffled, 2.0 / 12);
        Assert.All(factors, f => Assert.Equal(1.0, f));

        var sampler = new RepeatFactorTrainingSampler(factors, seed, rounding);
        var atPosition = new long[images, images];
        var distinctOrders = new HashSet<string>();
        for (var e = 0; e < epochs; e++)
        {
            var epoch = sampler.Epoch(e);
            Assert.Equal(Enumerable.Range(0, images), epoch.Order());
            for (var p = 0; p < images; p++) atPosition[epoch[p], p]++;
            if (e < 20) distinctOrders.Add(string.Join(",", epoch));
        }
        Assert.True(distinctOrders.Count == 20, $"{rounding}: the first 20 epochs hold only {distinctOrders.Count} distinct orders (seed {seed})");
        // each (image, position) count ~ Binomial(epochs, 1/12): mean 500, sd ≈ 21.4; 5 sd over 144 cells keeps a
        // false alarm below 1e-4 per run
        const double p1 = 1.0 / images;
        var sd = Math.Sqrt(epochs * p1 * (1 - p1));
        for (var i = 0; i < images; i++)
            for (var p = 0; p < images; p++)
                Assert.True(Math.Abs(atPosition[i, p] - epochs * p1) <= 5 * sd,
                            $"{rounding}: image {i} at position {p} {atPosition[i, p]} times in {epochs} epochs, expected {epochs * p1:F0} ± {5 * sd:F0} (seed {seed})");
        // the stream is the epochs one after another, like the uniform sampler's
        Assert.Equal(sampler.Epoch(0).Concat(sampler.Epoch(1)), sampler.Indices().Take(2 * images));
    }
}
