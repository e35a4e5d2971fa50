namespace Engine.Tests.Tensors;

public class DisposeScopeTests
{
    [Fact]
    public void ScopeDisposesEverythingExceptWhatIsKept()
    {
        Tensor a, b, kept;
        using (var scope = DisposeScope.Begin())
        {
            a = Tensor.Ones([4]);
            b = a * 2.0;
            kept = scope.Keep(b + 1.0);
            Assert.Equal(2, scope.Count); // a and b; the scalar operands were disposed by the ops, kept moved out
        }
        Assert.True(a.IsDisposed);
        Assert.True(b.IsDisposed);
        Assert.False(kept.IsDisposed);
        Assert.Equal([3.0, 3, 3, 3], kept.ToDoubleArray());
        kept.Dispose();
    }

    [Fact]
    public void KeepMovesToTheEnclosingScope()
    {
        Tensor inner;
        using (var outer = DisposeScope.Begin())
        {
            using (var scope = DisposeScope.Begin())
                inner = scope.Keep(Tensor.Zeros([2]));
            Assert.False(inner.IsDisposed);
            Assert.Equal(1, outer.Count);
        }
        Assert.True(inner.IsDisposed);
    }

    [Fact]
    public void ViewsKeepStorageAliveAfterTheSourceIsDisposed()
    {
        var x = Tensor.Arange(6, DType.Float32);
        var v = x.Reshape(2, 3);
        var storage = x.Storage;
        x.Dispose();
        Assert.False(storage.IsReleased);
        Assert.Equal([0.0, 1, 2, 3, 4, 5], v.ToDoubleArray());
        v.Dispose();
        Assert.True(storage.IsReleased);
    }

    [Fact]
    public void DetachFromScopeTransfersOwnership()
    {
        Tensor p;
        using (DisposeScope.Begin())
            p = Tensor.Zeros([1]).DetachFromScope();
        Assert.False(p.IsDisposed);
        p.Dispose();
    }

    [Fact]
    public void UsingADisposedTensorNamesTheTensorAndTheFix()
    {
        var t = Tensor.Zeros([2, 2]);
        t.Name = "conv1.weight";
        t.Dispose();
        var e = Assert.Throws<ObjectDisposedException>(() => t.Exp());
        Assert.Contains("[2, 2]", e.Message);
        Assert.Contains("conv1.weight", e.Message);
        Assert.Contains("Keep", e.Message);
    }
}
