// CPU sigmoid-family losses: the element-weighted BCE shared by plain BCE, EQL, EQLv2 and Federated loss,
// FCBL with its margins and hard-negative mask, and FCBL's confusion update. BCE is softplus(t) − y·t with
// softplus(t) = max(t, 0) + log(1 + e^−|t|), which never overflows (section 0.1).
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Engine.LongTail;

public sealed unsafe partial class CpuLongTailBackend
{
    public void WeightedSigmoidBce(Tensor logits, Tensor labels, int numForeground, Tensor posWeight, Tensor negWeightForeground,
                                   Tensor negWeightBackground, double scale, Tensor rowLoss, Tensor gradLogits,
                                   Tensor? gradMagnitudePos, Tensor? gradMagnitudeNeg)
    {
        var (n, k) = (logits.Size(0), logits.Size(1));
        var z = logits.Data<float>();
        var y = labels.Data<long>();
        CheckLabels("WeightedSigmoidBce", y, n, -1);   // a label ≥ K has no positive column
        var pw = posWeight.Data<float>();
        var nwf = negWeightForeground.Data<float>();
        var nwb = negWeightBackground.Data<float>();
        var loss = rowLoss.Data<float>();
        var grad = gradLogits.Data<float>();
        var s = (float)scale;
        var stats = gradMagnitudePos is not null && gradMagnitudeNeg is not null;
        var chunks = ChunkCount(n);
        var partialPos = stats ? new float[chunks][] : null;
        var partialNeg = stats ? new float[chunks][] : null;

        ForEachChunk(n, 12L * k, (c, from, to) =>
        {
            float[]? accNeg = null;
            float[]? accPos = null;
            if (stats)
            {
                accPos = partialPos![c] = new float[k];
                accNeg = partialNeg![c] = new float[k];
            }
            for (var i = from; i < to; i++)
            {
                var t = new ReadOnlySpan<float>(z + (long)i * k, k);
                var g = new Span<float>(grad + (long)i * k, k);
                var label = y[i];
                var negW = new ReadOnlySpan<float>(label < numForeground ? nwf : nwb, k);
                var rl = BceRow(t, negW, s, g, accNeg);
                if (label < k)
                {
                    // the positive column: weight pw instead of the negative weight, target 1
                    var j = (int)label;
                    var (sp, sig) = ScalarSoftplusSigmoid(t[j]);
                    rl += pw[j] * (sp - t[j]) - negW[j] * sp;
                    var positive = pw[j] * (sig - 1f);
                    g[j] = s * positive;
                    if (stats)
                    {
                        accNeg![j] -= negW[j] * sig;
                        accPos![j] -= positive;
                    }
                }
                loss[i] = rl;
            }
        });

        if (!stats) return;
        var outPos = gradMagnitudePos!.Data<float>();
        var outNeg = gradMagnitudeNeg!.Data<float>();
        for (var j = 0; j < k; j++)
        {
            double a = 0, b = 0;
            for (var c = 0; c < chunks; c++)
            {
                a += partialPos![c][j];
                b += partialNeg![c][j];
            }
            outPos[j] = (float)a;
            outNeg[j] = (float)b;
        }
    }

    /// <summary>One row of weighted BCE against an all-zero target, in one vectorized pass: returns Σ_j w_j·softplus(t_j)
    /// and writes g_j = scale·w_j·σ(t_j); when <paramref name="accumulate"/> is given, w_j·σ(t_j) is added to it.
    /// Both functions come from one e = exp(−|t|): softplus = max(t, 0) + log(1 + e), σ = 1/(1 + e) for t ≥ 0, e/(1 + e) else.</summary>
    private static float BceRow(ReadOnlySpan<float> t, ReadOnlySpan<float> w, float scale, Span<float> g, Span<float> accumulate)
    {
        var n = t.Length;
        var j = 0;
        var sum = 0f;
        if (Vector256.IsHardwareAccelerated && n >= Vector256<float>.Count)
        {
            ref var rt = ref MemoryMarshal.GetReference(t);
            ref var rw = ref MemoryMarshal.GetReference(w);
            ref var rg = ref MemoryMarshal.GetReference(g);
            var acc = Vector256<float>.Zero;
            var sv = Vector256.Create(scale);
            var one = Vector256<float>.One;
            var hasAcc = !accumulate.IsEmpty;
            for (; j <= n - Vector256<float>.Count; j += Vector256<float>.Count)
            {
                var x = Vector256.LoadUnsafe(ref rt, (nuint)j);
                var wv = Vector256.LoadUnsafe(ref rw, (nuint)j);
                var e = Vector256.Exp(-Vector256.Abs(x));
                var onePlus = one + e;
                var sp = Vector256.Max(x, Vector256<float>.Zero) + Vector256.Log(onePlus);
                var r = one / onePlus;
                var sig = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(x, Vector256<float>.Zero), r, e * r);
                acc += wv * sp;
                var ws = wv * sig;
                if (hasAcc)
                {
                    ref var ra = ref MemoryMarshal.GetReference(accumulate);
                    (Vector256.LoadUnsafe(ref ra, (nuint)j) + ws).StoreUnsafe(ref ra, (nuint)j);
                }
                (ws * sv).StoreUnsafe(ref rg, (nuint)j);
            }
            sum = Vector256.Sum(acc);
        }
        for (; j < n; j++)
        {
            var (sp, sig) = ScalarSoftplusSigmoid(t[j]);
            sum += w[j] * sp;
            var ws = w[j] * sig;
            if (!accumulate.IsEmpty) accumulate[j] += ws;
            g[j] = scale * ws;
        }
        return sum;
    }

    private static (float Softplus, float Sigmoid) ScalarSoftplusSigmoid(float t)
    {
        var e = MathF.Exp(-MathF.Abs(t));
        var onePlus = 1f + e;
        return (MathF.Max(t, 0f) + MathF.Log(onePlus), t >= 0 ? 1f / onePlus : e / onePlus);
    }

    public void Fcbl(Tensor logits, Tensor labels, Tensor confusion, Tensor counts, double alpha, double probThreshold, bool reweight,
                     double scale, Tensor rowLoss, Tensor gradLogits)
    {
        var (n, k) = (logits.Size(0), logits.Size(1));
        var c = k - 1;
        var z = logits.Data<float>();
        var y = labels.Data<long>();
        CheckLabels("Fcbl", y, n, c);
        var loss = rowLoss.Data<float>();
        var grad = gradLogits.Data<float>();
        var s = (float)scale;
        var tau = (float)probThreshold;

        // one margin row per distinct positive label of the batch: δ_j = α·(ln K[y][j] − ln K[j][y]), both floored at 1e-3
        var margins = new Dictionary<long, float[]>();
        if (alpha != 0)
        {
            var a = confusion.Data<float>();
            var distinct = new List<int>();
            for (var i = 0; i < n; i++)
                if (y[i] < c && !margins.ContainsKey(y[i]))
                {
                    margins[y[i]] = new float[k];
                    distinct.Add((int)y[i]);
                }
            var clamped = new float[c];
            TensorPrimitives.Max(new ReadOnlySpan<float>(counts.Data<float>(), c), 1f, clamped);
            ForEachChunk(distinct.Count, 8L * c, (_, from, to) =>
            {
                var column = Rent(c);
                var col = column.AsSpan(0, c);
                for (var d = from; d < to; d++)
                {
                    var yy = distinct[d];
                    var row = margins[yy].AsSpan(0, c);
                    // ln max(K[y][j], 1e-3) along the contiguous row y of A
                    TensorPrimitives.Divide(new ReadOnlySpan<float>(a + (long)yy * c, c), clamped[yy], row);
                    TensorPrimitives.Max(row, 1e-3f, row);
                    TensorPrimitives.Log(row, row);
                    // ln max(K[j][y], 1e-3) down column y of A
                    for (var j = 0; j < c; j++) col[j] = a[(long)j * c + yy];
                    TensorPrimitives.Divide(col, clamped, col);
                    TensorPrimitives.Max(col, 1e-3f, col);
                    TensorPrimitives.Log(col, col);
                    TensorPrimitives.Subtract(row, col, row);
                    TensorPrimitives.Multiply(row, (float)alpha, row);
                    row[yy] = 0;
                }
                Return(column);
            });
        }

        ForEachChunk(n, 16L * k, (_, from, to) =>
        {
            var shifted = Rent(k);
            var mask = Rent(k);
            var tRow = shifted.AsSpan(0, k);
            var maskRow = mask.AsSpan(0, k);
            for (var i = from; i < to; i++)
            {
                var raw = new ReadOnlySpan<float>(z + (long)i * k, k);
                var g = new Span<float>(grad + (long)i * k, k);
                var label = (int)y[i];
                var positive = label < c;
                if (positive && margins.TryGetValue(label, out var delta)) TensorPrimitives.Add(raw, delta, tRow);
                else raw.CopyTo(tRow);

                maskRow.Fill(1f);
                if (positive && reweight)
                {
                    // π_C = σ(z_C), π_j = σ(z_j)·(1 − π_C); keep j when π_j ≥ π_y or π_j ≥ τ (so ω_y = 1), and always C
                    var fg = maskRow[..c];
                    TensorPrimitives.Sigmoid(raw[..c], fg);
                    var notBg = 1f - ScalarSoftplusSigmoid(raw[c]).Sigmoid;
                    TensorPrimitives.Multiply(fg, notBg, fg);
                    var bar = MathF.Min(fg[label], tau);
                    KeepAtLeast(fg, bar);
                }

                var rl = BceRow(tRow, maskRow, s, g, default);
                // the target column (the background column for a background row): ω = 1 there, BCE(t, 1) = softplus(t) − t
                rl -= tRow[label];
                g[label] = s * (ScalarSoftplusSigmoid(tRow[label]).Sigmoid - 1f);
                loss[i] = rl;
            }
            Return(shifted);
            Return(mask);
        });
    }

    /// <summary>v_j ← 1 where v_j ≥ bar, else 0, in place.</summary>
    private static void KeepAtLeast(Span<float> v, float bar)
    {
        var j = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            ref var r = ref MemoryMarshal.GetReference(v);
            var b = Vector256.Create(bar);
            for (; j <= v.Length - Vector256<float>.Count; j += Vector256<float>.Count)
            {
                var x = Vector256.LoadUnsafe(ref r, (nuint)j);
                Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(x, b), Vector256<float>.One, Vector256<float>.Zero).StoreUnsafe(ref r, (nuint)j);
            }
        }
        for (; j < v.Length; j++) v[j] = v[j] >= bar ? 1f : 0f;
    }

    public void AccumulateConfusion(Tensor logits, Tensor labels, Tensor confusion, Tensor counts)
    {
        var (n, k) = (logits.Size(0), logits.Size(1));
        var c = k - 1;
        var z = logits.Data<float>();
        var y = labels.Data<long>();
        CheckLabels("AccumulateConfusion", y, n, -1);   // background rows (≥ C) are skipped
        var a = confusion.Data<float>();
        var cnt = counts.Data<float>();
        var buffer = Rent(c);
        var s = buffer.AsSpan(0, c);
        // row order, one row at a time: rows of one class add into the same confusion row
        for (var i = 0; i < n; i++)
        {
            var label = y[i];
            if (label >= c) continue;
            Softmax(new ReadOnlySpan<float>(z + (long)i * k, c), s);
            var row = new Span<float>(a + label * c, c);
            TensorPrimitives.Add(row, s, row);
            cnt[label] += 1f;
        }
        Return(buffer);
    }
}
