// The harness of the CUDA detection and long-tail backend tests: registers the CUDA backends, copies the CPU inputs
// to the GPU before the CPU backend runs (several members update their inputs in place), runs the same member on
// both devices with outputs poisoned (PoisonAllocations: NaN floats, -1 integers), waits for the GPU (raising any
// error its kernels recorded) and compares every output within abs + rel·|cpu|, naming the seed.
using Engine.Cuda.Backend;
using Engine.Cuda.Ops;

namespace Engine.Cuda.Tests.Ops;

internal static class OpsParity
{
    private static readonly Lazy<CudaBackend> Shared = new(() =>
    {
        if (!CudaOpsRegistration.TryRegister(out var reason)) throw new InvalidOperationException($"no CUDA backend: {reason}");
        return (CudaBackend)Backends.For(Engine.Device.Cuda(0));
    });

    /// <summary>cuda:0, with the CUDA backends registered first (a test may move its inputs there before it names
    /// <see cref="GpuBackend"/>).</summary>
    public static Device GpuDevice
    {
        get
        {
            _ = Shared.Value;
            return Engine.Device.Cuda(0);
        }
    }

    public static CudaBackend GpuBackend => Shared.Value;

    /// <summary>A fresh seed (printed in every failure message) and a generator seeded with it.</summary>
    public static Random Fresh(out int seed)
    {
        seed = Random.Shared.Next();
        return new Random(seed);
    }

    public static float[] Uniform(Random g, int count, double low, double high) =>
        Enumerable.Range(0, count).Select(_ => (float)(low + (high - low) * g.NextDouble())).ToArray();

    public static float[] Normal(Random g, int count, double std) =>
        Enumerable.Range(0, count).Select(_ => (float)(std * Math.Sqrt(-2 * Math.Log(1 - g.NextDouble())) * Math.Cos(2 * Math.PI * g.NextDouble()))).ToArray();

    public static long[] Integers(Random g, int count, long low, long high) => Enumerable.Range(0, count).Select(_ => g.NextInt64(low, high)).ToArray();

    /// <summary>(x1, y1, x2, y2) boxes with corners in [0, extent) and sides in [minSide, maxSide).</summary>
    public static float[] Boxes(Random g, int count, double extent, double minSide, double maxSide)
    {
        var b = new float[count * 4];
        for (var i = 0; i < count; i++)
        {
            var (x, y) = (g.NextDouble() * extent, g.NextDouble() * extent);
            b[i * 4] = (float)x;
            b[i * 4 + 1] = (float)y;
            b[i * 4 + 2] = (float)(x + minSide + (maxSide - minSide) * g.NextDouble());
            b[i * 4 + 3] = (float)(y + minSide + (maxSide - minSide) * g.NextDouble());
        }
        return b;
    }

    /// <summary>Runs <paramref name="run"/> on the CPU with <paramref name="inputs"/> and on the GPU with copies taken
    /// first; compares the returned outputs (float within <paramref name="atol"/> + <paramref name="rtol"/>·|cpu|,
    /// integers exactly, NaN only against NaN).</summary>
    public static void Check(string what, int seed, Tensor[] inputs, Func<Device, Tensor[], Tensor[]> run, double atol, double rtol)
    {
        EngineOptions.PoisonAllocations = true;
        var onGpu = inputs.Select(t => t.To(GpuDevice)).ToArray();
        var expected = run(Engine.Device.Cpu, inputs);
        var actual = run(GpuDevice, onGpu);
        GpuBackend.Synchronize();
        Assert.Equal(expected.Length, actual.Length);
        for (var k = 0; k < expected.Length; k++)
        {
            Assert.True(expected[k].Shape.SequenceEqual(actual[k].Shape), $"{what}: output {k} shape (seed {seed})");
            Assert.Equal(GpuDevice, actual[k].Device);
            var (e, a) = (expected[k].ToDoubleArray(), actual[k].ToDoubleArray());
            var exact = expected[k].DType != DType.Float32;
            for (var i = 0; i < e.Length; i++)
            {
                if (double.IsNaN(e[i]) && double.IsNaN(a[i])) continue;
                if (e[i] == a[i]) continue;
                if (exact || !(Math.Abs(a[i] - e[i]) <= atol + rtol * Math.Abs(e[i])))
                    Assert.Fail($"{what}: output {k} element {i} of {e.Length} is {a[i]:G9} on the GPU, {e[i]:G9} on the CPU " +
                                $"(tolerance {atol} + {rtol}·|cpu|; seed {seed})");
            }
        }
        foreach (var t in onGpu.Concat(actual).Concat(expected).Distinct(ReferenceEqualityComparer.Instance).Cast<Tensor>()) t.Dispose();
    }
}
