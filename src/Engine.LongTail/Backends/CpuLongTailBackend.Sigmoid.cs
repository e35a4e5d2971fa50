// CPU sigmoid-family losses: the element-weighted BCE shared by plain BCE, EQL, EQLv2 and Federated loss,
// FCBL with its margins and hard-negative mask, and FCBL's confusion update. BCE is softplus(t) − y·t with
// softplus(t) = max(t, 0) + log(1 + e^−|t|), which never overflows (section 0.1).
using System.Numerics.Tensors;

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
            var sp = Rent(k);
            var sig = Rent(k);
            var spRow = sp.AsSpan(0, k);
            var sigRow = sig.AsSpan(0, k);
            float[]? accPos = null, accNeg = null;
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
                Softplus(t, spRow, sigRow);
                TensorPrimitives.Sigmoid(t, sigRow);
                var rl = TensorPrimitives.Dot(negW, spRow);
                TensorPrimitives.Multiply(sigRow, negW, g);
                if (stats) TensorPrimitives.Add(accNeg!, g, accNeg!);
                TensorPrimitives.Multiply(g, s, g);
                if (label < k)
                {
                    // the positive column: weight pw instead of the negative weight, target 1
                    var j = (int)label;
                    rl += pw[j] * (spRow[j] - t[j]) - negW[j] * spRow[j];
                    var positive = pw[j] * (sigRow[j] - 1f);
                    g[j] = s * positive;
                    if (stats)
                    {
                        accNeg![j] -= negW[j] * sigRow[j];
                        accPos![j] -= positive;
                    }
                }
                loss[i] = rl;
            }
            Return(sp);
            Return(sig);
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

    /// <summary>softplus(t) into <paramref name="sp"/> (scratch: <paramref name="tmp"/>), as max(t, 0) + log(1 + e^−|t|).</summary>
    private static void Softplus(ReadOnlySpan<float> t, Span<float> sp, Span<float> tmp)
    {
        TensorPrimitives.Abs(t, tmp);
        TensorPrimitives.Negate(tmp, tmp);
        TensorPrimitives.Exp(tmp, tmp);
        TensorPrimitives.LogP1(tmp, tmp);
        TensorPrimitives.Max(t, 0f, sp);
        TensorPrimitives.Add(sp, tmp, sp);
    }

    public void Fcbl(Tensor logits, Tensor labels, Tensor confusion, Tensor counts, double alpha, double probThreshold, bool reweight,
                     double scale, Tensor rowLoss, Tensor gradLogits)
    {
        var (n, k) = (logits.Size(0), logits.Size(1));
        var c = k - 1;
        var z = logits.Data<float>();
        var y = labels.Data<long>();
        var loss = rowLoss.Data<float>();
        var grad = gradLogits.Data<float>();
        var s = (float)scale;
        var tau = (float)probThreshold;

        // one margin row per distinct positive label of the batch: δ_j = α·(ln K[y][j] − ln K[j][y]), both floored at 1e-3
        var margins = new Dictionary<long, float[]>();
        if (alpha != 0)
        {
            var a = confusion.Data<float>();
            var cnt = counts.Data<float>();
            for (var i = 0; i < n; i++)
            {
                var label = y[i];
                if (label >= c || margins.ContainsKey(label)) continue;
                var row = new float[k];
                var yy = (int)label;
                var ny = Math.Max((double)cnt[yy], 1);
                for (var j = 0; j < c; j++)
                {
                    if (j == yy) continue;
                    var kyj = Math.Max(a[(long)yy * c + j] / ny, 1e-3);
                    var kjy = Math.Max(a[(long)j * c + yy] / Math.Max((double)cnt[j], 1), 1e-3);
                    row[j] = (float)(alpha * (Math.Log(kyj) - Math.Log(kjy)));
                }
                margins[label] = row;
            }
        }

        ForEachChunk(n, 16L * k, (_, from, to) =>
        {
            var shifted = Rent(k);
            var sp = Rent(k);
            var sig = Rent(k);
            var mask = Rent(k);
            var tRow = shifted.AsSpan(0, k);
            var spRow = sp.AsSpan(0, k);
            var sigRow = sig.AsSpan(0, k);
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
                    TensorPrimitives.Sigmoid(raw, sigRow);
                    var piBg = sigRow[c];
                    var fg = sigRow[..c];
                    TensorPrimitives.Multiply(fg, 1f - piBg, fg);
                    var bar = MathF.Min(fg[label], tau);
                    for (var j = 0; j < c; j++) maskRow[j] = fg[j] >= bar ? 1f : 0f;
                }

                Softplus(tRow, spRow, sigRow);
                TensorPrimitives.Sigmoid(tRow, sigRow);
                var rl = TensorPrimitives.Dot(maskRow, spRow);
                TensorPrimitives.Multiply(sigRow, maskRow, g);
                TensorPrimitives.Multiply(g, s, g);
                // the target column (the background column for a background row): ω = 1 there
                rl -= tRow[label];
                g[label] = s * (sigRow[label] - 1f);
                loss[i] = rl;
            }
            Return(shifted);
            Return(sp);
            Return(sig);
            Return(mask);
        });
    }

    public void AccumulateConfusion(Tensor logits, Tensor labels, Tensor confusion, Tensor counts)
    {
        var (n, k) = (logits.Size(0), logits.Size(1));
        var c = k - 1;
        var z = logits.Data<float>();
        var y = labels.Data<long>();
        var a = confusion.Data<float>();
        var cnt = counts.Data<float>();
        var buffer = Rent(c);
        var s = buffer.AsSpan(0, c);
        // row order, one row at a time: rows of one class add into the same confusion row
        for (var i = 0; i < n; i++)
        {
            var label = y[i];
            if (label >= c) continue;
            TensorPrimitives.SoftMax(new ReadOnlySpan<float>(z + (long)i * k, c), s);
            var row = new Span<float>(a + label * c, c);
            TensorPrimitives.Add(row, s, row);
            cnt[label] += 1f;
        }
        Return(buffer);
    }
}
