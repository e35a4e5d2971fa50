// Launcher of kernels/nms.cu: greedy IoU NMS, plain or class-aware (batched, LVIS post-processing), entirely on the
// device: score sort, class segments, IoU bitmask tiles within each class only (Σ n_c² pairs), a per-class keep scan
// and the compaction of the kept indices by decreasing score. Queue() issues the launches without waiting; Run()
// also reads back the kept count, the one host synchronization of an NMS that returns its size.
using System.Numerics;
using System.Runtime.InteropServices;
using Engine.Cuda.Compilation;

namespace Engine.Cuda.Kernels;

/// <summary>Mirror of <c>struct nms_args</c> (136 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NmsArgs
{
    public ulong Boxes;
    public ulong Scores;
    public ulong Classes;
    public ulong Keys;
    public ulong Order;
    public ulong SortedRank;
    public ulong SegStart;
    public ulong TileOffset;
    public ulong MaskOffset;
    public ulong SegCount;
    public ulong Mask;
    public ulong Flags;
    public ulong Keep;
    public ulong KeptCount;
    public double IouThreshold;
    public int Count;
    public int Padded;
    public int Stage;
    public int Step;
}

public sealed class NmsKernels(CudaDevice device, KernelCompiler compiler)
    : KernelFamily(device, compiler, SourceFile, KernelNames)
{
    public const string SourceFile = "nms.cu";

    /// <summary>Most boxes in one call: the keep scan holds ceil(R / 64) words of one class in 48 KiB of shared
    /// memory, and the bitmask workspace, R·ceil(R / 64)·8 bytes (the bound when all boxes share a class), stays
    /// below 2 GiB.</summary>
    public const int MaxBoxes = 1 << 17;

    /// <summary>NMS_SORT_TILE: keys sorted per block in shared memory.</summary>
    private const int SortTile = 2048;

    private const string ScoreKeys = "nms_score_keys_kernel";
    private const string SortTileKernel = "nms_sort_tile_kernel";
    private const string SortStep = "nms_sort_step_kernel";
    private const string SortMerge = "nms_sort_merge_kernel";
    private const string Rank = "nms_rank_kernel";
    private const string Segments = "nms_segments_kernel";
    private const string MaskKernel = "nms_mask_kernel";
    private const string Scan = "nms_scan_kernel";
    private const string Compact = "nms_compact_kernel";

    public static IReadOnlyList<string> KernelNames { get; } =
        [ScoreKeys, SortTileKernel, SortStep, SortMerge, Rank, Segments, MaskKernel, Scan, Compact];

    /// <summary>Bytes of device workspace a call with <paramref name="boxes"/> boxes uses (kept between calls).</summary>
    public static long WorkspaceBytes(int boxes)
    {
        long r = boxes, p = Padded(boxes);
        return 16 * p + 4 * 3 * r + 4 * (r + 1) + 8 * 2 * (r + 1) + 4 + 8 * r * ((r + 63) / 64);
    }

    /// <summary>Greedy NMS of boxes (R, 4) = (x1, y1, x2, y2) with scores (R); classIds (R) int64, or null for one class.
    /// Writes the kept indices by decreasing score (ties by index) to keep[0..count) and returns count: the launches,
    /// then one synchronous read of the count.</summary>
    public int Run(DeviceView boxes, DeviceView scores, DeviceBuffer<long>? classIds, double iouThreshold, DeviceBuffer<long> keep,
                   CudaStream? stream = null)
    {
        var count = Scratch<int>("kept count", 1, stream);
        Queue(boxes, scores, classIds, iouThreshold, keep, count, stream);
        Span<int> host = stackalloc int[1];
        // the one host synchronization: the copy runs on the legacy default stream, after the queued launches
        count.CopyTo(host);
        return host[0];
    }

    /// <summary>The launches of <see cref="Run"/> without waiting: keptCount[0] receives the count on the device.</summary>
    public void Queue(DeviceView boxes, DeviceView scores, DeviceBuffer<long>? classIds, double iouThreshold, DeviceBuffer<long> keep,
                      DeviceBuffer<int> keptCount, CudaStream? stream = null)
    {
        const string op = "NmsKernels";
        if (boxes.Shape.Length != 2 || boxes.Shape[1] != 4)
            throw new ArgumentException($"{op}: boxes has shape {ElementwiseLayout.Format(boxes.Shape)}; it must be (R, 4) = (x1, y1, x2, y2).");
        var r = boxes.Shape[0];
        if (r > MaxBoxes)
            throw new ArgumentException($"{op}: {r} boxes exceed the {MaxBoxes} one call takes; keep the top-scoring boxes (pre-NMS top-k) first.");
        if (double.IsNaN(iouThreshold))
            throw new ArgumentException($"{op}: the IoU threshold is NaN; give a value such as 0.5 or 0.7.", nameof(iouThreshold));
        RequireDense(op, nameof(boxes), boxes, r, 4);
        RequireDense(op, nameof(scores), scores, r);
        if (classIds is not null) RequireBuffer(op, nameof(classIds), classIds, r);
        RequireBuffer(op, nameof(keep), keep, r);
        RequireBuffer(op, nameof(keptCount), keptCount, 1);

        var n = (int)r;
        var padded = Padded(n);
        var args = new NmsArgs
        {
            Boxes = n == 0 ? 0 : boxes.Address,
            Scores = n == 0 ? 0 : scores.Address,
            Classes = classIds is null || n == 0 ? 0 : classIds.Pointer,
            Keys = Scratch<ulong>("keys", 2L * padded, stream).Pointer,
            Order = Scratch<int>("order", n, stream).Pointer,
            SortedRank = Scratch<int>("sorted rank", n, stream).Pointer,
            SegStart = Scratch<int>("segment start", n + 1L, stream).Pointer,
            TileOffset = Scratch<long>("tile offset", n + 1L, stream).Pointer,
            MaskOffset = Scratch<long>("mask offset", n + 1L, stream).Pointer,
            SegCount = Scratch<int>("segment count", 1, stream).Pointer,
            Mask = Scratch<ulong>("mask", (long)n * Words(n), stream).Pointer,
            Flags = Scratch<int>("flags", n, stream).Pointer,
            Keep = keep.Pointer,
            KeptCount = keptCount.Pointer,
            IouThreshold = iouThreshold,
            Count = n,
            Padded = padded,
        };
        if (n > 0)
        {
            Launch(ScoreKeys, LaunchConfig.GridStride(Device, padded), stream, args);
            Sort(args, stream);
            Launch(Rank, LaunchConfig.GridStride(Device, n), stream, args);
            // class-aware: sort by (class, rank) so each class is one segment in score order; plain NMS is one segment
            if (classIds is not null) Sort(args, stream);
            Launch(Segments, Blocks(1, 1024), stream, args);
            var words = Words(n);
            Launch(MaskKernel, Resident((long)words * words, 64), stream, args);
            Launch(Scan, Resident(n, 32, (uint)(words * sizeof(ulong))), stream, args);
        }
        Launch(Compact, Blocks(1, 1024), stream, args);
    }

    /// <summary>Bitonic sort of the P keys: tiles in shared memory, then per stage the global steps and a tile merge.</summary>
    private void Sort(NmsArgs args, CudaStream? stream)
    {
        var p = args.Padded;
        var tile = Math.Min(p, SortTile);
        Launch(SortTileKernel, Blocks(p / tile, tile / 2), stream, args);
        for (var k = 2 * tile; k <= p; k <<= 1)
        {
            args.Stage = k;
            for (var j = k >> 1; j >= SortTile; j >>= 1)
            {
                args.Step = j;
                Launch(SortStep, LaunchConfig.GridStride(Device, p / 2), stream, args);
            }
            Launch(SortMerge, Blocks(p / SortTile, 1024), stream, args);
        }
    }

    private static int Padded(int r) => (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(r, 2));

    private static int Words(int r) => (r + 63) / 64;
}
