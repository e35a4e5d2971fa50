// Tensor.Items reads one-element tensors in one transfer: the values Item gives one by one, whatever their shapes
// (scalars, [1], [1, 1]) and dtype, an empty list gives none, and a tensor with more than one element is refused.
namespace Engine.Tests.Tensors;

public class ItemsTests
{
    [Fact]
    public void ItemsEqualItemOneByOne()
    {
        var g = TestUtil.Fresh(out var seed);
        using var a = Tensor.Randn([], g);
        using var b = Tensor.Randn([1], g);
        using var c = Tensor.Randn([1, 1], g);
        Tensor[] floats = [a, b, c];
        Assert.True(floats.Select(t => t.Item()).SequenceEqual(Tensor.Items(floats)), $"seed {seed}");
        using var i = Tensor.From<long>([-7], [1]);
        using var j = Tensor.From<long>([long.MaxValue / 3], [1]);
        Assert.Equal([i.Item(), j.Item()], Tensor.Items([i, j]));
        Assert.Empty(Tensor.Items([]));
    }

    [Fact]
    public void ATensorOfSeveralElementsIsRefused()
    {
        using var a = Tensor.Zeros([]);
        using var b = Tensor.Zeros([2]);
        var e = Assert.Throws<InvalidOperationException>(() => Tensor.Items([a, b]));
        Assert.Contains("tensor 1 [2] has 2 elements", e.Message);
    }
}
