// Launcher of kernels/logit_norm.cu: LogN's per-column statistics of the class logits (the EMA update of the
// running mean and variance, or the exact merge of a batch into count, mean and M2) and the test-time calibration
// z' = (z − (μ − β)) / sd with the background column untouched, optionally followed by the softmax, and `repo` mode's
// batch standardization of the logits with its backward, the forward fused with the EMA update. The statistics are
// updated in place on the device; nothing synchronizes.
using System.Runtime.InteropServices;
using Engine.Cuda.Compilation;

namespace Engine.Cuda.Kernels;

/// <summary>Mirror of <c>struct logit_norm_args</c> (64 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct LogitNormArgs
{
    public ulong Logits;
    public ulong Mean;
    public ulong Variance;
    public ulong Count;
    public ulong Output;
    public double Momentum;
    public int Rows;
    public int Columns;
    public int Exact;
    public int Softmax;
}

/// <summary>Mirror of <c>struct logit_standardize_args</c> (72 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct LogitStandardizeArgs
{
    public ulong Input;
    public ulong Gradient;
    public ulong Output;
    public ulong InverseSd;
    public ulong Mean;
    public ulong Variance;
    public double Momentum;
    public double Eps;
    public int Rows;
    public int Columns;
}

public sealed class LogitNormKernels(CudaDevice device, KernelCompiler compiler)
    : KernelFamily(device, compiler, SourceFile, KernelNames)
{
    public const string SourceFile = "logit_norm.cu";

    private const string Update = "logit_norm_update_kernel";
    private const string CountKernel = "logit_norm_count_kernel";
    private const string CalibrateKernel = "logit_norm_calibrate_kernel";
    private const string StandardizeKernel = "logit_norm_standardize_kernel";
    private const string StandardizeBackwardKernel = "logit_norm_standardize_backward_kernel";

    private (int Columns, int Slices) _statisticsBlock = (16, 64);

    /// <summary>The statistics and standardization kernels' block: Columns per block (threadIdx.x) × Slices of rows
    /// (threadIdx.y), at most 1024 threads. Each thread loads 16 of its rows at once and keeps them in registers for the
    /// later passes when the rows number at most 16 × Slices; the slices' sums are added in a fixed order, so a shape
    /// gives fixed bits. 16 × 64 by default: on an H100, as device work on (1024, 1204) logits, the update took
    /// 11.7–12.0 µs and the standardization 14.0–14.2 µs with it, against 16.0–16.1 and 22.9–23.0 µs for the former
    /// kernel (32 × 32 blocks, rows loaded one loop step at a time and read twice); 15.2 µs at 32 × 32 and 17.5 µs at
    /// 8 × 128 with this one. bench/cuda times other shapes (logn.update@CxS).</summary>
    public (int Columns, int Slices) StatisticsBlock
    {
        get => _statisticsBlock;
        set
        {
            if (value.Columns < 1 || value.Slices < 1 || value.Columns * value.Slices > 1024)
                throw new ArgumentOutOfRangeException(nameof(value), value,
                                                      "LogitNormKernels.StatisticsBlock: columns and slices must be positive with at most 1024 threads in all.");
            _statisticsBlock = value;
        }
    }

    public static IReadOnlyList<string> KernelNames { get; } = [Update, CountKernel, CalibrateKernel, StandardizeKernel, StandardizeBackwardKernel];

    /// <summary>EMA update (section 2.1) in place, every column of logits (N ≥ 2, K): mean = (1 − m)·mean + m·a,
    /// variance = (1 − m)·variance + m·b with the batch mean a and unbiased batch variance b.</summary>
    public void UpdateRunningStatistics(DeviceView logits, double momentum, DeviceBuffer<float> mean, DeviceBuffer<float> variance,
                                        CudaStream? stream = null)
    {
        const string op = "LogitNormKernels.UpdateRunningStatistics";
        var (n, k) = Matrix(op, logits);
        if (n < 2)
            throw new ArgumentException($"{op}: logits has {n} rows; the unbiased batch variance needs at least 2 (skip batches of one RoI).", nameof(logits));
        if (!(momentum > 0 && momentum <= 1))
            throw new ArgumentException($"{op}: momentum {momentum} must be in (0, 1].", nameof(momentum));
        RequireStatistics(op, logits, k, mean, variance);
        var args = new LogitNormArgs
        {
            Logits = logits.Address, Mean = mean.Pointer, Variance = variance.Pointer, Momentum = momentum, Rows = n, Columns = k,
        };
        LaunchStatistics(args, stream);
    }

    /// <summary>Exact statistics (section 2.1) in place: merges the batch logits (N, K) into count (int64 [1]), mean and
    /// M2 (K) by Chan's pairwise update; N = 0 changes nothing.</summary>
    public void MergeStatistics(DeviceView logits, DeviceBuffer<long> count, DeviceBuffer<float> mean, DeviceBuffer<float> m2,
                                CudaStream? stream = null)
    {
        const string op = "LogitNormKernels.MergeStatistics";
        var (n, k) = Matrix(op, logits);
        RequireBuffer(op, nameof(count), count, 1);
        RequireStatistics(op, logits, k, mean, m2);
        if (n == 0) return;
        var args = new LogitNormArgs
        {
            Logits = logits.Address, Mean = mean.Pointer, Variance = m2.Pointer, Count = count.Pointer, Rows = n, Columns = k, Exact = 1,
        };
        LaunchStatistics(args, stream);
        // every column read the old count in the launch before; only now may it change
        Launch(CountKernel, Blocks(1, 32), stream, args);
    }

    /// <summary>Calibrated logits (section 2.2) of logits (N, C + 1), background last: for c &lt; C,
    /// (z − (μ_c − β)) / sqrt(max(v_c, 1e-11)) with β = min over c &lt; C of μ_c; the background column unchanged;
    /// then the row softmax when <paramref name="softmax"/>. mean and variance (C + 1) as LogitNormCalibrator keeps them.</summary>
    public void Calibrate(DeviceView logits, DeviceBuffer<float> mean, DeviceBuffer<float> variance, bool softmax, DeviceBuffer<float> output,
                          CudaStream? stream = null)
    {
        const string op = "LogitNormKernels.Calibrate";
        var (n, k) = Matrix(op, logits);
        if (k < 2)
            throw new ArgumentException($"{op}: logits has {k} columns; LogN needs C ≥ 1 foreground columns and the background last.", nameof(logits));
        RequireStatistics(op, logits, k, mean, variance);
        RequireBuffer(op, nameof(output), output, (long)n * k);
        RequireDistinct(op, nameof(output), output, ("logits", logits.Buffer), ("mean", mean), ("variance", variance));
        if (n == 0) return;
        var args = new LogitNormArgs
        {
            Logits = logits.Address, Mean = mean.Pointer, Variance = variance.Pointer, Output = output.Pointer, Rows = n, Columns = k,
            Softmax = softmax ? 1 : 0,
        };
        var threads = Math.Clamp((k + 31) / 32 * 32, 32, 256);
        Launch(CalibrateKernel, Resident(n, threads), stream, args);
    }

    /// <summary>`repo` mode's batch standardization (section 2.3) of logits (N ≥ 2, K): per column, y = (z − a)·r with the
    /// batch mean a and r = 1/sqrt(biased batch variance + eps), written to <paramref name="output"/>, and r to
    /// <paramref name="inverseSd"/> (K) for the backward. When <paramref name="running"/> is given, its mean and
    /// variance (K) take the EMA update of UpdateRunningStatistics in the same launch.</summary>
    public void Standardize(DeviceView logits, double eps, DeviceBuffer<float> output, DeviceBuffer<float> inverseSd,
                            (DeviceBuffer<float> Mean, DeviceBuffer<float> Variance, double Momentum)? running = null, CudaStream? stream = null)
    {
        const string op = "LogitNormKernels.Standardize";
        var (n, k) = Matrix(op, logits);
        if (n < 2)
            throw new ArgumentException($"{op}: logits has {n} rows; batch standardization needs at least 2.", nameof(logits));
        if (!(eps >= 0) || double.IsInfinity(eps))
            throw new ArgumentException($"{op}: eps {eps} must be finite and ≥ 0.", nameof(eps));
        RequireBuffer(op, nameof(output), output, (long)n * k);
        RequireBuffer(op, nameof(inverseSd), inverseSd, k);
        RequireDistinct(op, nameof(output), output, ("logits", logits.Buffer), ("inverseSd", inverseSd));
        RequireDistinct(op, nameof(inverseSd), inverseSd, ("logits", logits.Buffer));
        var args = new LogitStandardizeArgs
        {
            Input = logits.Address, Output = output.Pointer, InverseSd = inverseSd.Pointer, Eps = eps, Rows = n, Columns = k,
        };
        if (running is var (mean, variance, momentum))
        {
            if (!(momentum > 0 && momentum <= 1))
                throw new ArgumentException($"{op}: momentum {momentum} must be in (0, 1].", nameof(running));
            RequireStatistics(op, logits, k, mean, variance);
            foreach (var (name, buffer) in new[] { ("mean", mean), ("variance", variance) })
                RequireDistinct(op, name, buffer, ("output", output), ("inverseSd", inverseSd));
            (args.Mean, args.Variance, args.Momentum) = (mean.Pointer, variance.Pointer, momentum);
        }
        Launch(StandardizeKernel, StatisticsLaunch(k), stream, args);
    }

    /// <summary>Gradient of <see cref="Standardize"/> from its output y (N, K), the output gradient and r (K):
    /// ∂L/∂z = r·(g − mean over rows of g − y·mean over rows of g·y), per column.</summary>
    public void StandardizeBackward(DeviceView output, DeviceView gradOutput, DeviceBuffer<float> inverseSd, DeviceBuffer<float> gradLogits,
                                    CudaStream? stream = null)
    {
        const string op = "LogitNormKernels.StandardizeBackward";
        var (n, k) = Matrix(op, output);
        if (n < 2)
            throw new ArgumentException($"{op}: output has {n} rows; batch standardization needs at least 2.", nameof(output));
        RequireDense(op, nameof(gradOutput), gradOutput, n, k);
        RequireBuffer(op, nameof(inverseSd), inverseSd, k);
        RequireBuffer(op, nameof(gradLogits), gradLogits, (long)n * k);
        RequireDistinct(op, nameof(gradLogits), gradLogits, ("output", output.Buffer), ("gradOutput", gradOutput.Buffer), ("inverseSd", inverseSd));
        var args = new LogitStandardizeArgs
        {
            Input = output.Address, Gradient = gradOutput.Address, Output = gradLogits.Pointer, InverseSd = inverseSd.Pointer, Rows = n, Columns = k,
        };
        Launch(StandardizeBackwardKernel, StatisticsLaunch(k), stream, args);
    }

    private void LaunchStatistics(LogitNormArgs args, CudaStream? stream) => Launch(Update, StatisticsLaunch(args.Columns), stream, args);

    /// <summary>Blocks of StatisticsBlock threads, one per strip of columns (the kernels' grid-stride loop covers more).</summary>
    private LaunchConfig StatisticsLaunch(int columns)
    {
        var (width, slices) = _statisticsBlock;
        var blocks = (columns + width - 1) / width;
        return new LaunchConfig(new Dim3((uint)Math.Min(blocks, Device.MaxGridDimX)), new Dim3((uint)width, (uint)slices));
    }

    private (int Rows, int Columns) Matrix(string op, DeviceView logits)
    {
        if (logits.Shape.Length != 2)
            throw new ArgumentException($"{op}: logits has shape {ElementwiseLayout.Format(logits.Shape)}; it must be (N, K).", nameof(logits));
        if (logits.Shape[0] > int.MaxValue || logits.Shape[1] > int.MaxValue)
            throw new ArgumentException($"{op}: logits {ElementwiseLayout.Format(logits.Shape)} has more than 2^31 rows or columns.", nameof(logits));
        RequireDense(op, nameof(logits), logits, logits.Shape);
        return ((int)logits.Shape[0], (int)logits.Shape[1]);
    }

    private void RequireStatistics(string op, DeviceView logits, int k, DeviceBuffer<float> mean, DeviceBuffer<float> second)
    {
        RequireBuffer(op, nameof(mean), mean, k);
        RequireBuffer(op, "variance", second, k);
        if (ReferenceEquals(mean, second))
            throw new ArgumentException($"{op}: mean and variance are the same buffer; pass two buffers of {k} elements.");
        RequireDistinct(op, "mean", mean, ("logits", logits.Buffer));
        RequireDistinct(op, "variance", second, ("logits", logits.Buffer));
    }
}
