// Group and batch normalization on the GPU (kernels/normalization.cu), with the CPU backend's statistics
// and saved values: one block per group or per channel computes its two-pass double statistics and writes
// its outputs, so every reduction has a fixed order and results repeat run to run. The group-norm backward
// adds a second launch that sums the per-sample channel sums over n in order (dweight, dbias) instead of
// float atomics. Strided inputs are first copied into dense pool memory, as the sort does; outputs must
// be contiguous (the ops allocate them).
using Engine.Cuda.Kernels;
using Engine.Cuda.Memory;

namespace Engine.Cuda.Backend;

public sealed unsafe partial class CudaBackend
{
    public void GroupNormForward(Tensor x, int groups, Tensor? weight, Tensor? bias, double eps, Tensor y, Tensor mean, Tensor rstd)
    {
        const string op = "group_norm";
        var (n, c, s) = CheckNorm(op, x, groups);
        CheckNormOperand(op, "weight", weight, c, x);
        CheckNormOperand(op, "bias", bias, c, x);
        CheckNormOutput(op, "y", y, x.Numel, x);
        CheckNormOutput(op, "mean", mean, (long)n * groups, x);
        CheckNormOutput(op, "rstd", rstd, (long)n * groups, x);
        if (x.Numel == 0) return;
        var scratch = new NormScratch();
        var args = new NormArgs
        {
            X = DenseNormInput(op, x, scratch), Weight = DenseNormInput(op, weight, scratch), Bias = DenseNormInput(op, bias, scratch),
            Y = Ptr(y), Mean = Ptr(mean), Rstd = Ptr(rstd), N = n, C = c, S = s, Groups = groups, Eps = eps,
        };
        Module("normalization.cu").Launch("group_norm_forward_kernel", Resident((long)n * groups), Stream, args);
        scratch.Free(Memory);
    }

    public void GroupNormBackward(Tensor dy, Tensor x, Tensor mean, Tensor rstd, int groups, Tensor? weight,
                                  Tensor? dx, Tensor? dweight, Tensor? dbias)
    {
        const string op = "group_norm_backward";
        var (n, c, s) = CheckNorm(op, x, groups);
        CheckNormOperand(op, "dy", dy, x.Numel, x);
        CheckNormOperand(op, "mean", mean, (long)n * groups, x);
        CheckNormOperand(op, "rstd", rstd, (long)n * groups, x);
        CheckNormOperand(op, "weight", weight, c, x);
        CheckNormOutput(op, "dx", dx, x.Numel, x);
        CheckNormOutput(op, "dweight", dweight, c, x);
        CheckNormOutput(op, "dbias", dbias, c, x);
        if (x.Numel == 0)
        {
            if (dweight is not null) Fill(dweight, 0);
            if (dbias is not null) Fill(dbias, 0);
            return;
        }
        var needSums = dweight is not null || dbias is not null;
        if (dx is null && !needSums) return;
        var scratch = new NormScratch();
        var sumBytes = needSums ? 2L * n * c * sizeof(double) : 0;
        var args = new NormArgs
        {
            Dy = DenseNormInput(op, dy, scratch), X = DenseNormInput(op, x, scratch), Mean = DenseNormInput(op, mean, scratch),
            Rstd = DenseNormInput(op, rstd, scratch), Weight = DenseNormInput(op, weight, scratch), Dx = PtrOrZero(dx),
            Dweight = PtrOrZero(dweight), Dbias = PtrOrZero(dbias), Sums = scratch.Add(Memory, sumBytes), N = n, C = c, S = s, Groups = groups,
        };
        var set = Module("normalization.cu");
        set.Launch("group_norm_backward_kernel", Resident((long)n * groups), Stream, args);
        if (needSums) set.Launch("group_norm_channel_sums_kernel", Resident((c + BlockThreads - 1) / BlockThreads), Stream, args);
        scratch.Free(Memory);
    }

    public void BatchNormTrainingForward(Tensor x, Tensor? weight, Tensor? bias, double eps, Tensor y, Tensor mean, Tensor variance, Tensor rstd)
    {
        const string op = "batch_norm";
        var (n, c, s) = CheckNorm(op, x, groups: 1);
        CheckNormOperand(op, "weight", weight, c, x);
        CheckNormOperand(op, "bias", bias, c, x);
        CheckNormOutput(op, "y", y, x.Numel, x);
        CheckNormOutput(op, "mean", mean, c, x);
        CheckNormOutput(op, "variance", variance, c, x);
        CheckNormOutput(op, "rstd", rstd, c, x);
        if (x.Numel == 0) return;
        var scratch = new NormScratch();
        var args = new NormArgs
        {
            X = DenseNormInput(op, x, scratch), Weight = DenseNormInput(op, weight, scratch), Bias = DenseNormInput(op, bias, scratch),
            Y = Ptr(y), Mean = Ptr(mean), Variance = Ptr(variance), Rstd = Ptr(rstd), N = n, C = c, S = s, Groups = 1, Eps = eps,
        };
        Module("normalization.cu").Launch("batch_norm_training_forward_kernel", Resident(c), Stream, args);
        scratch.Free(Memory);
    }

    public void BatchNormForward(Tensor x, Tensor mean, Tensor rstd, Tensor? weight, Tensor? bias, Tensor y, bool relu = false)
    {
        const string op = "batch_norm";
        var (n, c, s) = CheckNorm(op, x, groups: 1);
        CheckNormOperand(op, "mean", mean, c, x);
        CheckNormOperand(op, "rstd", rstd, c, x);
        CheckNormOperand(op, "weight", weight, c, x);
        CheckNormOperand(op, "bias", bias, c, x);
        CheckNormOutput(op, "y", y, x.Numel, x);
        if (x.Numel == 0) return;
        var scratch = new NormScratch();
        var args = new NormArgs
        {
            X = DenseNormInput(op, x, scratch), Mean = DenseNormInput(op, mean, scratch), Rstd = DenseNormInput(op, rstd, scratch),
            Weight = DenseNormInput(op, weight, scratch), Bias = DenseNormInput(op, bias, scratch), Y = Ptr(y), N = n, C = c, S = s, Groups = 1,
            Relu = relu ? 1 : 0,
        };
        Module("normalization.cu").Launch("batch_norm_forward_kernel", Resident((x.Numel + BlockThreads - 1) / BlockThreads), Stream, args);
        scratch.Free(Memory);
    }

    public void BatchNormScaleBackward(Tensor dy, Tensor? reluOutput, Tensor rstd, Tensor? weight, Tensor dx)
    {
        const string op = "batch_norm_scale_backward";
        var (n, c, s) = CheckNorm(op, dy, groups: 1);
        CheckNormOperand(op, "reluOutput", reluOutput, dy.Numel, dy);
        CheckNormOperand(op, "rstd", rstd, c, dy);
        CheckNormOperand(op, "weight", weight, c, dy);
        CheckNormOutput(op, "dx", dx, dy.Numel, dy);
        if (dy.Numel == 0) return;
        var scratch = new NormScratch();
        var args = new NormArgs
        {
            Dy = DenseNormInput(op, dy, scratch), Y = DenseNormInput(op, reluOutput, scratch), Rstd = DenseNormInput(op, rstd, scratch),
            Weight = DenseNormInput(op, weight, scratch), Dx = Ptr(dx), N = n, C = c, S = s, Groups = 1,
        };
        Module("normalization.cu").Launch("batch_norm_scale_backward_kernel", Resident((dy.Numel + BlockThreads - 1) / BlockThreads), Stream, args);
        scratch.Free(Memory);
    }

    public void BatchNormBackward(Tensor dy, Tensor x, Tensor mean, Tensor rstd, Tensor? weight, bool training,
                                  Tensor? dx, Tensor? dweight, Tensor? dbias)
    {
        const string op = "batch_norm_backward";
        var (n, c, s) = CheckNorm(op, x, groups: 1);
        CheckNormOperand(op, "dy", dy, x.Numel, x);
        CheckNormOperand(op, "mean", mean, c, x);
        CheckNormOperand(op, "rstd", rstd, c, x);
        CheckNormOperand(op, "weight", weight, c, x);
        CheckNormOutput(op, "dx", dx, x.Numel, x);
        CheckNormOutput(op, "dweight", dweight, c, x);
        CheckNormOutput(op, "dbias", dbias, c, x);
        if (x.Numel == 0)
        {
            if (dweight is not null) Fill(dweight, 0);
            if (dbias is not null) Fill(dbias, 0);
            return;
        }
        if (dx is null && dweight is null && dbias is null) return;
        var scratch = new NormScratch();
        var args = new NormArgs
        {
            Dy = DenseNormInput(op, dy, scratch), X = DenseNormInput(op, x, scratch), Mean = DenseNormInput(op, mean, scratch),
            Rstd = DenseNormInput(op, rstd, scratch), Weight = DenseNormInput(op, weight, scratch), Dx = PtrOrZero(dx),
            Dweight = PtrOrZero(dweight), Dbias = PtrOrZero(dbias), N = n, C = c, S = s, Groups = 1, Training = training ? 1 : 0,
        };
        Module("normalization.cu").Launch("batch_norm_backward_kernel", Resident(c), Stream, args);
        scratch.Free(Memory);
    }

    /// <summary>(N, C, S) of x (N, C, *): float32 on this device, rank ≥ 2, C divisible by <paramref name="groups"/>.</summary>
    private (int N, int C, int S) CheckNorm(string op, Tensor x, int groups)
    {
        if (x.DType != DType.Float32) throw Unsupported(op, x.DType);
        Require(op, "x", x);
        if (x.Rank < 2)
            throw new ArgumentException($"CudaBackend.{op}: x must be (N, C, *), got {ShapeUtil.Format(x.Shape)}; add the batch and channel dims.");
        var c = x.Size(1);
        if (groups <= 0 || c % groups != 0)
            throw new ArgumentException($"CudaBackend.{op}: {c} channels of x {ShapeUtil.Format(x.Shape)} cannot be split into {groups} groups; " +
                                        "groups must be positive and divide the channel count.");
        var s = 1;
        for (var d = 2; d < x.Rank; d++) s = checked(s * x.Size(d));
        return (x.Size(0), c, s);
    }

    /// <summary>An input of <paramref name="expected"/> float32 elements on this device (any strides); null passes.</summary>
    private void CheckNormOperand(string op, string name, Tensor? t, long expected, Tensor x)
    {
        if (t is null) return;
        Require(op, name, t);
        if (t.DType != DType.Float32 || t.Numel != expected)
            throw new ArgumentException($"CudaBackend.{op}: {name} must be a float32 tensor of {expected} elements for x {ShapeUtil.Format(x.Shape)}, " +
                                        $"got {t.DType.Name()} {ShapeUtil.Format(t.Shape)}.");
    }

    /// <summary>An output: as an input, and contiguous, since the kernels write it densely.</summary>
    private void CheckNormOutput(string op, string name, Tensor? t, long expected, Tensor x)
    {
        if (t is null) return;
        CheckNormOperand(op, name, t, expected, x);
        if (!t.IsContiguous)
            throw new ArgumentException($"CudaBackend.{op}: output {name} {ShapeUtil.Format(t.Shape)} is not contiguous; " +
                                        "pass a tensor from Tensor.Empty (the kernels write it densely).");
    }

    /// <summary>The device address of t's elements in dense row-major order: t itself when contiguous, else a
    /// copy in pool memory that <paramref name="scratch"/> frees after the launch (stream-ordered).</summary>
    private ulong DenseNormInput(string op, Tensor? t, NormScratch scratch)
    {
        if (t is null) return 0;
        if (t.IsContiguous || t.Numel == 0) return Ptr(t);
        var dense = scratch.Add(Memory, t.Numel * sizeof(float));
        var shape = Longs(t.Shape);
        var map = ElementwiseLayout.Build(op, shape, ElementwiseLayout.ContiguousStrides(shape), t.Strides.ToArray());
        LaunchTensor("copy_kernel", new TensorArgs { Out = dense, A = Ptr(t), OutDType = Code(DType.Float32), InDType = Code(DType.Float32), Map = map });
        return dense;
    }

    /// <summary>Pool blocks taken for one normalization call (dense copies of strided inputs, the group-norm
    /// sums), returned to the pool after the launches are queued: the frees are stream-ordered.</summary>
    private sealed class NormScratch
    {
        private readonly List<(ulong Pointer, long Bytes)> _blocks = [];

        public ulong Add(CudaMemoryPool pool, long bytes)
        {
            if (bytes == 0) return 0;
            var pointer = pool.Allocate(bytes);
            _blocks.Add((pointer, bytes));
            return pointer;
        }

        public void Free(CudaMemoryPool pool)
        {
            foreach (var (pointer, bytes) in _blocks) pool.Free(pointer, bytes);
        }
    }
}
