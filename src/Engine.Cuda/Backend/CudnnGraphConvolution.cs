// 2-D convolution through cuDNN 9's graph API, NCHW float32, cross-correlation as in the CPU backend. For each
// geometry, pass and pointer alignment it builds the one-operation graph (tensors x, w, y with unique ids 1, 2, 3;
// the convolution; the forward, backward-data or backward-filter operation), asks the heuristics for engine
// configurations (INSTANT, then FALLBACK; a configuration is an engine and its knob choices, and one listed by both
// counts once), keeps those ConvolutionCandidates
// admits, finalizes execution plans within the workspace limit until it has the search limit's number
// (CudaBackendOptions.ConvolutionSearchLimit, 10 by default as in PyTorch), times each on the call's own buffers
// (one run to warm up, then three between two events: a host synchronization, once per shape) and keeps the
// fastest plan. This is the autotuning PyTorch's cudnn.benchmark does over the same API, and it reaches engines
// the legacy cudnnFind* does not offer.
// The bias (cudnnAddTensor, cudnnConvolutionBackwardBias) and any pass for which no graph plan could be built
// go through the legacy engine, whose cuDNN handle the plans share; Fallbacks lists those passes.
using System.Diagnostics;
using System.Text;
using Engine.Cuda.Interop;
using Engine.Cuda.Memory;
using Engine.Native;

namespace Engine.Cuda.Backend;

internal sealed unsafe class CudnnGraphConvolution : IConvolutionEngine
{
    private const long MaxWorkspaceBytes = 1L << 30;
    private const int TimedRuns = 3;
    private const int MaxKnobs = 64;
    private const long XId = 1, WId = 2, YId = 3;

    private enum Pass { Forward, BackwardData, BackwardFilter }

    private readonly CudaDevice _device;
    private readonly CudaStream _stream;
    private readonly CudaMemoryPool _memory;
    private readonly bool _allowTf32;
    /// <summary>Execution plans timed per pass at most.</summary>
    private readonly int _searchLimit;
    private readonly CudnnConvolution _legacy;
    /// <summary>Null value: no graph plan could be built; the legacy engine runs that pass.</summary>
    private readonly Dictionary<(Conv2dGeometry G, Pass P, int Alignment), Plan?> _plans = [];
    /// <summary>Why each pass without a graph plan has none.</summary>
    private readonly Dictionary<(Conv2dGeometry G, Pass P, int Alignment), string> _fallbacks = [];
    private readonly Lock _gate = new();
    /// <summary>Why configurations' knob choices could not be read (the first failure), or null.</summary>
    private string? _knobsUnreadable;
    /// <summary>Wall time spent searching (building, finalizing and timing plans), over every pass.</summary>
    private TimeSpan _searchTime;

    public CudnnGraphConvolution(CudaDevice device, CudaStream stream, CudaMemoryPool memory, bool allowTf32,
                                 int searchLimit = CudaBackendOptions.DefaultConvolutionSearchLimit)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(searchLimit, 1);
        _searchLimit = searchLimit;
        _device = device;
        _stream = stream;
        _memory = memory;
        _allowTf32 = allowTf32;
        _legacy = new CudnnConvolution(device, stream, memory, allowTf32);
    }

    /// <summary>The legacy engine's handle (bound to the stream): plans are built and executed on it.</summary>
    private nint Handle => _legacy.Handle;

    /// <summary>The passes (geometry, pass and why) that run on the legacy engine because no graph plan was built.</summary>
    public IReadOnlyList<string> Fallbacks
    {
        get
        {
            lock (_gate) return [.. _fallbacks.Select(f => $"{f.Key.P} of {f.Key.G}: {f.Value}")];
        }
    }

    /// <summary>An execution plan and the descriptors it was built from (kept alive with it).</summary>
    private sealed class Plan(CudnnDescriptor execution, long workspaceBytes, long engineIndex, string knobs, float milliseconds, int timed,
                              string passedOver, List<CudnnDescriptor> owned) : IDisposable
    {
        public CudnnDescriptor Execution { get; } = execution;
        public long WorkspaceBytes { get; } = workspaceBytes;
        public long EngineIndex { get; } = engineIndex;
        /// <summary>The configuration's knob choices as "type=value" pairs ("" when the engine has none).</summary>
        public string Knobs { get; } = knobs;
        public float Milliseconds { get; } = milliseconds;
        public int Timed { get; } = timed;
        /// <summary>The configurations the heuristics offered that were not timed, counted by reason ("" when none).</summary>
        public string PassedOver { get; } = passedOver;

        public void Dispose()
        {
            Execution.Dispose();
            foreach (var d in owned) d.Dispose();
        }
    }

    public void Forward(Conv2dGeometry g, ulong x, ulong w, ulong bias, ulong y)
    {
        if (g.N == 0) return;
        lock (_gate)
        {
            _device.MakeCurrent();
            if (PlanFor(g, Pass.Forward, x, w, y) is { } plan) Execute(plan, x, w, y);
            else _legacy.Forward(g, x, w, 0, y);
            if (bias != 0) _legacy.AddBias(g, bias, y);
        }
    }

    public void BackwardData(Conv2dGeometry g, ulong dy, ulong w, ulong dx)
    {
        if (g.N == 0) return;
        lock (_gate)
        {
            _device.MakeCurrent();
            if (PlanFor(g, Pass.BackwardData, dx, w, dy) is { } plan) Execute(plan, dx, w, dy);
            else _legacy.BackwardData(g, dy, w, dx);
        }
    }

    public void BackwardWeights(Conv2dGeometry g, ulong x, ulong dy, ulong dw, ulong dbias)
    {
        lock (_gate)
        {
            _device.MakeCurrent();
            if (PlanFor(g, Pass.BackwardFilter, x, dw, dy) is { } plan) Execute(plan, x, dw, dy);
            else _legacy.BackwardWeights(g, x, dy, dw, 0);
            if (dbias != 0) _legacy.BiasGradient(g, dy, dbias);
        }
    }

    /// <summary>Runs <paramref name="plan"/> on the x-, w- and y-shaped buffers of its pass, with a workspace from the pool.</summary>
    private void Execute(Plan plan, ulong x, ulong w, ulong y)
    {
        var workspace = _memory.Allocate(plan.WorkspaceBytes);
        try
        {
            Run(plan.Execution, x, w, y, workspace);
        }
        finally
        {
            _memory.Free(workspace, plan.WorkspaceBytes);
        }
    }

    private void Run(CudnnDescriptor execution, ulong x, ulong w, ulong y, ulong workspace)
    {
        using var pack = new CudnnDescriptor(cudnnBackendDescriptorType_t.CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
        pack.Set(cudnnBackendAttributeName_t.CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, [XId, WId, YId]);
        pack.SetPointers(cudnnBackendAttributeName_t.CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, [x, w, y]);
        pack.SetPointers(cudnnBackendAttributeName_t.CUDNN_ATTR_VARIANT_PACK_WORKSPACE, [workspace]);
        pack.Finish();
        CuDnn.Check(CuDnn.cudnnBackendExecute(Handle, execution.Handle, pack.Handle), nameof(CuDnn.cudnnBackendExecute));
    }

    /// <summary>The cached plan of this geometry, pass and alignment, searched on first use; null: use the legacy engine.</summary>
    private Plan? PlanFor(Conv2dGeometry g, Pass pass, ulong x, ulong w, ulong y)
    {
        var key = (g, pass, ConvolutionCandidates.Alignment(x, w, y));
        if (_plans.TryGetValue(key, out var plan)) return plan;
        var started = Stopwatch.GetTimestamp();
        try
        {
            plan = Search(g, pass, key.Item3, x, w, y, out var why);
            if (plan is null) _fallbacks[key] = why;
        }
        catch (CudnnException e)
        {
            plan = null;
            _fallbacks[key] = e.Message;
        }
        _searchTime += Stopwatch.GetElapsedTime(started);
        _plans[key] = plan;
        return plan;
    }

    private Plan? Search(Conv2dGeometry g, Pass pass, int alignment, ulong x, ulong w, ulong y, out string why)
    {
        var owned = new List<CudnnDescriptor>();
        var candidates = new List<(CudnnDescriptor Config, CudnnDescriptor Execution, long Workspace, long Engine, string Knobs)>();
        try
        {
            var graph = Graph(g, pass, alignment, owned);
            var rejected = new Dictionary<string, int>();
            var seen = new HashSet<(long, string)>();
            foreach (var mode in (ReadOnlySpan<cudnnBackendHeurMode_t>)[cudnnBackendHeurMode_t.CUDNN_HEUR_MODE_INSTANT,
                                                                      cudnnBackendHeurMode_t.CUDNN_HEUR_MODE_FALLBACK])
            {
                foreach (var config in Configurations(graph, mode))
                {
                    CudnnDescriptor? execution = null;
                    string? reason;
                    long workspace = 0, engine = -1;
                    var knobs = "";
                    try
                    {
                        (engine, knobs, reason) = Inspect(config);
                        // one engine may come with different knobs (distinct candidates); FALLBACK repeats configurations
                        // INSTANT listed, which are timed once
                        if (!seen.Add((engine, knobs)) && reason is null) reason = "already offered";
                        if (reason is null && candidates.Count >= _searchLimit) reason = "over the search limit";
                        execution = reason is null ? Finalize(config, out reason) : null;
                        if (execution is not null)
                        {
                            workspace = execution.GetInt64(cudnnBackendAttributeName_t.CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE);
                            if (workspace > MaxWorkspaceBytes) reason = $"needs more than {MemoryStats.Format(MaxWorkspaceBytes)} of workspace";
                        }
                    }
                    catch (CudnnException e)
                    {
                        reason = $"not readable ({e.StatusName})";
                    }
                    if (reason is null)
                    {
                        candidates.Add((config, execution!, workspace, engine, knobs));
                        continue;
                    }
                    rejected[reason] = rejected.GetValueOrDefault(reason) + 1;
                    execution?.Dispose();
                    config.Dispose();
                }
            }
            if (candidates.Count == 0)
            {
                why = "no engine configuration was usable (" +
                      (rejected.Count == 0 ? "the heuristics offered none" : string.Join("; ", rejected.Select(r => $"{r.Value} {r.Key}"))) + ")";
                return null;
            }
            var times = Time(candidates.Select(c => (c.Execution, c.Workspace)).ToList(), x, w, y);
            var best = ConvolutionCandidates.Fastest(times);
            if (best < 0)
            {
                why = $"none of the {candidates.Count} execution plans ran";
                return null;
            }
            var chosen = candidates[best];
            owned.Add(chosen.Config);
            candidates.RemoveAt(best);
            why = "";
            var passedOver = string.Join("; ", rejected.Select(r => $"{r.Value} {r.Key}"));
            var plan = new Plan(chosen.Execution, chosen.Workspace, chosen.Engine, chosen.Knobs, times[best], times.Length, passedOver, owned);
            owned = [];
            return plan;
        }
        finally
        {
            foreach (var c in candidates)
            {
                c.Execution.Dispose();
                c.Config.Dispose();
            }
            foreach (var d in owned) d.Dispose();
        }
    }

    /// <summary>Milliseconds per run of each plan on these buffers; NaN where a plan fails to run.
    /// HOST SYNC, once per shape: the search waits for each plan's timing events.</summary>
    private float[] Time(List<(CudnnDescriptor Execution, long Workspace)> plans, ulong x, ulong w, ulong y)
    {
        var times = new float[plans.Count];
        var bytes = plans.Max(p => p.Workspace);
        var workspace = _memory.Allocate(bytes);
        using var start = new CudaEvent(_device, timing: true);
        using var end = new CudaEvent(_device, timing: true);
        try
        {
            for (var i = 0; i < plans.Count; i++)
            {
                try
                {
                    Run(plans[i].Execution, x, w, y, workspace);
                    start.Record(_stream);
                    for (var r = 0; r < TimedRuns; r++) Run(plans[i].Execution, x, w, y, workspace);
                    end.Record(_stream);
                    end.Synchronize();
                    times[i] = CudaEvent.ElapsedMilliseconds(start, end) / TimedRuns;
                }
                catch (CudnnException)
                {
                    times[i] = float.NaN;
                }
            }
        }
        finally
        {
            _memory.Free(workspace, bytes);
        }
        return times;
    }

    /// <summary>The finalized operation graph of one pass; every descriptor it needs goes into <paramref name="owned"/>.</summary>
    private CudnnDescriptor Graph(Conv2dGeometry g, Pass pass, int alignment, List<CudnnDescriptor> owned)
    {
        CudnnDescriptor Own(CudnnDescriptor d)
        {
            owned.Add(d);
            return d;
        }

        var x = Own(Tensor(XId, [g.N, g.CIn, g.H, g.W], alignment));
        var w = Own(Tensor(WId, [g.COut, g.CInPerGroup, g.KernelH, g.KernelW], alignment));
        var y = Own(Tensor(YId, [g.N, g.COut, g.OutH, g.OutW], alignment));

        var conv = Own(new CudnnDescriptor(cudnnBackendDescriptorType_t.CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR));
        conv.SetEnum(cudnnBackendAttributeName_t.CUDNN_ATTR_CONVOLUTION_COMP_TYPE, cudnnBackendAttributeType_t.CUDNN_TYPE_DATA_TYPE,
                     (int)cudnnDataType_t.CUDNN_DATA_FLOAT);
        conv.SetEnum(cudnnBackendAttributeName_t.CUDNN_ATTR_CONVOLUTION_CONV_MODE, cudnnBackendAttributeType_t.CUDNN_TYPE_CONVOLUTION_MODE,
                     (int)cudnnConvolutionMode_t.CUDNN_CROSS_CORRELATION);
        conv.Set(cudnnBackendAttributeName_t.CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, 2L);
        conv.Set(cudnnBackendAttributeName_t.CUDNN_ATTR_CONVOLUTION_DILATIONS, [g.DilationH, g.DilationW]);
        conv.Set(cudnnBackendAttributeName_t.CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, [g.StrideH, g.StrideW]);
        conv.Set(cudnnBackendAttributeName_t.CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, [g.PadH, g.PadW]);
        conv.Set(cudnnBackendAttributeName_t.CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, [g.PadH, g.PadW]);
        conv.Finish();

        var (type, alpha, beta, convDesc, xName, wName, yName) = pass switch
        {
            Pass.Forward => (cudnnBackendDescriptorType_t.CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR,
                             cudnnBackendAttributeName_t.CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA,
                             cudnnBackendAttributeName_t.CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA,
                             cudnnBackendAttributeName_t.CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
                             cudnnBackendAttributeName_t.CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
                             cudnnBackendAttributeName_t.CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W,
                             cudnnBackendAttributeName_t.CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y),
            Pass.BackwardData => (cudnnBackendDescriptorType_t.CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR,
                                  cudnnBackendAttributeName_t.CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA,
                                  cudnnBackendAttributeName_t.CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA,
                                  cudnnBackendAttributeName_t.CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC,
                                  cudnnBackendAttributeName_t.CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX,
                                  cudnnBackendAttributeName_t.CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W,
                                  cudnnBackendAttributeName_t.CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY),
            _ => (cudnnBackendDescriptorType_t.CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR,
                  cudnnBackendAttributeName_t.CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA,
                  cudnnBackendAttributeName_t.CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA,
                  cudnnBackendAttributeName_t.CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC,
                  cudnnBackendAttributeName_t.CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X,
                  cudnnBackendAttributeName_t.CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW,
                  cudnnBackendAttributeName_t.CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY),
        };
        var op = Own(new CudnnDescriptor(type));
        op.Set(xName, x);
        op.Set(wName, w);
        op.Set(yName, y);
        op.Set(convDesc, conv);
        op.Set(alpha, 1f);
        op.Set(beta, 0f);
        op.Finish();

        var graph = Own(new CudnnDescriptor(cudnnBackendDescriptorType_t.CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR));
        graph.SetHandle(cudnnBackendAttributeName_t.CUDNN_ATTR_OPERATIONGRAPH_HANDLE, Handle);
        graph.Set(cudnnBackendAttributeName_t.CUDNN_ATTR_OPERATIONGRAPH_OPS, op);
        graph.Finish();
        return graph;
    }

    /// <summary>A packed NCHW float32 tensor.</summary>
    private static CudnnDescriptor Tensor(long id, ReadOnlySpan<long> dims, int alignment)
    {
        var strides = new long[dims.Length];
        long stride = 1;
        for (var d = dims.Length - 1; d >= 0; d--)
        {
            strides[d] = stride;
            stride *= dims[d];
        }
        var t = new CudnnDescriptor(cudnnBackendDescriptorType_t.CUDNN_BACKEND_TENSOR_DESCRIPTOR);
        try
        {
            t.SetEnum(cudnnBackendAttributeName_t.CUDNN_ATTR_TENSOR_DATA_TYPE, cudnnBackendAttributeType_t.CUDNN_TYPE_DATA_TYPE,
                      (int)cudnnDataType_t.CUDNN_DATA_FLOAT);
            t.Set(cudnnBackendAttributeName_t.CUDNN_ATTR_TENSOR_DIMENSIONS, dims);
            t.Set(cudnnBackendAttributeName_t.CUDNN_ATTR_TENSOR_STRIDES, strides);
            t.Set(cudnnBackendAttributeName_t.CUDNN_ATTR_TENSOR_UNIQUE_ID, id);
            t.Set(cudnnBackendAttributeName_t.CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, (long)alignment);
            t.Finish();
            return t;
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    /// <summary>The engine configurations the heuristics in <paramref name="mode"/> offer, best first; none where the
    /// heuristics cannot handle the graph.</summary>
    private static List<CudnnDescriptor> Configurations(CudnnDescriptor graph, cudnnBackendHeurMode_t mode)
    {
        using var heuristics = new CudnnDescriptor(cudnnBackendDescriptorType_t.CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
        heuristics.Set(cudnnBackendAttributeName_t.CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph);
        heuristics.SetEnum(cudnnBackendAttributeName_t.CUDNN_ATTR_ENGINEHEUR_MODE, cudnnBackendAttributeType_t.CUDNN_TYPE_HEUR_MODE, (int)mode);
        if (heuristics.TryFinish() != cudnnStatus_t.CUDNN_STATUS_SUCCESS) return [];
        var count = (int)heuristics.Count(cudnnBackendAttributeName_t.CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                          cudnnBackendAttributeType_t.CUDNN_TYPE_BACKEND_DESCRIPTOR);
        var configs = new List<CudnnDescriptor>(count);
        try
        {
            for (var i = 0; i < count; i++) configs.Add(new CudnnDescriptor(cudnnBackendDescriptorType_t.CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
            var filled = heuristics.GetDescriptors(cudnnBackendAttributeName_t.CUDNN_ATTR_ENGINEHEUR_RESULTS, configs);
            for (var i = filled; i < configs.Count; i++) configs[i].Dispose();
            configs.RemoveRange(filled, configs.Count - filled);
            return configs;
        }
        catch
        {
            foreach (var c in configs) c.Dispose();
            throw;
        }
    }

    /// <summary>The engine's global index, the configuration's knob choices, and why it may not run (null: it may).</summary>
    private (long Engine, string Knobs, string? Reason) Inspect(CudnnDescriptor config)
    {
        using var engine = new CudnnDescriptor(cudnnBackendDescriptorType_t.CUDNN_BACKEND_ENGINE_DESCRIPTOR);
        config.GetDescriptors(cudnnBackendAttributeName_t.CUDNN_ATTR_ENGINECFG_ENGINE, [engine]);
        var knobs = Knobs(config);
        var index = engine.GetInt64(cudnnBackendAttributeName_t.CUDNN_ATTR_ENGINE_GLOBAL_INDEX);
        Span<int> numerical = stackalloc int[(int)cudnnBackendNumericalNote_t.CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
        Span<int> behavior = stackalloc int[(int)cudnnBackendBehaviorNote_t.CUDNN_BEHAVIOR_NOTE_TYPE_COUNT];
        var n = engine.GetEnums(cudnnBackendAttributeName_t.CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, cudnnBackendAttributeType_t.CUDNN_TYPE_NUMERICAL_NOTE,
                                numerical);
        int b;
        try
        {
            b = engine.GetEnums(cudnnBackendAttributeName_t.CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, cudnnBackendAttributeType_t.CUDNN_TYPE_BEHAVIOR_NOTE,
                                behavior);
        }
        catch (CudnnException)
        {
            b = 0; // a cuDNN that records no behavior notes for this engine
        }
        return (index, knobs, ConvolutionCandidates.Rejects(numerical[..n], behavior[..b], _allowTf32));
    }

    /// <summary>The knob choices of an engine configuration as "type=value" pairs in type order, "" when it has none
    /// (or the cuDNN in use does not report them: configurations of one engine then count as one, and the report says
    /// why the choices could not be read).</summary>
    private string Knobs(CudnnDescriptor config)
    {
        var choices = new List<CudnnDescriptor>();
        try
        {
            // room for 64 choices, more than the knob types cuDNN 9 defines; read in one call, as cudnn-frontend does
            for (var i = 0; i < MaxKnobs; i++) choices.Add(new CudnnDescriptor(cudnnBackendDescriptorType_t.CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR));
            var filled = config.GetDescriptors(cudnnBackendAttributeName_t.CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, choices);
            Span<int> type = stackalloc int[1];
            var pairs = new SortedDictionary<int, long>();
            for (var i = 0; i < filled; i++)
            {
                choices[i].GetEnums(cudnnBackendAttributeName_t.CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, cudnnBackendAttributeType_t.CUDNN_TYPE_KNOB_TYPE, type);
                pairs[type[0]] = choices[i].GetInt64(cudnnBackendAttributeName_t.CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE);
            }
            return string.Join(" ", pairs.Select(p => $"{p.Key}={p.Value}"));
        }
        catch (CudnnException e)
        {
            _knobsUnreadable ??= e.Message;
            return "";
        }
        finally
        {
            foreach (var c in choices) c.Dispose();
        }
    }

    /// <summary>The finalized execution plan of <paramref name="config"/>, or null with cuDNN's reason.</summary>
    private CudnnDescriptor? Finalize(CudnnDescriptor config, out string? reason)
    {
        var plan = new CudnnDescriptor(cudnnBackendDescriptorType_t.CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
        try
        {
            plan.SetHandle(cudnnBackendAttributeName_t.CUDNN_ATTR_EXECUTION_PLAN_HANDLE, Handle);
            plan.Set(cudnnBackendAttributeName_t.CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, config);
            var status = plan.TryFinish();
            if (status == cudnnStatus_t.CUDNN_STATUS_SUCCESS)
            {
                reason = null;
                return plan;
            }
            reason = $"plan not finalized ({CuDnn.Describe(status).Name})";
        }
        catch (CudnnException e)
        {
            reason = $"plan not built ({e.StatusName})";
        }
        plan.Dispose();
        return null;
    }

    public string Describe()
    {
        lock (_gate)
        {
            var text = new StringBuilder($"cuDNN graph API{(_allowTf32 ? ", TF32 allowed" : ", FP32")}: {_plans.Count} passes planned " +
                                         $"in {_searchTime.TotalSeconds:F2} s (at most {_searchLimit} plans timed per pass), " +
                                         $"{_fallbacks.Count} on the legacy engine" +
                                         (_knobsUnreadable is null ? "" : $"; knob choices not readable: {_knobsUnreadable}") + "\n");
            foreach (var (key, plan) in _plans)
                text.AppendLine(plan is null
                    ? $"  {key.P} of {key.G}: legacy engine, because {_fallbacks[key]}"
                    : $"  {key.P} of {key.G} (aligned {key.Alignment}): engine {plan.EngineIndex}" +
                      $"{(plan.Knobs.Length == 0 ? "" : $" (knobs {plan.Knobs})")}, {plan.Milliseconds:F3} ms, " +
                      $"{MemoryStats.Format(plan.WorkspaceBytes)} workspace, fastest of {plan.Timed}" +
                      (plan.PassedOver.Length == 0 ? "" : $" (passed over: {plan.PassedOver})"));
            text.Append(_legacy.Describe());
            return text.ToString();
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _device.MakeCurrent();
            foreach (var plan in _plans.Values) plan?.Dispose();
            _plans.Clear();
            _legacy.Dispose();
        }
    }
}
