using Engine.Native;

namespace Engine.Tests.Native;

/// <summary>Training runs and resumed runs must reproduce each other bit for bit, so a convolution must round the
/// same way on its first call (when routes may be timed and weights reordered) as on every later one.</summary>
[Collection("OneDnn")]
public class OneDnnDeterminismTests
{
    [Theory]
    [InlineData(OneDnnLayoutPolicy.Auto, 3, 1)]
    [InlineData(OneDnnLayoutPolicy.Auto, 1, 1)]
    [InlineData(OneDnnLayoutPolicy.Tuned, 3, 1)]
    [InlineData(OneDnnLayoutPolicy.Tuned, 1, 2)]
    public void FirstAndLaterCallsGiveIdenticalBits(OneDnnLayoutPolicy policy, int kernel, int stride)
    {
        var saved = OneDnn.LayoutPolicy;
        OneDnn.LayoutPolicy = policy;
        try
        {
            OneDnn.ClearCaches();
            var g = TestUtil.Fresh(out var seed);
            using var x = Tensor.Randn([2, 48, 23, 19], g);
            using var w = Tensor.Randn([40, 48, kernel, kernel], g);
            using var first = Tensor.Conv2d(x, w, null, stride, kernel / 2);
            using var second = Tensor.Conv2d(x, w, null, stride, kernel / 2);
            Assert.True(first.ToArray<float>().SequenceEqual(second.ToArray<float>()),
                $"{policy} {kernel}x{kernel}/{stride}: the first call rounded differently from the second (seed {seed})");
        }
        finally
        {
            OneDnn.LayoutPolicy = saved;
        }
    }
}
