// kernels/group_softmax.cu on a GPU against the double reference (SoftmaxLossReference.GroupSoftmax and its backward,
// which the long-tail tests check against finite differences): the BAGS layout with its "others" columns, groups
// of one column, one group spanning the row, a group longer than many warp widths, softmax and log-softmax, an
// empty batch, and outputs poisoned with NaN.
using Engine.Cuda.Kernels;
using Engine.LongTail.Reference;
using Engine.Tests;
using static Engine.Cuda.Tests.Kernels.KernelTestSupport;

namespace Engine.Cuda.Tests.Kernels;

public sealed class GroupSoftmaxKernelsTests
{
    // Forward: float exp and a warp sum over at most ~1000 terms below 1: 1e-6 absolute + 1e-5 relative (log-softmax
    // values reach ~15, whose float ulp is 1e-6, hence 2e-6 absolute there). Backward: a float sum of up to ~1000
    // products of size ≤ 1 in 32 lane-partial sums, error well below 1e-5 relative to the partial sums (≤ ~30):
    // 1e-4 absolute. Errors of indexing or formula are O(0.1).
    private const double ForwardAbs = 2e-6, ForwardRel = 1e-5, BackwardAbs = 1e-4, BackwardRel = 1e-4;

    public static TheoryData<string, long[], int> Layouts => new()
    {
        // BAGS: G0 = (background, foreground), then groups (others, classes...) of 1 + 7, 1 + 300, 1 + 40, 1 + 3 classes
        { "BAGS", [0, 2, 10, 311, 352, 356], 67 },
        { "groups of one", [0, 1, 2, 3, 4, 5], 9 },
        { "one group spanning the row", [0, 1203], 5 },
        { "one column", [0, 1], 3 },
        { "mixed sizes", [0, 1, 33, 34, 99, 1099, 1100], 1 },
        { "BAGS, no rows", [0, 2, 10, 311, 352, 356], 0 },
    };

    [CudaTheory]
    [MemberData(nameof(Layouts))]
    public void ForwardAndBackwardMatchTheReference(string name, long[] offsets, int rows)
    {
        var random = new SeededRandom();
        var columns = (int)offsets[^1];
        var x = random.Uniform((long)rows * columns, -12, 12);
        var gradY = random.Uniform((long)rows * columns, -1, 1);
        using var xBuffer = Upload(x);
        using var gradBuffer = Upload(gradY);
        foreach (var log in new[] { false, true })
        {
            var context = $"{name} ({rows}, {columns}) {(log ? "log-softmax" : "softmax")}";
            var expected = SoftmaxLossReference.GroupSoftmax(Doubles(x), rows, columns, offsets, log);
            using var y = GpuContext.Poisoned((long)rows * columns);
            GroupSoftmax.Forward(DeviceView.Dense(xBuffer, rows, columns), offsets, log, y);
            AssertClose(expected, y.ToArray(), ForwardAbs, ForwardRel, $"{context} forward", random.Seed);

            var expectedGrad = SoftmaxLossReference.GroupSoftmaxBackward(Doubles(x), rows, columns, offsets, log, Doubles(gradY));
            using var gradX = GpuContext.Poisoned((long)rows * columns);
            GroupSoftmax.Backward(DeviceView.Dense(y, rows, columns), DeviceView.Dense(gradBuffer, rows, columns), offsets, log, gradX);
            AssertClose(expectedGrad, gradX.ToArray(), BackwardAbs, BackwardRel, $"{context} backward", random.Seed);
        }
    }

    [CudaFact]
    public void BadOffsetsAreRejected()
    {
        using var x = GpuContext.Device.Allocate<float>(12);
        using var y = GpuContext.Device.Allocate<float>(12);
        var view = DeviceView.Dense(x, 2, 6);
        Assert.Contains("end at K = 6", Assert.Throws<ArgumentException>(() => GroupSoftmax.Forward(view, [0, 2, 5], false, y)).Message);
        Assert.Contains("rise strictly", Assert.Throws<ArgumentException>(() => GroupSoftmax.Forward(view, [0, 3, 3, 6], false, y)).Message);
        Assert.Contains("1..64 groups", Assert.Throws<ArgumentException>(() => GroupSoftmax.Forward(view, [6], false, y)).Message);
        Assert.Contains("in-place", Assert.Throws<ArgumentException>(() => GroupSoftmax.Forward(view, [0, 6], false, x)).Message);
    }
}
