// Checks of the backend's kernel files that need no GPU: each file defines the kernels CudaBackend launches
// by name (PTX lists every extern "C" __global__ function as ".entry name("), and every argument struct the
// backend builds has the size the file's static_assert pins. (Clean CUBIN compilation of every file for
// sm_80 and sm_90 is KernelCompilerTests' theory over kernels/.)
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Engine.Cuda.Backend;
using Engine.Cuda.Compilation;

namespace Engine.Cuda.Tests.Backend;

public sealed class BackendKernelLayoutTests : IDisposable
{
    private readonly TempFolder _cache = new();

    public void Dispose() => _cache.Dispose();

    public static TheoryData<string, string[]> Files => new()
    {
        { "tensor.cu", ["fill_kernel", "copy_kernel", "unary_extra_kernel", "binary_generic_kernel", "where_kernel"] },
        { "reduce.cu", ["reduce_rows_kernel", "reduce_columns_kernel"] },
        { "softmax.cu", ["softmax_rows_forward_kernel", "softmax_columns_forward_kernel", "softmax_rows_backward_kernel",
                         "softmax_columns_backward_kernel", "cross_entropy_forward_kernel", "cross_entropy_backward_kernel"] },
        { "indexing.cu", ["index_select_kernel", "index_add_kernel", "gather_kernel", "scatter_add_kernel",
                          "nonzero_count_kernel", "nonzero_scan_kernel", "nonzero_write_kernel"] },
        { "sort.cu", ["sort_load_kernel", "sort_shared_kernel", "sort_global_step_kernel", "sort_tile_kernel", "sort_write_kernel"] },
        { "pooling.cu", ["max_pool2d_forward_kernel", "max_pool2d_backward_kernel", "upsample_nearest2d_forward_kernel",
                         "upsample_nearest2d_backward_kernel"] },
        { "normalization.cu", ["group_norm_forward_kernel", "group_norm_backward_kernel", "group_norm_channel_sums_kernel",
                               "batch_norm_training_forward_kernel", "batch_norm_forward_kernel", "batch_norm_scale_backward_kernel", "batch_norm_backward_kernel"] },
    };

    [Theory]
    [MemberData(nameof(Files))]
    public void SourceDefinesExactlyTheKernelsTheBackendLaunches(string file, string[] names)
    {
        // the backend's sources name each kernel as a string literal: every one must exist in the file
        var sources = Directory.GetFiles(Path.Combine(Repository.Root, "src/Engine.Cuda/Backend"), "*.cs").Select(File.ReadAllText).ToList();
        foreach (var name in names)
        {
            var stem = name.Replace("_forward_kernel", "").Replace("_backward_kernel", "").Replace("_kernel", "");
            Assert.True(sources.Any(s => s.Contains($"\"{name}\"") || s.Contains(stem)), $"{name} is not launched by CudaBackend");
        }
        foreach (var architecture in new[] { GpuArchitecture.Sm80, GpuArchitecture.Sm90 })
        {
            var ptx = new KernelCompiler(cacheDirectory: _cache.Path).GeneratePtx(file, architecture);
            var entries = Regex.Matches(ptx, @"\.entry\s+(\w+)\(").Select(m => m.Groups[1].Value).Order(StringComparer.Ordinal);
            Assert.Equal(names.Order(StringComparer.Ordinal), entries);
        }
    }

    public static TheoryData<string, string, int> Structs => new()
    {
        { "backend.cuh", "engine_error", Unsafe.SizeOf<EngineError>() },
        { "tensor.cu", "tensor_args", Unsafe.SizeOf<TensorArgs>() },
        { "reduce.cu", "reduce_args", Unsafe.SizeOf<ReduceArgs>() },
        { "softmax.cu", "softmax_args", Unsafe.SizeOf<SoftmaxArgs>() },
        { "softmax.cu", "cross_entropy_args", Unsafe.SizeOf<CrossEntropyArgs>() },
        { "indexing.cu", "index_args", Unsafe.SizeOf<IndexArgs>() },
        { "indexing.cu", "nonzero_args", Unsafe.SizeOf<NonzeroArgs>() },
        { "sort.cu", "sort_args", Unsafe.SizeOf<SortArgs>() },
        { "pooling.cu", "pool_args", Unsafe.SizeOf<PoolArgs>() },
        { "normalization.cu", "norm_args", Unsafe.SizeOf<NormArgs>() },
    };

    [Theory]
    [MemberData(nameof(Structs))]
    public void HostStructHasTheSizeTheKernelAsserts(string file, string structName, int hostSize)
    {
        var source = File.ReadAllText(Path.Combine(new KernelCompiler(cacheDirectory: _cache.Path).KernelsDirectory, file));
        var match = Regex.Match(source, $@"static_assert\(sizeof\({structName}\) == (\d+)");
        Assert.True(match.Success, $"{file} has no static_assert(sizeof({structName}) == N, ...)");
        Assert.Equal(int.Parse(match.Groups[1].Value), hostSize);
    }

    [Fact]
    public void BinaryOpCodesOfTheGenericKernelMatchTheEnum()
    {
        // binary_generic_kernel switches on Engine.BinaryOp's numbers, spelled as #defines in tensor.cu.
        var source = File.ReadAllText(Path.Combine(new KernelCompiler(cacheDirectory: _cache.Path).KernelsDirectory, "tensor.cu"));
        foreach (Match m in Regex.Matches(source, @"#define OP_(\w+) (\d+)"))
        {
            var name = m.Groups[1].Value.Replace("_", "");
            var op = Enum.GetValues<BinaryOp>().Single(o => o.ToString().Equals(name, StringComparison.OrdinalIgnoreCase));
            Assert.Equal((int)op, int.Parse(m.Groups[2].Value));
        }
        Assert.Equal(13, Regex.Matches(source, @"#define OP_").Count);
    }

    [Fact]
    public void KernelErrorRecordsBecomeTheCpuBackendsExceptions()
    {
        var index = DeviceErrorLog.Describe(new EngineError { Code = 2, Op = (int)DeviceErrorLog.Op.Gather, Value = 9, Position = 4, Limit = 5, Extra = 1 });
        Assert.IsType<ArgumentOutOfRangeException>(index);
        Assert.Contains("gather: index 9 (element 4 of the index tensor) is out of range for dim 1 of size 5", index.Message);
        Assert.Contains("next synchronization", index.Message);
        var target = DeviceErrorLog.Describe(new EngineError { Code = 3, Op = (int)DeviceErrorLog.Op.CrossEntropyForward, Value = -3, Position = 7, Limit = 10 });
        Assert.IsType<ArgumentException>(target);
        Assert.Contains("CrossEntropy: target value -3 at row 7 is out of range for 10 classes (valid: 0..9", target.Message);
        var div = DeviceErrorLog.Describe(new EngineError { Code = 1, Op = (int)DeviceErrorLog.Op.Binary, Position = 12 });
        Assert.IsType<DivideByZeroException>(div);
        Assert.Contains("div: integer division by zero at output element 12", div.Message);
        var count = DeviceErrorLog.Describe(new EngineError { Code = 4, Op = (int)DeviceErrorLog.Op.Nonzero, Value = 3, Limit = 2 });
        Assert.Contains("nonzero: the output has 2 rows but the input has 3 nonzero elements", count.Message);
    }
}
