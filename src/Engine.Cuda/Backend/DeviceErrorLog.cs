// The host side of the error record of kernels/backend.cuh: 40 bytes of page-locked host memory mapped
// into the device, where a kernel that meets bad input (an index out of range, a cross-entropy target
// outside [0, C), an integer division by zero) records the first such error without stopping. The
// backend checks it after every wait on its stream (a copy to the host, a data-dependent size, an
// explicit Synchronize) and throws there the exception the CPU backend would have thrown at the call,
// with the same wording plus a note that the GPU reported it later. No host synchronization is added
// for the check: the record is read only where the host waits anyway.
using System.Runtime.InteropServices;
using Engine.Cuda.Interop;

namespace Engine.Cuda.Backend;

/// <summary>Mirror of <c>struct engine_error</c> (backend.cuh, 40 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct EngineError
{
    public int Code;
    public int Op;
    public long Value;
    public long Position;
    public long Limit;
    public long Extra;
}

internal sealed unsafe class DeviceErrorLog : IDisposable
{
    /// <summary>The kernels that report errors, as the `op` field numbers them.</summary>
    public enum Op
    {
        Binary = 1,
        CrossEntropyForward = 2,
        CrossEntropyBackward = 3,
        IndexSelect = 4,
        IndexAdd = 5,
        Gather = 6,
        ScatterAdd = 7,
        Nonzero = 8,
        // detection and long-tail kernels (Engine.Cuda.Ops)
        EncodeBoxes = 9,
        MatchProposals = 10,
        WeightedSigmoidBce = 11,
        Fcbl = 12,
        AccumulateConfusion = 13,
        SoftmaxCrossEntropy = 14,
        Seesaw = 15,
        CratTransfuse = 16,
    }

    /// <summary>The `code` values of backend.cuh.</summary>
    public enum ErrorCode
    {
        DivisionByZero = 1,
        IndexOutOfRange = 2,
        TargetOutOfRange = 3,
        CountChanged = 4,
        /// <summary>value = x1, y1 and limit = x2, y2 as float bits (high word, low word), position = box.</summary>
        NonPositiveBox = 5,
        /// <summary>value = the quality's float bits, position = flat element, limit = columns.</summary>
        InvalidQuality = 6,
        /// <summary>value = label, position = row, limit = largest valid label.</summary>
        LabelOutOfRange = 7,
    }

    private const uint CuMemHostAllocPortable = 0x1;
    private const uint CuMemHostAllocDeviceMap = 0x2;

    private readonly PinnedHostHandle _memory;

    public DeviceErrorLog(CudaDevice device)
    {
        device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuMemHostAlloc(out var p, (nuint)sizeof(EngineError), CuMemHostAllocPortable | CuMemHostAllocDeviceMap),
                         nameof(CudaDriver.cuMemHostAlloc), "the kernel error record");
        _memory = new PinnedHostHandle(device.Context, (nint)p);
        *Record = default;
        CudaDriver.Check(CudaDriver.cuMemHostGetDevicePointer(out var d, p, 0), nameof(CudaDriver.cuMemHostGetDevicePointer), "the kernel error record");
        DevicePointer = d;
    }

    /// <summary>The address kernels write to (an engine_error*).</summary>
    public ulong DevicePointer { get; }

    private EngineError* Record => (EngineError*)_memory.DangerousGetHandle();

    /// <summary>Throws the recorded error, if any, and clears the record. Call only after waiting for the stream.</summary>
    public void ThrowIfSet()
    {
        // The device wrote through the mapping; a fence orders this read after the stream wait that preceded it.
        Thread.MemoryBarrier();
        var e = *Record;
        if (e.Code == 0) return;
        *Record = default;
        throw Describe(e);
    }

    /// <summary>The exception for a record, worded as the CPU backend words the same failure.</summary>
    public static Exception Describe(EngineError e)
    {
        const string late = " (Detected on the GPU and reported at the next synchronization; outputs of that op are incomplete.)";
        var op = (Op)e.Op switch
        {
            Op.Binary => "div",
            Op.CrossEntropyForward or Op.CrossEntropyBackward => "CrossEntropy",
            Op.IndexSelect => "index_select",
            Op.IndexAdd => "index_add",
            Op.Gather => "gather",
            Op.ScatterAdd => "scatter_add",
            Op.Nonzero => "nonzero",
            Op.EncodeBoxes => "GetDeltas",
            Op.MatchProposals => "Matcher",
            Op.WeightedSigmoidBce => "WeightedSigmoidBce",
            Op.Fcbl => "Fcbl",
            Op.AccumulateConfusion => "AccumulateConfusion",
            Op.SoftmaxCrossEntropy => "SoftmaxCrossEntropy",
            Op.Seesaw => "Seesaw",
            Op.CratTransfuse => "CratTransfuse",
            _ => $"kernel op {e.Op}",
        };
        return (ErrorCode)e.Code switch
        {
            ErrorCode.DivisionByZero => new DivideByZeroException($"{op}: integer division by zero at output element {e.Position}.{late}"),
            ErrorCode.IndexOutOfRange => new ArgumentOutOfRangeException("index",
                $"{op}: index {e.Value} (element {e.Position} of the index tensor) is out of range for dim {e.Extra} of size {e.Limit}; " +
                $"indices must lie in [0, {e.Limit}) (negative indices are not supported).{late}"),
            ErrorCode.TargetOutOfRange => new ArgumentException(
                $"{op}: target value {e.Value} at row {e.Position} is out of range for {e.Limit} classes (valid: 0..{e.Limit - 1}, or ignoreIndex). " +
                $"Check the label mapping, or mark rows to skip with ignoreIndex.{late}"),
            ErrorCode.CountChanged => new InvalidOperationException(
                $"{op}: the output has {e.Limit} rows but the input has {e.Value} nonzero elements; it changed between the count and the fill.{late}"),
            ErrorCode.NonPositiveBox => NonPositiveBox(op, e, late),
            ErrorCode.InvalidQuality => new ArgumentException(
                $"{op}: match quality [{e.Position / Math.Max(e.Limit, 1)}, {e.Position % Math.Max(e.Limit, 1)}] = {Low(e.Value)}; " +
                $"qualities (e.g. IoU) must be ≥ 0 and not NaN.{late}"),
            ErrorCode.LabelOutOfRange => new ArgumentException(
                $"{op}: label {e.Value} at row {e.Position} is outside 0..{e.Limit}; labels are class indices with the background " +
                $"as the last class. Check the label mapping.{late}"),
            _ => new InvalidOperationException($"{op}: a kernel reported error code {e.Code} (value {e.Value}, position {e.Position}).{late}"),
        };
    }

    private static float High(long packed) => BitConverter.Int32BitsToSingle((int)(packed >> 32));

    private static float Low(long packed) => BitConverter.Int32BitsToSingle((int)packed);

    /// <summary>EncodeBoxes' rejection of a source box, worded as CpuDetectionBackend.EncodeBoxes words it.</summary>
    private static ArgumentException NonPositiveBox(string op, EngineError e, string late)
    {
        var (x1, y1, x2, y2) = (High(e.Value), Low(e.Value), High(e.Limit), Low(e.Limit));
        return new ArgumentException($"{op}: source box {e.Position} = [{x1}, {y1}, {x2}, {y2}] has width {x2 - x1} and height {y2 - y1}; " +
                                     $"source boxes (proposals or anchors) must have positive size. Filter them with Boxes.NonEmpty first.{late}");
    }

    public void Dispose() => _memory.Dispose();
}
