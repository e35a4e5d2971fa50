// CPU backend: element-wise, copy and reduction primitives as managed loops over strided rows, using
// TensorPrimitives (SIMD) on contiguous runs and Parallel.For across rows. Other op families add their
// primitives to this partial class in their own files (convolution and matmul go through oneDNN).
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Engine;

public sealed unsafe partial class CpuBackend : IBackend
{
    public Device Device => Device.Cpu;

    public Storage Allocate(long byteLength)
    {
        var s = new CpuStorage(byteLength);
        if (EngineOptions.PoisonAllocations && byteLength > 0)
            new Span<byte>((void*)s.Pointer, checked((int)byteLength)).Fill(0xFF); // NaN in float32, -1 in ints
        return s;
    }

    public void Fill(Tensor dst, double value)
    {
        var size = dst.DType.ElementSize();
        var dtype = dst.DType;
        var p = (byte*)dst.DataPointer;
        CpuLoops.ForEachRow(dst.Shape, [dst._strides], [0], (off, inner, len) =>
        {
            var row = p + off[0] * size;
            if (inner[0] == 1 || len == 1)
            {
                switch (dtype)
                {
                    case DType.Float32: new Span<float>(row, len).Fill((float)value); break;
                    case DType.Int32: new Span<int>(row, len).Fill((int)value); break;
                    case DType.Int64: new Span<long>(row, len).Fill((long)value); break;
                    case DType.UInt8: new Span<byte>(row, len).Fill((byte)value); break;
                    default: throw Unsupported("fill", dtype);
                }
                return;
            }
            for (var i = 0; i < len; i++) WriteDouble(dtype, row + i * inner[0] * size, value);
        });
    }

    public void Copy(Tensor src, Tensor dst)
    {
        var (ss, ds) = (src.DType.ElementSize(), dst.DType.ElementSize());
        var (st, dt) = (src.DType, dst.DType);
        var ps = (byte*)src.DataPointer;
        var pd = (byte*)dst.DataPointer;
        CpuLoops.ForEachRow(dst.Shape, [dst._strides, src._strides], [0, 0], (off, inner, len) =>
        {
            var d = pd + off[0] * ds;
            var s = ps + off[1] * ss;
            if (st == dt && (inner[0] == 1 || len == 1) && (inner[1] == 1 || len == 1))
            {
                Buffer.MemoryCopy(s, d, (long)len * ds, (long)len * ds);
                return;
            }
            if (st == DType.Float32 && dt == DType.Float32)
            {
                for (var i = 0; i < len; i++) ((float*)d)[i * inner[0]] = ((float*)s)[i * inner[1]];
                return;
            }
            for (var i = 0; i < len; i++) WriteDouble(dt, d + i * inner[0] * ds, ReadDouble(st, s + i * inner[1] * ss));
        });
    }

    public void CopyToHost(Tensor src, IntPtr host) =>
        Buffer.MemoryCopy((void*)src.DataPointer, (void*)host, src.Numel * src.DType.ElementSize(), src.Numel * src.DType.ElementSize());

    public void CopyFromHost(IntPtr host, Tensor dst) =>
        Buffer.MemoryCopy((void*)host, (void*)dst.DataPointer, dst.Numel * dst.DType.ElementSize(), dst.Numel * dst.DType.ElementSize());

    public void Unary(UnaryOp op, Tensor x, Tensor y, double alpha, double beta)
    {
        if (x.DType != DType.Float32) throw Unsupported(op.ToString(), x.DType);
        var px = x.Data<float>();
        var py = y.Data<float>();
        var (a, b) = ((float)alpha, (float)beta);
        CpuLoops.ForEachRow(y.Shape, [y._strides, x._strides], [0, 0], (off, inner, len) =>
        {
            var dst = new Span<float>(py + off[0], len);
            ReadOnlySpan<float> src = inner[1] == 1 || len == 1 ? new ReadOnlySpan<float>(px + off[1], len) : Gather(px + off[1], inner[1], dst);
            switch (op)
            {
                case UnaryOp.Neg: TensorPrimitives.Negate(src, dst); break;
                case UnaryOp.Exp: TensorPrimitives.Exp(src, dst); break;
                case UnaryOp.Log: TensorPrimitives.Log(src, dst); break;
                case UnaryOp.Sqrt: TensorPrimitives.Sqrt(src, dst); break;
                case UnaryOp.Abs: TensorPrimitives.Abs(src, dst); break;
                case UnaryOp.Relu: TensorPrimitives.Max(src, 0f, dst); break;
                case UnaryOp.Sigmoid: TensorPrimitives.Sigmoid(src, dst); break;
                case UnaryOp.Tanh: TensorPrimitives.Tanh(src, dst); break;
                case UnaryOp.PowScalar: TensorPrimitives.Pow(src, a, dst); break;
                case UnaryOp.Clamp: TensorPrimitives.Min(src, b, dst); TensorPrimitives.Max(dst, a, dst); break;
                case UnaryOp.Square: TensorPrimitives.Multiply(src, src, dst); break;
                case UnaryOp.Reciprocal: TensorPrimitives.Reciprocal(src, dst); break;
                case UnaryOp.Sign:
                    for (var i = 0; i < len; i++) dst[i] = src[i] > 0 ? 1f : src[i] < 0 ? -1f : src[i]; // ±0 and NaN kept
                    break;
                case UnaryOp.Softplus:
                    for (var i = 0; i < len; i++)
                    {
                        var v = src[i];
                        dst[i] = MathF.Max(v, 0f) + MathF.Log(1f + MathF.Exp(-MathF.Abs(v)));
                    }
                    break;
                default: throw new ArgumentOutOfRangeException(nameof(op), op, null);
            }
        });
    }

    public void Binary(BinaryOp op, Tensor a, Tensor b, Tensor y)
    {
        if (a.DType != b.DType) throw new ArgumentException($"{op}: operand dtypes differ ({a.DType.Name()} vs {b.DType.Name()}).");
        if (a.DType == DType.Float32 && y.DType == DType.Float32) BinaryFloat(op, a, b, y);
        else BinaryGeneric(op, a, b, y);
    }

    private static void BinaryFloat(BinaryOp op, Tensor a, Tensor b, Tensor y)
    {
        var pa = a.Data<float>();
        var pb = b.Data<float>();
        var py = y.Data<float>();
        CpuLoops.ForEachRow(y.Shape, [y._strides, a._strides, b._strides], [0, 0, 0], (off, inner, len) =>
        {
            var dst = new Span<float>(py + off[0], len);
            var sa = len == 1 ? 1 : inner[1];
            var sb = len == 1 ? 1 : inner[2];
            if (sa == 0 && sb != 0 && op is BinaryOp.Add or BinaryOp.Mul or BinaryOp.Maximum or BinaryOp.Minimum or BinaryOp.AddRelu)
            {
                // commutative: put the broadcast scalar second
                (sa, sb) = (sb, sa);
                BinaryRow(op, pb + off[2], sa, pa + off[1], sb, dst);
                return;
            }
            BinaryRow(op, pa + off[1], sa, pb + off[2], sb, dst);
        });
    }

    private static void BinaryRow(BinaryOp op, float* a, long sa, float* b, long sb, Span<float> dst)
    {
        var len = dst.Length;
        if (sa == 0)
        {
            // scalar first operand, b a run: materialize a as a broadcast row only for the non-commutative ops
            var av = *a;
            ReadOnlySpan<float> bs = sb == 1 ? new ReadOnlySpan<float>(b, len) : Gather(b, sb, dst);
            switch (op)
            {
                case BinaryOp.Sub: TensorPrimitives.Subtract(av, bs, dst); return;
                case BinaryOp.Div: TensorPrimitives.Divide(av, bs, dst); return;
                case BinaryOp.Pow: TensorPrimitives.Pow(av, bs, dst); return;
            }
            for (var i = 0; i < len; i++) dst[i] = Scalar(op, av, bs[i]);
            return;
        }
        ReadOnlySpan<float> xs = sa == 1 ? new ReadOnlySpan<float>(a, len) : Gather(a, sa, dst);
        if (sb == 0)
        {
            var bv = *b;
            switch (op)
            {
                case BinaryOp.Add: TensorPrimitives.Add(xs, bv, dst); return;
                case BinaryOp.Sub: TensorPrimitives.Subtract(xs, bv, dst); return;
                case BinaryOp.Mul: TensorPrimitives.Multiply(xs, bv, dst); return;
                case BinaryOp.Div: TensorPrimitives.Divide(xs, bv, dst); return;
                case BinaryOp.Pow: TensorPrimitives.Pow(xs, bv, dst); return;
                case BinaryOp.Maximum: TensorPrimitives.Max(xs, bv, dst); return;
                case BinaryOp.Minimum: TensorPrimitives.Min(xs, bv, dst); return;
                case BinaryOp.AddRelu:
                    TensorPrimitives.Add(xs, bv, dst);
                    TensorPrimitives.Max(dst, 0f, dst);
                    return;
            }
            for (var i = 0; i < len; i++) dst[i] = Scalar(op, xs[i], bv);
            return;
        }
        // Both are runs. If a was gathered into dst, b must not be gathered into dst too.
        float[]? rented = null;
        ReadOnlySpan<float> ys;
        if (sb == 1) ys = new ReadOnlySpan<float>(b, len);
        else
        {
            rented = System.Buffers.ArrayPool<float>.Shared.Rent(len);
            for (var i = 0; i < len; i++) rented[i] = b[i * sb];
            ys = rented.AsSpan(0, len);
        }
        switch (op)
        {
            case BinaryOp.Add: TensorPrimitives.Add(xs, ys, dst); break;
            case BinaryOp.Sub: TensorPrimitives.Subtract(xs, ys, dst); break;
            case BinaryOp.Mul: TensorPrimitives.Multiply(xs, ys, dst); break;
            case BinaryOp.Div: TensorPrimitives.Divide(xs, ys, dst); break;
            case BinaryOp.Pow: TensorPrimitives.Pow(xs, ys, dst); break;
            case BinaryOp.Maximum: TensorPrimitives.Max(xs, ys, dst); break;
            case BinaryOp.Minimum: TensorPrimitives.Min(xs, ys, dst); break;
            case BinaryOp.AddRelu:
                TensorPrimitives.Add(xs, ys, dst);
                TensorPrimitives.Max(dst, 0f, dst);
                break;
            case BinaryOp.ReluBackward or BinaryOp.SigmoidBackward or BinaryOp.TanhBackward:
                ActivationBackwardRow(op, xs, ys, dst);
                break;
            default:
                for (var i = 0; i < len; i++) dst[i] = Scalar(op, xs[i], ys[i]);
                break;
        }
        if (rented is not null) System.Buffers.ArrayPool<float>.Shared.Return(rented);
    }

    /// <summary>The gradient of an activation from the upstream gradient g and the saved output y, eight lanes at a
    /// time, each lane the float expression of Scalar (the same bits): ReLU g where y &gt; 0 else 0, sigmoid g·y·(1 − y),
    /// tanh g·(1 − y²). dst may be g's storage (a gathered run): each chunk is read before it is written.</summary>
    private static void ActivationBackwardRow(BinaryOp op, ReadOnlySpan<float> g, ReadOnlySpan<float> y, Span<float> dst)
    {
        var len = dst.Length;
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            ref var rg = ref MemoryMarshal.GetReference(g);
            ref var ry = ref MemoryMarshal.GetReference(y);
            ref var rd = ref MemoryMarshal.GetReference(dst);
            var one = Vector256.Create(1f);
            var last = len - Vector256<float>.Count;
            switch (op)
            {
                case BinaryOp.ReluBackward:
                    for (; i <= last; i += Vector256<float>.Count)
                    {
                        var vy = Vector256.LoadUnsafe(ref ry, (nuint)i);
                        Vector256.ConditionalSelect(Vector256.GreaterThan(vy, Vector256<float>.Zero), Vector256.LoadUnsafe(ref rg, (nuint)i), Vector256<float>.Zero)
                                 .StoreUnsafe(ref rd, (nuint)i);
                    }
                    break;
                case BinaryOp.SigmoidBackward:
                    for (; i <= last; i += Vector256<float>.Count)
                    {
                        var vy = Vector256.LoadUnsafe(ref ry, (nuint)i);
                        (Vector256.LoadUnsafe(ref rg, (nuint)i) * vy * (one - vy)).StoreUnsafe(ref rd, (nuint)i);
                    }
                    break;
                case BinaryOp.TanhBackward:
                    for (; i <= last; i += Vector256<float>.Count)
                    {
                        var vy = Vector256.LoadUnsafe(ref ry, (nuint)i);
                        (Vector256.LoadUnsafe(ref rg, (nuint)i) * (one - vy * vy)).StoreUnsafe(ref rd, (nuint)i);
                    }
                    break;
            }
        }
        for (; i < len; i++) dst[i] = Scalar(op, g[i], y[i]);
    }

    /// <summary>The ReLU of UnaryOp.Relu (TensorPrimitives.Max(x, 0)): NaN kept, −0 becomes +0.</summary>
    private static float Relu(float v) => v > 0 || float.IsNaN(v) ? v : 0f;

    private static float Scalar(BinaryOp op, float a, float b) => op switch
    {
        BinaryOp.Add => a + b,
        BinaryOp.Sub => a - b,
        BinaryOp.Mul => a * b,
        BinaryOp.Div => a / b,
        BinaryOp.Pow => MathF.Pow(a, b),
        BinaryOp.Maximum => float.IsNaN(a) || float.IsNaN(b) ? float.NaN : MathF.Max(a, b),
        BinaryOp.Minimum => float.IsNaN(a) || float.IsNaN(b) ? float.NaN : MathF.Min(a, b),
        BinaryOp.ReluBackward => b > 0 ? a : 0f,
        BinaryOp.SigmoidBackward => a * b * (1f - b),
        BinaryOp.TanhBackward => a * (1f - b * b),
        BinaryOp.AddRelu => Relu(a + b),
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, "not a float-valued op"),
    };

    /// <summary>Integer arithmetic and every comparison (uint8 result), element by element.</summary>
    private static void BinaryGeneric(BinaryOp op, Tensor a, Tensor b, Tensor y)
    {
        var (ta, ty) = (a.DType, y.DType);
        var (ea, ey) = (ta.ElementSize(), ty.ElementSize());
        var pa = (byte*)a.DataPointer;
        var pb = (byte*)b.DataPointer;
        var py = (byte*)y.DataPointer;
        var integral = ta != DType.Float32;
        CpuLoops.ForEachRow(y.Shape, [y._strides, a._strides, b._strides], [0, 0, 0], (off, inner, len) =>
        {
            for (var i = 0; i < len; i++)
            {
                var av = ReadDouble(ta, pa + (off[1] + i * inner[1]) * ea);
                var bv = ReadDouble(ta, pb + (off[2] + i * inner[2]) * ea);
                double r = op switch
                {
                    BinaryOp.Eq => av == bv ? 1 : 0,
                    BinaryOp.Ne => av != bv ? 1 : 0,
                    BinaryOp.Lt => av < bv ? 1 : 0,
                    BinaryOp.Le => av <= bv ? 1 : 0,
                    BinaryOp.Gt => av > bv ? 1 : 0,
                    BinaryOp.Ge => av >= bv ? 1 : 0,
                    BinaryOp.Add => av + bv,
                    BinaryOp.Sub => av - bv,
                    BinaryOp.Mul => av * bv,
                    BinaryOp.Div when integral => bv == 0 ? throw new DivideByZeroException("div: integer division by zero") : Math.Floor(av / bv),
                    BinaryOp.Div => av / bv,
                    BinaryOp.Maximum => Math.Max(av, bv),
                    BinaryOp.Minimum => Math.Min(av, bv),
                    BinaryOp.Pow => Math.Pow(av, bv),
                    _ => throw new NotSupportedException($"{op} is not defined for {ta.Name()} tensors."),
                };
                WriteDouble(ty, py + (off[0] + i * inner[0]) * ey, r);
            }
        });
    }

    public void Where(Tensor cond, Tensor a, Tensor b, Tensor y)
    {
        var e = y.DType.ElementSize();
        var pc = (byte*)cond.DataPointer;
        var pa = (byte*)a.DataPointer;
        var pb = (byte*)b.DataPointer;
        var py = (byte*)y.DataPointer;
        CpuLoops.ForEachRow(y.Shape, [y._strides, cond._strides, a._strides, b._strides], [0, 0, 0, 0], (off, inner, len) =>
        {
            for (var i = 0; i < len; i++)
            {
                var src = pc[off[1] + i * inner[1]] != 0 ? pa + (off[2] + i * inner[2]) * e : pb + (off[3] + i * inner[3]) * e;
                Buffer.MemoryCopy(src, py + (off[0] + i * inner[0]) * e, e, e);
            }
        });
    }

    public void Reduce(ReduceOp op, Tensor x, long outer, long n, long inner, Tensor values, Tensor? indices)
    {
        if (x.DType != DType.Float32) throw Unsupported(op.ToString().ToLowerInvariant(), x.DType);
        var px = x.Data<float>();
        var pv = values.Data<float>();
        var pi = indices is null ? null : indices.Data<long>();
        if (inner == 1)
        {
            CpuLoops.For(outer, n, o =>
            {
                var row = new ReadOnlySpan<float>(px + o * n, checked((int)n));
                switch (op)
                {
                    case ReduceOp.Sum: pv[o] = SumPairwise(row); break;
                    default:
                        var (v, at) = Extreme(op, px + o * n, 1, n);
                        pv[o] = v;
                        if (pi != null) pi[o] = at;
                        break;
                }
            });
            return;
        }
        // (outer, n, inner): accumulate rows of length inner; sums in double per output to bound rounding error
        CpuLoops.For(outer, n * inner, o =>
        {
            var dst = new Span<float>(pv + o * inner, checked((int)inner));
            if (op == ReduceOp.Sum)
            {
                var acc = System.Buffers.ArrayPool<double>.Shared.Rent((int)inner);
                Array.Clear(acc, 0, (int)inner);
                for (long k = 0; k < n; k++)
                {
                    var src = px + (o * n + k) * inner;
                    for (var j = 0; j < inner; j++) acc[j] += src[j];
                }
                for (var j = 0; j < inner; j++) dst[j] = (float)acc[j];
                System.Buffers.ArrayPool<double>.Shared.Return(acc);
                return;
            }
            for (long j = 0; j < inner; j++)
            {
                var (v, at) = Extreme(op, px + o * n * inner + j, inner, n);
                dst[(int)j] = v;
                if (pi != null) pi[o * inner + j] = at;
            }
        });
    }

    /// <summary>Sum in double of float runs: exact enough that reductions match the double reference to ~1e-7 relative.</summary>
    private static float SumPairwise(ReadOnlySpan<float> row)
    {
        double total = 0;
        const int block = 4096;
        for (var i = 0; i < row.Length; i += block)
            total += TensorPrimitives.Sum(row.Slice(i, Math.Min(block, row.Length - i)));
        return (float)total;
    }

    /// <summary>Max or min of n elements at stride s; NaN wins (as in PyTorch); first index on ties.</summary>
    private static (float, long) Extreme(ReduceOp op, float* p, long s, long n)
    {
        var best = p[0];
        long at = 0;
        if (float.IsNaN(best)) return (best, 0);
        for (long k = 1; k < n; k++)
        {
            var v = p[k * s];
            if (float.IsNaN(v)) return (v, k);
            if (op == ReduceOp.Max ? v > best : v < best)
            {
                best = v;
                at = k;
            }
        }
        return (best, at);
    }

    private static ReadOnlySpan<float> Gather(float* p, long stride, Span<float> buffer)
    {
        for (var i = 0; i < buffer.Length; i++) buffer[i] = p[i * stride];
        return buffer;
    }

    internal static double ReadDouble(DType t, byte* p) => t switch
    {
        DType.Float32 => (double)*(float*)p, // typed double: the arms would otherwise unify to float and round ints above 2^24
        DType.Int32 => *(int*)p,
        DType.Int64 => *(long*)p,
        DType.UInt8 => *p,
        _ => throw Unsupported("read", t),
    };

    internal static void WriteDouble(DType t, byte* p, double v)
    {
        switch (t)
        {
            case DType.Float32: *(float*)p = (float)v; break;
            case DType.Int32: *(int*)p = (int)v; break;
            case DType.Int64: *(long*)p = (long)v; break;
            case DType.UInt8: *p = (byte)v; break;
            default: throw Unsupported("write", t);
        }
    }

    internal static NotSupportedException Unsupported(string op, DType t) =>
        new($"{op}: dtype {t.Name()} is not supported on the CPU backend; convert with To(DType.Float32).");
}
