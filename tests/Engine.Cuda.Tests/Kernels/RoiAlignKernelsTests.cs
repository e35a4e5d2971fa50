// kernels/roi_align.cu on a GPU against the double reference (Engine.Detection.Reference.RoiAlignReference, whose
// backward the detection tests check against finite differences): several FPN levels in one launch with random
// level assignment, aligned and not, adaptive and fixed sampling, boxes on and off the map border, degenerate
// boxes, a level with no gradient, empty RoI lists, an invalid batch index, more RoIs than a grid dimension of 65535
// blocks, and outputs poisoned with NaN.
using Engine.Cuda.Kernels;
using Engine.Detection.Reference;
using Engine.Reference;
using Engine.Tests;
using static Engine.Cuda.Tests.Kernels.KernelTestSupport;

namespace Engine.Cuda.Tests.Kernels;

public sealed class RoiAlignKernelsTests
{
    // Forward: each output is a float sum of gh·gw·4 products of weights in [0, 1] and features in [-1, 1], divided by
    // gh·gw; with at most a few hundred terms the float rounding stays below ~300·6e-8 ≈ 2e-5 of the largest term (1).
    // Backward: a gradient element sums the atomic float contributions of every bin that samples it, each below 1;
    // tens to hundreds of additions in any order keep the error below 5e-5 absolute. An indexing or weight error is O(0.1).
    private const double ForwardAbs = 2e-5, BackwardAbs = 5e-5, Rel = 1e-5;

    private static readonly int[][] LevelSizes = [[23, 29], [12, 15], [6, 8], [3, 4]];
    private static readonly double[] LevelScales = [1.0 / 4, 1.0 / 8, 1.0 / 16, 1.0 / 32];

    private sealed record Case(int Batch, int Channels, int Rois, int Levels, int PooledH, int PooledW, int SamplingRatio, bool Aligned);

    public static TheoryData<int, int, int, int, int, int, int, bool> Cases => new()
    {
        // batch, channels, rois, levels, Ph, Pw, sampling ratio, aligned
        { 2, 3, 37, 4, 7, 7, 0, true },
        { 2, 3, 37, 4, 7, 7, 0, false },
        { 1, 5, 19, 1, 5, 3, 2, true },
        { 3, 1, 50, 3, 2, 9, 0, true },
        { 2, 4, 1, 2, 1, 1, 0, true },
        { 1, 6, 23, 1, 2, 2, 0, true },  // bins wider than the backward's tile: every tap added directly
        { 2, 9, 17, 2, 3, 4, 5, false }, // 9 channels: two full groups of four and one more
        { 2, 3, 0, 4, 7, 7, 0, true },   // no RoI: nothing written, gradients cleared
    };

    [CudaTheory]
    [MemberData(nameof(Cases))]
    public void ForwardAndBackwardMatchTheReference(int batch, int channels, int rois, int levels, int ph, int pw, int ratio, bool aligned)
    {
        var random = new SeededRandom();
        var shapes = Enumerable.Range(0, levels).Select(l => new[] { batch, channels, LevelSizes[l][0], LevelSizes[l][1] }).ToArray();
        var scales = LevelScales.Take(levels).ToArray();
        var features = shapes.Select(s => random.Uniform(s.Aggregate(1L, (p, e) => p * e), -1, 1)).ToArray();
        var (boxes, levelOf) = RandomRois(random, rois, batch, levels);
        var spec = new RoiAlignSpec(ph, pw, scales, ratio, aligned);
        var context = $"N={batch} C={channels} R={rois} L={levels} {ph}x{pw} ratio={ratio} aligned={aligned}";

        var refLevels = features.Select((f, l) => new RefTensor(shapes[l], Doubles(f))).ToList();
        var expected = RoiAlignReference.Forward(refLevels, scales, Doubles(boxes), levelOf, ph, pw, ratio, aligned);

        var views = new List<DeviceView>();
        var buffers = features.Select(Upload).ToList();
        try
        {
            for (var l = 0; l < levels; l++) views.Add(DeviceView.Dense(buffers[l], shapes[l].Select(e => (long)e).ToArray()));
            using var roiBuffer = Upload(boxes);
            using var levelBuffer = Upload(levelOf);
            var roiView = DeviceView.Dense(roiBuffer, rois, 5);
            using var output = GpuContext.Poisoned(expected.Data.Length);
            RoiAlign.Forward(spec, views, roiView, levelBuffer, output);
            AssertClose(expected.Data, output.ToArray(), ForwardAbs, Rel, $"forward, {context}", random.Seed);

            // backward, level 1 (when there is one) without a gradient
            var gradOutput = random.Uniform(expected.Data.Length, -1, 1);
            var expectedGrads = RoiAlignReference.Backward(shapes, scales, Doubles(boxes), levelOf, ph, pw, ratio, aligned,
                                                           new RefTensor(expected.Shape, Doubles(gradOutput)));
            using var gradOutputBuffer = Upload(gradOutput);
            var gradBuffers = shapes.Select(s => GpuContext.Poisoned(s.Aggregate(1L, (p, e) => p * e))).ToList();
            try
            {
                var gradViews = gradBuffers.Select((b, l) => levels > 1 && l == 1 ? (DeviceView?)null
                                                        : DeviceView.Dense(b, shapes[l].Select(e => (long)e).ToArray())).ToList();
                RoiAlign.Backward(spec, DeviceView.Dense(gradOutputBuffer, rois, channels, ph, pw), roiView, levelBuffer, gradViews);
                for (var l = 0; l < levels; l++)
                {
                    var actual = gradBuffers[l].ToArray();
                    if (gradViews[l] is null)
                        Assert.True(actual.All(float.IsNaN), $"backward, {context}: level {l} has no gradient but was written (seed {random.Seed})");
                    else
                        AssertClose(expectedGrads[l].Data, actual, BackwardAbs, Rel, $"backward level {l}, {context}", random.Seed);
                }
            }
            finally
            {
                foreach (var b in gradBuffers) b.Dispose();
            }
        }
        finally
        {
            foreach (var b in buffers) b.Dispose();
        }
    }

    [CudaFact]
    public void SingleLevelWithoutLevelArrayAndInvalidBatchIndex()
    {
        var random = new SeededRandom();
        int[] shape = [2, 3, 11, 13];
        var features = random.Uniform(2 * 3 * 11 * 13, -1, 1);
        var (boxes, _) = RandomRois(random, 6, 2, 1);
        boxes[3 * 5] = 2;       // batch index 2 of a batch of 2: pools to NaN
        boxes[4 * 5] = 0.5f;    // not an integer: pools to NaN
        var spec = new RoiAlignSpec(4, 4, [0.25], 0, true);
        var valid = Enumerable.Range(0, 6).Where(i => i != 3 && i != 4).ToArray();
        var validBoxes = valid.SelectMany(i => boxes.Skip(i * 5).Take(5)).ToArray();
        var reference = RoiAlignReference.Forward([new RefTensor(shape, Doubles(features))], [0.25], Doubles(validBoxes), null, 4, 4, 0, true);
        var expected = new double[6 * 3 * 16];
        Array.Fill(expected, double.NaN);
        for (var v = 0; v < valid.Length; v++) Array.Copy(reference.Data, v * 48, expected, valid[v] * 48, 48);

        using var featureBuffer = Upload(features);
        using var roiBuffer = Upload(boxes);
        using var output = GpuContext.Poisoned(expected.Length);
        RoiAlign.Forward(spec, [DeviceView.Dense(featureBuffer, 2, 3, 11, 13)], DeviceView.Dense(roiBuffer, 6, 5), null, output);
        AssertClose(expected, output.ToArray(), ForwardAbs, Rel, "single level, invalid batch indices", random.Seed);
    }

    /// <summary>70 001 RoIs: the backward's grid holds at most 65535 RoIs in its y dimension and strides over the rest
    /// (the forward's x dimension holds them all); every RoI's outputs and gradient contributions still count.</summary>
    [CudaFact]
    public void MoreRoisThanAGridDimensionHolds()
    {
        var random = new SeededRandom();
        const int rois = 70_001;
        int[] shape = [2, 2, 23, 29];
        var features = random.Uniform(2 * 2 * 23 * 29, -1, 1);
        var (boxes, _) = RandomRois(random, rois, 2, 1);
        var spec = new RoiAlignSpec(2, 2, [0.25], 0, true);
        var expected = RoiAlignReference.Forward([new RefTensor(shape, Doubles(features))], [0.25], Doubles(boxes), null, 2, 2, 0, true);
        var gradOutput = random.Uniform(expected.Data.Length, -1, 1);
        var expectedGrad = RoiAlignReference.Backward([shape], [0.25], Doubles(boxes), null, 2, 2, 0, true,
                                                      new RefTensor(expected.Shape, Doubles(gradOutput)))[0];

        using var featureBuffer = Upload(features);
        using var roiBuffer = Upload(boxes);
        using var output = GpuContext.Poisoned(expected.Data.Length);
        var roiView = DeviceView.Dense(roiBuffer, rois, 5);
        RoiAlign.Forward(spec, [DeviceView.Dense(featureBuffer, 2, 2, 23, 29)], roiView, null, output);
        AssertClose(expected.Data, output.ToArray(), ForwardAbs, Rel, "forward, 70 001 RoIs", random.Seed);

        using var gradOutputBuffer = Upload(gradOutput);
        using var grad = GpuContext.Poisoned(features.Length);
        RoiAlign.Backward(spec, DeviceView.Dense(gradOutputBuffer, rois, 2, 2, 2), roiView, null, [DeviceView.Dense(grad, 2, 2, 23, 29)]);
        // a pixel here sums the contributions (about 1e-2 each, of random sign) of up to a few thousand RoIs: the float
        // rounding of that sum in any order, about √n · 6e-8 times partial sums of magnitude ~3, stays near 1e-5, while a
        // lost RoI moves its pixels by ~1e-2
        AssertClose(expectedGrad.Data, grad.ToArray(), 1e-3, Rel, "backward, 70 001 RoIs", random.Seed);
    }

    [CudaFact]
    public void BadArgumentsAreRejectedWithTheCallAndShapes()
    {
        using var features = GpuContext.Device.Allocate<float>(2 * 3 * 8 * 8);
        using var rois = GpuContext.Device.Allocate<float>(20);
        using var output = GpuContext.Device.Allocate<float>(4 * 3 * 49);
        var view = DeviceView.Dense(features, 2, 3, 8, 8);
        var spec = new RoiAlignSpec(7, 7, [0.25], 0, true);

        var wrongRois = Assert.Throws<ArgumentException>(() => RoiAlign.Forward(spec, [view], DeviceView.Dense(rois, 5, 4), null, output));
        Assert.Contains("(R, 5)", wrongRois.Message);
        var scales = Assert.Throws<ArgumentException>(() => RoiAlign.Forward(spec with { Scales = [0.25, 0.125] }, [view], DeviceView.Dense(rois, 4, 5), null, output));
        Assert.Contains("2 scales for 1 feature levels", scales.Message);
        var noLevels = Assert.Throws<ArgumentException>(() =>
            RoiAlign.Forward(spec with { Scales = [0.25, 0.125] }, [view, view], DeviceView.Dense(rois, 4, 5), null, output));
        Assert.Contains("levelOfRoi", noLevels.Message);
        var small = Assert.Throws<ArgumentException>(() => RoiAlign.Forward(spec with { PooledHeight = 8 }, [view], DeviceView.Dense(rois, 4, 5), null, output));
        Assert.Contains("output holds", small.Message);
        var strided = Assert.Throws<ArgumentException>(() =>
            RoiAlign.Forward(spec, [new DeviceView(features, [2, 3, 8, 8], [192, 64, 1, 8])], DeviceView.Dense(rois, 4, 5), null, output));
        Assert.Contains("contiguous", strided.Message);
        var noGrad = Assert.Throws<ArgumentException>(() => RoiAlign.Backward(spec, DeviceView.Dense(output, 4, 3, 7, 7), DeviceView.Dense(rois, 4, 5), null, [null]));
        Assert.Contains("every level gradient is null", noGrad.Message);
    }

    /// <summary>R random RoIs (batch index, x1, y1, x2, y2) on an image of about 92 × 116 pixels (the level-0 map at
    /// stride 4): most inside, some crossing or outside the border, one degenerate (zero width), and a random level each.</summary>
    private static (float[] Boxes, long[] Levels) RandomRois(SeededRandom random, int count, int batch, int levels)
    {
        var boxes = new float[count * 5];
        var levelOf = new long[count];
        for (var i = 0; i < count; i++)
        {
            var x1 = random.Uniform(-20, 110);
            var y1 = random.Uniform(-20, 90);
            var w = random.Uniform(0.5, 80);
            var h = random.Uniform(0.5, 70);
            boxes[i * 5] = random.Random.Next(batch);
            boxes[i * 5 + 1] = x1;
            boxes[i * 5 + 2] = y1;
            boxes[i * 5 + 3] = i == 2 ? x1 : x1 + w;
            boxes[i * 5 + 4] = y1 + h;
            levelOf[i] = random.Random.Next(levels);
        }
        return (boxes, levelOf);
    }
}
