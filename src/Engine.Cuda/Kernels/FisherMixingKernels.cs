// Launcher of kernels/fisher_mixing.cu: CRAT's box-regressor transfusion on the device. One call buckets the RoIs
// by class, updates the Fisher bank of every class present among the positives, computes the per-class similarity
// of the query with the bank, and writes the gated mixing weights, the transfused gradient over the flat (R, 4C)
// regressor-gradient buffer and each row's extra loss. Nothing synchronizes; the bank is updated in place.
using System.Runtime.InteropServices;
using Engine.Cuda.Compilation;

namespace Engine.Cuda.Kernels;

/// <summary>The fixed parameters of the CRAT transfusion (long-tail-methods.md 3.5 has the defaults).</summary>
/// <param name="Classes">C, foreground classes (label C is background).</param>
/// <param name="EmbeddingDim">D, width of the box head's embedding.</param>
/// <param name="PerSampleQuery">each positive's own squared gradient as query; false: the first positive's gradient (the code).</param>
/// <param name="FisherRate">EMA rate a of the Fisher bank (0.01).</param>
/// <param name="Temperature">softmax temperature T (0.05).</param>
/// <param name="BoxWeight">λ_b of the extra loss (0.001).</param>
public sealed record CratSpec(int Classes, int EmbeddingDim, bool PerSampleQuery, double FisherRate, double Temperature, double BoxWeight);

/// <summary>Mirror of <c>struct crat_args</c> (200 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct CratArgs
{
    public ulong Deltas;
    public ulong Embeddings;
    public ulong Targets;
    public ulong Labels;
    public ulong Fisher;
    public ulong ClassStart;
    public ulong ClassCursor;
    public ulong RowsByClass;
    public ulong PositiveOfRow;
    public ulong BatchInfo;
    public ulong ClassNorm;
    public ulong ClassGate;
    public ulong Collapsed;
    public ulong Query;
    public ulong Logits;
    public ulong Weights;
    public ulong Ungated;
    public ulong ExtraGrad;
    public ulong RowLoss;
    public double FisherRate;
    public double Temperature;
    public double BoxWeight;
    public int Rows;
    public int Classes;
    public int Dim;
    public int Normalizer;
    public int PerSample;
    public int UpdateFisher;
}

public sealed class FisherMixingKernels(CudaDevice device, KernelCompiler compiler)
    : KernelFamily(device, compiler, SourceFile, KernelNames)
{
    public const string SourceFile = "fisher_mixing.cu";

    /// <summary>CRAT_THREADS and CRAT_TILE of the kernel.</summary>
    private const int Threads = 256, Tile = 16;

    private const string Bucket = "crat_bucket_kernel";
    private const string FisherUpdate = "crat_fisher_update_kernel";
    private const string ClassKernel = "crat_class_kernel";
    private const string QueryKernel = "crat_query_kernel";
    private const string Similarity = "crat_similarity_kernel";
    private const string Mixing = "crat_mixing_kernel";

    public static IReadOnlyList<string> KernelNames { get; } = [Bucket, FisherUpdate, ClassKernel, QueryKernel, Similarity, Mixing];

    /// <summary>One CRAT step over R RoIs: deltas (R, 4C), embeddings (R, D), targets (R, 4), labels (R) int64 (C =
    /// background), normalizer N ≥ max(R, 1). When <paramref name="updateFisher"/>, fisher (C·4D) first receives
    /// F[c] ← (1 − a)F[c] + a·g_c² for every class present (Transfuse); otherwise it is only read (Weights).
    /// Writes weights (R·C, gated, zero rows for background), ungated (R·C, optional: the mask term's weights),
    /// extraGradient (R·4C, λ_b·w·sign(r), to add to the regressor gradient) and rowLoss (R, the extra loss per row;
    /// its sum is the loss).</summary>
    public void Transfuse(CratSpec spec, DeviceView deltas, DeviceView embeddings, DeviceView targets, DeviceBuffer<long> labels,
                          int normalizer, DeviceBuffer<float> fisher, bool updateFisher, DeviceBuffer<float> weights,
                          DeviceBuffer<float>? ungated, DeviceBuffer<float> extraGradient, DeviceBuffer<double> rowLoss,
                          CudaStream? stream = null)
    {
        const string op = "FisherMixingKernels.Transfuse";
        ArgumentNullException.ThrowIfNull(spec);
        var (c, d) = (spec.Classes, spec.EmbeddingDim);
        if (c < 1) throw new ArgumentException($"{op}: C = {c}; CRAT needs at least one foreground class.", nameof(spec));
        if (d < 1) throw new ArgumentException($"{op}: embedding width D = {d} must be at least 1.", nameof(spec));
        if (!(spec.FisherRate > 0 && spec.FisherRate <= 1))
            throw new ArgumentException($"{op}: Fisher EMA rate {spec.FisherRate} must be in (0, 1].", nameof(spec));
        if (!(spec.Temperature > 0)) throw new ArgumentException($"{op}: temperature {spec.Temperature} must be > 0.", nameof(spec));
        if (!(spec.BoxWeight >= 0)) throw new ArgumentException($"{op}: box transfusion weight λ_b = {spec.BoxWeight} must be ≥ 0.", nameof(spec));
        if (deltas.Shape.Length != 2 || deltas.Shape[1] != 4L * c)
            throw new ArgumentException($"{op}: deltas has shape {ElementwiseLayout.Format(deltas.Shape)}; it must be (R, 4C) = (R, {4L * c}).", nameof(deltas));
        var r = deltas.Shape[0];
        if (r > (long)Tile * 65535)
            throw new ArgumentException($"{op}: {r} RoIs exceed the {Tile * 65535} the similarity kernel's grid covers.", nameof(deltas));
        RequireDense(op, nameof(deltas), deltas, r, 4L * c);
        RequireDense(op, nameof(embeddings), embeddings, r, d);
        RequireDense(op, nameof(targets), targets, r, 4);
        RequireBuffer(op, nameof(labels), labels, r);
        if (normalizer < Math.Max(r, 1))
            throw new ArgumentException($"{op}: normalizer N = {normalizer} must be ≥ max(R, 1) = {Math.Max(r, 1)}; pass the row count of the box loss.", nameof(normalizer));
        RequireBuffer(op, nameof(fisher), fisher, 4L * c * d);
        RequireBuffer(op, nameof(weights), weights, r * c);
        if (ungated is not null) RequireBuffer(op, nameof(ungated), ungated, r * c);
        RequireBuffer(op, nameof(extraGradient), extraGradient, r * 4 * c);
        RequireBuffer(op, nameof(rowLoss), rowLoss, r);
        (string, object?)[] inputs = [("deltas", deltas.Buffer), ("embeddings", embeddings.Buffer), ("targets", targets.Buffer), ("fisher", fisher)];
        RequireDistinct(op, nameof(weights), weights, inputs);
        RequireDistinct(op, nameof(extraGradient), extraGradient, [.. inputs, ("weights", weights)]);
        if (ungated is not null) RequireDistinct(op, nameof(ungated), ungated, [.. inputs, ("weights", weights), ("extraGradient", extraGradient)]);
        if (updateFisher) RequireDistinct(op, nameof(fisher), fisher, ("deltas", deltas.Buffer), ("embeddings", embeddings.Buffer), ("targets", targets.Buffer));
        if (r == 0) return;   // no RoI: nothing to write, and no class is present, so the bank stays

        var rows = (int)r;
        var args = new CratArgs
        {
            Deltas = deltas.Address, Embeddings = embeddings.Address, Targets = targets.Address, Labels = labels.Pointer, Fisher = fisher.Pointer,
            ClassStart = Scratch<int>("class start", c + 1L, stream).Pointer,
            ClassCursor = Scratch<int>("class cursor", c, stream).Pointer,
            RowsByClass = Scratch<int>("rows by class", rows, stream).Pointer,
            PositiveOfRow = Scratch<int>("positive of row", rows, stream).Pointer,
            BatchInfo = Scratch<int>("batch info", 3, stream).Pointer,
            ClassNorm = Scratch<double>("class norm", c, stream).Pointer,
            ClassGate = Scratch<int>("class gate", c, stream).Pointer,
            Collapsed = spec.PerSampleQuery ? Scratch<float>("collapsed", (long)c * d, stream).Pointer : 0,
            Query = spec.PerSampleQuery ? Scratch<float>("query", (long)rows * d, stream).Pointer : 0,
            Logits = Scratch<double>("logits", spec.PerSampleQuery ? (long)rows * c : c, stream).Pointer,
            Weights = weights.Pointer,
            Ungated = ungated?.Pointer ?? 0,
            ExtraGrad = extraGradient.Pointer,
            RowLoss = rowLoss.Pointer,
            FisherRate = spec.FisherRate, Temperature = spec.Temperature, BoxWeight = spec.BoxWeight,
            Rows = rows, Classes = c, Dim = d, Normalizer = normalizer,
            PerSample = spec.PerSampleQuery ? 1 : 0, UpdateFisher = updateFisher ? 1 : 0,
        };
        Launch(Bucket, Blocks(1, Threads), stream, args);
        if (updateFisher) Launch(FisherUpdate, LaunchConfig.GridStride(Device, 4L * c * d), stream, args);
        Launch(ClassKernel, Resident(c, Threads), stream, args);
        if (spec.PerSampleQuery)
        {
            Launch(QueryKernel, Resident(rows, Threads), stream, args);
            var grid = new Dim3((uint)((c + Tile - 1) / Tile), (uint)((rows + Tile - 1) / Tile));
            Launch(Similarity, new LaunchConfig(grid, new Dim3(Tile, Tile)), stream, args);
        }
        Launch(Mixing, Resident(rows, Threads), stream, args);
    }
}
