// The stand-in device of the device tests holds to the rules it is there to enforce: device tensors report cuda:0,
// refuse host access, refuse to mix with CPU tensors in an op, and are refused by the backends where a CPU tensor is
// handed in; values computed on it are the CPU's bit for bit, forward and backward.
using Engine.Detection;

namespace Engine.Training.Tests;

[Collection(HostBackedCuda.Collection)]
public sealed class HostBackedCudaTests
{
    private static readonly Device Cuda = HostBackedCuda.Install();

    [Fact]
    public void DeviceTensorsFollowTheDeviceRules()
    {
        using var host = Tensor.Randn([3, 5], new Generator(11));
        using var device = host.To(Cuda);
        Assert.Equal(Cuda, device.Device);
        Assert.Equal(host.ToFloatArray(), device.ToFloatArray());
        var span = Assert.Throws<InvalidOperationException>(() => device.AsSpan<float>());
        Assert.Contains("cuda:0", span.Message);
        var mixed = Assert.ThrowsAny<ArgumentException>(() => device.Add(host));
        Assert.Contains("cuda:0", mixed.Message);
        // A CPU tensor handed to a backend member where the CUDA backend needs device memory.
        using var output = Tensor.Empty([3, 5], DType.Float32, Cuda);
        var backend = Assert.Throws<ArgumentException>(() => Backends.For(Cuda).Binary(BinaryOp.Add, device, host, output));
        Assert.Contains("b is on cpu, not cuda:0", backend.Message);
    }

    [Fact]
    public void ValuesAndGradientsEqualTheCpuBitForBit()
    {
        using var x = Tensor.Randn([2, 4, 9, 11], new Generator(5));
        using var w = Tensor.Randn([6, 4, 3, 3], new Generator(6));
        using var rois = Tensor.From<float>([0, 1, 1, 7, 6, 1, 0.5f, 2, 10, 8.5f, 0, 3, 0, 5.5f, 4], [3, 5]);
        (float[] Y, float[] Gx, float[] Gw) Run(Device device)
        {
            using var xd = x.To(device).RequireGrad();
            using var wd = w.To(device).RequireGrad();
            using var r = rois.To(device);
            using var conv = Tensor.Conv2d(xd, wd, padding: 1);
            using var pooled = DetectionOps.RoiAlign(conv, r, (3, 3), 1.0, 0, aligned: true);
            using var loss = pooled.Square().Sum();
            loss.Backward();
            return (pooled.ToFloatArray(), xd.Grad!.ToFloatArray(), wd.Grad!.ToFloatArray());
        }

        var cpu = Run(Device.Cpu);
        var device = Run(Cuda);
        Assert.Equal(cpu.Y, device.Y);
        Assert.Equal(cpu.Gx, device.Gx);
        Assert.Equal(cpu.Gw, device.Gw);
    }
}
