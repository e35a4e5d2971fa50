// The library search on a fake file-system tree, without any CUDA library: the order of the steps,
// which of several versioned files wins, names that only start alike, the folders of pip wheels and the
// dependency order of the CUDA libraries. Also the messages for a missing cuBLAS or cuDNN, and the
// status-to-exception mapping of both (which must work whether or not the library is present).
using Engine.Cuda.Interop;
using Engine.Native;

namespace Engine.Cuda.Tests.Interop;

public sealed class LibraryResolverTests : IDisposable
{
    private readonly TempFolder _root = new();

    public void Dispose() => _root.Dispose();

    private string Touch(string relative)
    {
        var path = Path.Combine(_root.Path, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, "");
        return path;
    }

    private string Dir(string relative)
    {
        var path = Path.Combine(_root.Path, relative);
        Directory.CreateDirectory(path);
        return path;
    }

    private LibrarySearchEnvironment Env(params (string Name, string Value)[] variables)
    {
        var map = variables.ToDictionary(v => v.Name, v => v.Value);
        return new LibrarySearchEnvironment(n => map.GetValueOrDefault(n), Dir("app"), _root.Path);
    }

    [Fact]
    public void PlanOrderIsVariableThenEnginePathThenAppThenLoaderThenCudaThenPythonThenMultiarch()
    {
        var venv = Dir("venv");
        Touch("venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcublas.so.13");
        Dir("usr/local/cuda-12.4");
        var env = Env(("ENGINE_LIB_CUBLAS", "/x/libcublas.so.13"), ("ENGINE_LIBRARY_PATH", "/e1:/e2"),
                      ("LD_LIBRARY_PATH", "/ld1::/ld2"), ("VIRTUAL_ENV", venv), ("CUDA_HOME", "/opt/cuda-home"));
        var plan = LibraryResolver.Plan("cublas", env, ["/caller"]);
        var sources = plan.Select(p => p.Source).Distinct().ToList();
        Assert.Equal(["ENGINE_LIB_CUBLAS", "ENGINE_LIBRARY_PATH", "caller", "application folder", "LD_LIBRARY_PATH",
                      "ldconfig cache", "CUDA install", "Python environment", "multiarch"], sources);
        Assert.Equal(new LibraryProbe(LibraryProbeKind.ExplicitPath, "/x/libcublas.so.13", "ENGINE_LIB_CUBLAS"), plan[0]);
        Assert.Equal(["/e1", "/e2", "/caller", env.BaseDirectory, "/ld1", "/ld2"],
                     plan.Where(p => p.Kind == LibraryProbeKind.Folder).Take(6).Select(p => p.Value));
        Assert.Equal(["libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"],
                     plan.Where(p => p.Kind == LibraryProbeKind.LoaderName).Select(p => p.Value));
        var cuda = plan.Where(p => p.Source == "CUDA install").Select(p => p.Value).ToList();
        Assert.Equal(Path.Combine("/opt/cuda-home", "lib64"), cuda[0]);
        Assert.Equal(Path.Combine(_root.Path, "usr/local/cuda", "lib64"), cuda[2]);
        Assert.Contains(Path.Combine(_root.Path, "usr/local/cuda-12.4", "targets/x86_64-linux/lib"), cuda);
        Assert.Equal(Path.Combine(venv, "lib/python3.12/site-packages/nvidia/cu13/lib"),
                     plan.Single(p => p.Source == "Python environment").Value);
        Assert.Equal(Path.Combine(_root.Path, "usr/lib/x86_64-linux-gnu"), plan[^1].Value);
    }

    [Fact]
    public void ToolkitStubFoldersAreNeverSearched()
    {
        // The toolkit's lib/stubs/libcuda.so loads but fails cuInit (CUDA_ERROR_STUB_LIBRARY); a folder list that
        // names it (a script that puts every folder holding libnvrtc* on LD_LIBRARY_PATH) must not pick it.
        Touch("cuda/targets/x86_64-linux/lib/stubs/libcuda.so");
        Touch("driver/libcuda.so.1");
        var stubs = Path.Combine(_root.Path, "cuda/targets/x86_64-linux/lib/stubs");
        var env = Env(("LD_LIBRARY_PATH", stubs + "/:" + Path.Combine(_root.Path, "driver")), ("ENGINE_LIBRARY_PATH", stubs));
        var plan = LibraryResolver.Plan("cuda", env);
        Assert.DoesNotContain(plan, p => p.Value.Contains("stubs", StringComparison.Ordinal));
        Assert.Equal(Path.Combine(_root.Path, "driver/libcuda.so.1"), LibraryResolver.Locate("cuda", env));
        Assert.Equal("libcuda.so.1", plan.First(p => p.Kind == LibraryProbeKind.LoaderName).Value);
        Assert.True(LibraryResolver.IsStubFolder(stubs));
        Assert.False(LibraryResolver.IsStubFolder(Path.Combine(_root.Path, "driver")));
    }

    [Fact]
    public void HighestVersionWinsAndLookAlikeNamesDoNotMatch()
    {
        var folder = Dir("lib");
        foreach (var name in new[] { "libnvrtc.so.12", "libnvrtc.so.13", "libnvrtc.so.13.0.88", "libnvrtc.so.9.2",
                                     "libnvrtc-builtins.so.13.0", "libnvrtc.so.13.alpha", "libnvrtc.so.txt", "libcublasLt.so.13" })
            Touch(Path.Combine("lib", name));
        Assert.Equal(["libnvrtc.so.13.0.88", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.9.2"],
                     LibraryResolver.Candidates(folder, "nvrtc").Select(Path.GetFileName));
        Assert.Empty(LibraryResolver.Candidates(folder, "cublas"));
        Assert.Equal(["libcublasLt.so.13"], LibraryResolver.Candidates(folder, "cublasLt").Select(Path.GetFileName));
        Touch("lib/libnvrtc.so");
        Assert.Equal("libnvrtc.so", Path.GetFileName(LibraryResolver.Candidates(folder, "nvrtc").First()));
        Assert.Empty(LibraryResolver.Candidates(Path.Combine(_root.Path, "absent"), "nvrtc"));
    }

    [Fact]
    public void PipWheelFoldersAreFoundWithOnlyVersionedNames()
    {
        var venv = Dir("venv");
        var conda = Dir("conda");
        Touch("venv/lib/python3.11/site-packages/nvidia/cu13/lib/libnvrtc.so.13");
        Touch("venv/lib/python3.11/site-packages/nvidia/cudnn/lib/libcudnn.so.9");
        Touch("venv/lib/python3.11/site-packages/nvidia/nccl/lib/libnccl.so.2");
        Dir("venv/lib/python3.11/site-packages/nvidia/no_lib_folder");
        Touch("conda/lib/python3.12/site-packages/nvidia/cudnn/lib/libcudnn.so.9.1.0");
        Touch("usr/local/lib/python3.10/dist-packages/nvidia/cublas/lib/libcublas.so.12");
        var env = Env(("VIRTUAL_ENV", venv), ("CONDA_PREFIX", conda));
        var folders = LibraryResolver.PythonNvidiaFolders(env).ToList();
        Assert.Equal([
            Path.Combine(venv, "lib/python3.11/site-packages/nvidia/cu13/lib"),
            Path.Combine(venv, "lib/python3.11/site-packages/nvidia/cudnn/lib"),
            Path.Combine(venv, "lib/python3.11/site-packages/nvidia/nccl/lib"),
            Path.Combine(conda, "lib/python3.12/site-packages/nvidia/cudnn/lib"),
            Path.Combine(_root.Path, "usr/local/lib/python3.10/dist-packages/nvidia/cublas/lib"),
        ], folders);
        Assert.EndsWith("venv/lib/python3.11/site-packages/nvidia/cu13/lib/libnvrtc.so.13", LibraryResolver.Locate("nvrtc", env));
        Assert.EndsWith("venv/lib/python3.11/site-packages/nvidia/cudnn/lib/libcudnn.so.9", LibraryResolver.Locate("cudnn", env));
        Assert.EndsWith("dist-packages/nvidia/cublas/lib/libcublas.so.12", LibraryResolver.Locate("cublas", env));
        Assert.Null(LibraryResolver.Locate("cufft", env));
    }

    [Fact]
    public void EarlierStepsWinOverLaterOnes()
    {
        var venv = Dir("venv");
        var wheel = Path.GetDirectoryName(Touch("venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcublas.so.13"))!;
        Touch("usr/local/cuda/lib64/libcublas.so.12");
        Touch("usr/lib/x86_64-linux-gnu/libcublas.so.11");
        // The CUDA install comes before the Python environment ...
        Assert.EndsWith("usr/local/cuda/lib64/libcublas.so.12", LibraryResolver.Locate("cublas", Env(("VIRTUAL_ENV", venv))));
        // ... unless the loader path names the wheel's folder, and an explicit file beats everything.
        Assert.Equal(Path.Combine(wheel, "libcublas.so.13"),
                     LibraryResolver.Locate("cublas", Env(("VIRTUAL_ENV", venv), ("LD_LIBRARY_PATH", wheel))));
        var pinned = Touch("pinned/libcublas.so.12.9");
        Assert.Equal(pinned, LibraryResolver.Locate("cublas", Env(("ENGINE_LIB_CUBLAS", pinned), ("LD_LIBRARY_PATH", wheel))));
        // A variable naming a file that does not exist is passed over.
        Assert.Equal(Path.Combine(wheel, "libcublas.so.13"),
                     LibraryResolver.Locate("cublas", Env(("ENGINE_LIB_CUBLAS", Path.Combine(_root.Path, "gone.so")), ("LD_LIBRARY_PATH", wheel))));
        // With nothing earlier, Debian's multiarch folder is the last resort.
        File.Delete(Path.Combine(_root.Path, "usr/local/cuda/lib64/libcublas.so.12"));
        File.Delete(Path.Combine(wheel, "libcublas.so.13"));
        Assert.EndsWith("usr/lib/x86_64-linux-gnu/libcublas.so.11", LibraryResolver.Locate("cublas", Env(("VIRTUAL_ENV", venv))));
    }

    [Fact]
    public void CudaLibrariesLoadInDependencyOrder()
    {
        Assert.Equal(["cublasLt", "cublas", "nvrtc", "cudnn"], CudaLibraries.LoadOrder);
        Assert.Equal(["cublasLt", "cublas", "nvrtc", "cudnn"], CudaLibraries.LoadSequence(CudaLibraries.Cudnn));
        Assert.Equal(["cublasLt", "cublas"], CudaLibraries.LoadSequence(CudaLibraries.Cublas));
        Assert.Equal(["nvrtc"], CudaLibraries.LoadSequence(CudaLibraries.Nvrtc));
        Assert.Equal(["cuda"], CudaLibraries.LoadSequence(CudaLibraries.Driver));
        // cuDNN's sub-libraries: the graph library first, since the others link against it.
        Assert.Equal("cudnn_graph", CudaLibraries.CompanionsOf(CudaLibraries.Cudnn)[0]);
        Assert.Contains("cudnn_cnn", CudaLibraries.CompanionsOf(CudaLibraries.Cudnn));
        Assert.Equal(["nvrtc-builtins"], CudaLibraries.CompanionsOf(CudaLibraries.Nvrtc));
    }

    [Theory]
    [InlineData("cublas", "ENGINE_LIB_CUBLAS", "nvidia-cublas")]
    [InlineData("cublasLt", "ENGINE_LIB_CUBLASLT", "nvidia-cublas")]
    [InlineData("cudnn", "ENGINE_LIB_CUDNN", "nvidia-cudnn")]
    [InlineData("nvrtc", "ENGINE_LIB_NVRTC", "nvidia-cuda-nvrtc")]
    public void MissingLibraryMessageNamesItWhereSearchedAndTheFix(string name, string variable, string wheel)
    {
        var message = CudaLibraries.MissingMessage(name, ["/a", "loader path (libx.so)"]);
        Assert.Contains($"lib{(name == "cublasLt" ? "cublasLt" : name)}.so", message);
        Assert.Contains("searched: /a, loader path (libx.so)", message);
        Assert.Contains(variable, message);
        Assert.Contains(wheel, message);
    }

    [Fact]
    public void MissingCublasOrCudnnFailsTheFirstCallWithTheMessage()
    {
        if (!CudaLibraries.TryLoad(CudaLibraries.Cublas, out var reason))
        {
            var e = Assert.Throws<DllNotFoundException>(() => CuBlas.cublasCreate(out _));
            Assert.Equal(reason, e.Message);
            Assert.Contains("libcublas", e.Message);
            Assert.Contains("/usr/local/cuda", e.Message);
        }
        if (!CudaLibraries.TryLoad(CudaLibraries.Cudnn, out reason))
        {
            var e = Assert.Throws<DllNotFoundException>(() => CuDnn.cudnnGetVersion());
            Assert.Equal(reason, e.Message);
            Assert.Contains("ENGINE_LIB_", e.Message);
        }
        else Assert.True(CuDnn.cudnnGetVersion() >= 8000, "cuDNN older than 8");
    }

    [Fact]
    public void CublasStatusBecomesAnExceptionNamingCallAndStatus()
    {
        var e = Assert.Throws<CublasException>(() =>
            CuBlas.Check(cublasStatus_t.CUBLAS_STATUS_INVALID_VALUE, nameof(CuBlas.cublasGemmEx), "m 3, n 4, k 5"));
        Assert.Equal("cublasGemmEx", e.Call);
        Assert.Equal(7, e.Status);
        Assert.Equal("CUBLAS_STATUS_INVALID_VALUE", e.StatusName);
        Assert.StartsWith("cublasGemmEx failed with CUBLAS_STATUS_INVALID_VALUE (7): ", e.Message);
        Assert.Contains("m 3, n 4, k 5", e.Message);
        // A code the header does not name still gives a message with the number.
        var odd = Assert.Throws<CublasException>(() => CuBlas.Check((cublasStatus_t)999, "cublasCreate"));
        Assert.Contains("999", odd.Message);
    }

    [Fact]
    public void CudnnStatusBecomesAnExceptionNamingCallAndStatus()
    {
        var e = Assert.Throws<CudnnException>(() =>
            CuDnn.Check(cudnnStatus_t.CUDNN_STATUS_BAD_PARAM, nameof(CuDnn.cudnnConvolutionForward), "conv2d probe"));
        Assert.Equal("cudnnConvolutionForward", e.Call);
        Assert.Equal(2000, e.Status);
        Assert.Equal("CUDNN_STATUS_BAD_PARAM", e.StatusName);
        Assert.StartsWith("cudnnConvolutionForward failed with CUDNN_STATUS_BAD_PARAM (2000)", e.Message);
        Assert.Contains("conv2d probe", e.Message);
    }
}
