using Engine.Tests;

namespace Engine.Detection.Tests.Modeling;

public class AnchorGeneratorTests
{
    [Fact]
    public void CellAnchorsOfSize32()
    {
        TestUtil.Fresh(out _);
        // size 32, area 1024. ratio 0.5: w = sqrt(1024 / 0.5) = sqrt(2048) = 45.254834, h = 0.5·w = 22.627417;
        // ratio 1: 32×32; ratio 2: w = sqrt(512) = 22.627417, h = 45.254834. Each box is centred at the origin.
        using var cells = DefaultAnchorGenerator.GenerateCellAnchors([32], [0.5, 1, 2]);
        Assert.Equal([3, 4], cells.ShapeArray());
        TestUtil.AssertClose(
            [
                -22.627417, -11.3137085, 22.627417, 11.3137085,
                -16, -16, 16, 16,
                -11.3137085, -22.627417, 11.3137085, 22.627417,
            ], cells.ToDoubleArray(), "cell anchors", 0, 1e-5, 0);
    }

    [Fact]
    public void FpnDefaultsHaveThreeAnchorsPerLevel()
    {
        TestUtil.Fresh(out _);
        var gen = DefaultAnchorGenerator.ForFpn();
        Assert.Equal([3, 3, 3, 3, 3], gen.NumCellAnchors);
        Assert.Equal([4, 8, 16, 32, 64], gen.Strides);
        // P6 (size 512), ratio 1: ±256
        using var p6 = gen.CellAnchors(4);
        Assert.Equal([-256f, -256f, 256f, 256f], p6.ToFloatArray()[4..8]);
    }

    [Fact]
    public void GridAnchorsByLocationThenCell()
    {
        TestUtil.Fresh(out _);
        // one level, stride 4, a 2×3 grid, sizes (8, 16), ratio 1 (cells ±4 and ±8), offset 0: locations (x, y) in
        // row-major order (0,0) (4,0) (8,0) (0,4) (4,4) (8,4), and at each the 8-px then the 16-px anchor.
        var gen = new DefaultAnchorGenerator([[8, 16]], [[1.0]], [4]);
        var anchors = gen.GridAnchors([(2, 3)]);
        Assert.Equal([12, 4], anchors[0].ShapeArray());
        float[] expected =
        [
            -4, -4, 4, 4, -8, -8, 8, 8,
            0, -4, 8, 4, -4, -8, 12, 8,
            4, -4, 12, 4, 0, -8, 16, 8,
            -4, 0, 4, 8, -8, -4, 8, 12,
            0, 0, 8, 8, -4, -4, 12, 12,
            4, 0, 12, 8, 0, -4, 16, 12,
        ];
        Assert.Equal(expected, anchors[0].ToFloatArray());
        anchors[0].Dispose();

        // offset 0.5 moves every centre by half a stride: the first 8-px anchor is centred at (2, 2)
        var half = new DefaultAnchorGenerator([[8]], [[1.0]], [4], offset: 0.5);
        var shifted = half.GridAnchors([(1, 2)]);
        Assert.Equal([-2f, -2f, 6f, 6f, 2f, -2f, 10f, 6f], shifted[0].ToFloatArray());
        shifted[0].Dispose();
    }

    [Fact]
    public void ForwardUsesEachLevelsGridAndBroadcastsOneList()
    {
        TestUtil.Fresh(out _);
        var gen = new DefaultAnchorGenerator([[32], [64]], [[0.5, 1, 2]], [8, 16]);
        using var p3 = Tensor.Zeros([2, 4, 5, 7]);
        using var p4 = Tensor.Zeros([2, 4, 3, 4]);
        var anchors = gen.Forward([p3, p4]);
        Assert.Equal([5 * 7 * 3, 4], anchors[0].ShapeArray());
        Assert.Equal([3 * 4 * 3, 4], anchors[1].ShapeArray());
        // last anchor of P4: location (x, y) = (3·16, 2·16) = (48, 32), ratio 2 of size 64: w = sqrt(2048) = 45.254834, h = 90.50967
        TestUtil.AssertClose([48 - 22.627417, 32 - 45.254834, 48 + 22.627417, 32 + 45.254834], anchors[1].ToDoubleArray()[^4..], "last P4 anchor", 0, 1e-4, 0);
        foreach (var a in anchors) a.Dispose();
        var e = Assert.Throws<ArgumentException>(() => new DefaultAnchorGenerator([[32], [64], [128]], [[1.0]], [8, 16]));
        Assert.Contains("3 lists of sizes for 2 feature levels", e.Message);
    }
}
