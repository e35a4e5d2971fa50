// LogN's `repo` head (LogitNormSoftmaxLoss) with the logits on the GPU: with the calibrator moved there, the fused
// standardization updates its running statistics on the device, and the loss, the gradient and the statistics
// match the same step on the CPU; with the calibrator left on the CPU, the statistics follow through a copy of the
// logits and still match.
using Engine.LongTail;
using Engine.Tests;
using static Engine.Cuda.Tests.Ops.OpsParity;

namespace Engine.Cuda.Tests.Ops;

public sealed class CudaLogitNormLossTests
{
    [CudaTheory]
    [InlineData(true)]
    [InlineData(false)]
    public void RepoLossOnTheGpuMatchesTheCpu(bool calibratorOnGpu)
    {
        var g = Fresh(out var seed);
        const int n = 96, c = 37, k = c + 1;
        var z = Normal(g, n * k, 3);
        var labels = Integers(g, n, 0, k);
        using var cpuCalibrator = new LogitNormCalibrator(c);
        using var gpuCalibrator = new LogitNormCalibrator(c);
        if (calibratorOnGpu) gpuCalibrator.To(GpuDevice);
        using var cpuLoss = new LogitNormSoftmaxLoss(cpuCalibrator, momentum: 0.1);
        using var gpuLoss = new LogitNormSoftmaxLoss(gpuCalibrator, momentum: 0.1);

        var (cpuValue, cpuGrad) = Step(cpuLoss, Device.Cpu);
        var (gpuValue, gpuGrad) = Step(gpuLoss, GpuDevice);
        var context = $"repo loss, calibrator on the {(calibratorOnGpu ? "GPU" : "CPU")} (seed {seed})";
        Assert.Equal(calibratorOnGpu ? GpuDevice : Device.Cpu, gpuCalibrator.Device);
        // float CE over standardized logits: 1e-5 relative; gradient and statistics within 1e-6 absolute + relative
        Assert.True(Math.Abs(cpuValue - gpuValue) <= 1e-5 * Math.Abs(cpuValue), $"{context}: loss {gpuValue:R}, CPU {cpuValue:R}");
        Near(cpuGrad, gpuGrad, 1e-6, "gradient");
        using (var m1 = cpuCalibrator.Mean())
        using (var m2 = gpuCalibrator.Mean())
            Near(m1.ToDoubleArray(), m2.ToDoubleArray(), 1e-6, "running mean");
        using (var v1 = cpuCalibrator.Variance())
        using (var v2 = gpuCalibrator.Variance())
            Near(v1.ToDoubleArray(), v2.ToDoubleArray(), 1e-6, "running variance");

        (double, double[]) Step(LogitNormSoftmaxLoss loss, Device device)
        {
            using var scope = DisposeScope.Begin();
            var logits = Tensor.From<float>(z, [n, k]).To(device).RequireGrad();
            var y = Tensor.From<long>(labels, [n]).To(device);
            var value = loss.Loss(logits, y);
            value.Backward();
            return (value.ToDoubleArray()[0], logits.Grad!.ToDoubleArray());
        }

        void Near(double[] expected, double[] actual, double tolerance, string what)
        {
            for (var i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance * (1 + Math.Abs(expected[i])),
                    $"{context}: {what} element {i} is {actual[i]:R}, CPU {expected[i]:R}");
        }
    }
}
