// Joining tensors along a dimension (cat, stack) and cutting one into pieces (split, chunk), with
// gradients. Cat copies each input into its slab of the output, and its backward hands every input the
// matching slab of the gradient. The pieces of split/chunk are views; each piece's backward pads its
// gradient into the input's shape, so a piece that receives no gradient contributes zeros.
namespace Engine;

public sealed partial class Tensor
{
    /// <summary>Concatenates tensors along <paramref name="dim"/>. All must share dtype, device, rank and every size
    /// except the one at dim; tensors with size 0 at dim are allowed. Differentiable in every input.</summary>
    public static Tensor Cat(IReadOnlyList<Tensor> tensors, int dim)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        if (tensors.Count == 0) throw new ArgumentException("cat: needs at least one tensor, got an empty list.");
        var first = tensors[0];
        if (first.Rank == 0)
            throw new ArgumentException("cat: tensor 0 is zero-dimensional and has no dim to concatenate along; use Stack, or Reshape(1) each tensor.");
        var d = ShapeUtil.NormalizeDim(dim, first.Rank, "cat");
        var sizes = new int[tensors.Count];
        long total = 0;
        for (var i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i];
            if (t.DType != first.DType)
                throw new ArgumentException($"cat: tensor {i} has dtype {t.DType.Name()} but tensor 0 has {first.DType.Name()}; convert with To(dtype).");
            if (t.Device != first.Device)
                throw new ArgumentException($"cat: tensor {i} is on {t.Device} but tensor 0 is on {first.Device}; move it with To(device).");
            var sameOtherwise = t.Rank == first.Rank;
            for (var k = 0; sameOtherwise && k < t.Rank; k++)
                if (k != d && t._shape[k] != first._shape[k]) sameOtherwise = false;
            if (!sameOtherwise)
                throw new ArgumentException(
                    $"cat: tensor {i} has shape {ShapeUtil.Format(t.Shape)} but tensor 0 has {ShapeUtil.Format(first.Shape)}; " +
                    $"all sizes must match except in dim {d} (the concatenation dim).");
            sizes[i] = t._shape[d];
            total += sizes[i];
        }
        var shape = first.ShapeArray();
        shape[d] = checked((int)total);
        var y = Empty(shape, first.DType, first.Device);
        var offsets = new long[tensors.Count];
        long at = 0;
        for (var i = 0; i < tensors.Count; i++)
        {
            offsets[i] = at;
            if (sizes[i] > 0)
                using (var slab = y.SliceRaw(d, at, 1, sizes[i]))
                    y.Backend.Copy(tensors[i], slab);
            at += sizes[i];
        }
        var inputs = tensors.ToArray();
        if (Autograd.Tape.IsNeeded(inputs))
        {
            var needs = inputs.Select(t => t.RequiresGrad).ToArray();
            Autograd.Tape.Record(y, "cat", inputs, _ => g =>
            {
                var grads = new Tensor?[needs.Length];
                for (var i = 0; i < needs.Length; i++)
                    if (needs[i]) grads[i] = g.SliceRaw(d, offsets[i], 1, sizes[i]);
                return grads;
            });
        }
        return y;
    }

    /// <summary>Stacks equally shaped tensors along a new dim at <paramref name="dim"/> (in [-rank-1, rank]).
    /// Differentiable in every input.</summary>
    public static Tensor Stack(IReadOnlyList<Tensor> tensors, int dim)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        if (tensors.Count == 0) throw new ArgumentException("stack: needs at least one tensor, got an empty list.");
        var first = tensors[0];
        for (var i = 1; i < tensors.Count; i++)
            if (!tensors[i].Shape.SequenceEqual(first.Shape))
                throw new ArgumentException(
                    $"stack: tensor {i} has shape {ShapeUtil.Format(tensors[i].Shape)} but tensor 0 has {ShapeUtil.Format(first.Shape)}; stack needs equal shapes.");
        var d = ShapeUtil.NormalizeDim(dim, first.Rank + 1, "stack");
        var expanded = new Tensor[tensors.Count];
        try
        {
            for (var i = 0; i < tensors.Count; i++) expanded[i] = tensors[i].Unsqueeze(d);
            return Cat(expanded, d);
        }
        finally
        {
            foreach (var e in expanded) e?.Dispose();
        }
    }

    /// <summary>Pieces of <paramref name="size"/> along dim (the last may be smaller), as views. A dim of size 0
    /// gives one empty piece. Differentiable: each piece's gradient is padded into this tensor's shape.</summary>
    public Tensor[] Split(int size, int dim)
    {
        var d = ShapeUtil.NormalizeDim(dim, Rank, "split");
        if (size <= 0) throw new ArgumentException($"split: piece size must be positive, got {size} (shape {ShapeUtil.Format(_shape)}, dim {dim}).");
        var n = _shape[d];
        if (n == 0) return [Narrow(d, 0, 0)];
        var pieces = new Tensor[(n + size - 1) / size];
        for (var p = 0; p < pieces.Length; p++) pieces[p] = Narrow(d, (long)p * size, Math.Min(size, n - p * size));
        return pieces;
    }

    /// <summary>Pieces with the given sizes along dim (non-negative, summing to the dim's size), as views.
    /// Differentiable like <see cref="Split(int, int)"/>.</summary>
    public Tensor[] Split(int[] sizes, int dim)
    {
        ArgumentNullException.ThrowIfNull(sizes);
        var d = ShapeUtil.NormalizeDim(dim, Rank, "split");
        long sum = 0;
        foreach (var s in sizes)
        {
            if (s < 0) throw new ArgumentException($"split: sizes [{string.Join(", ", sizes)}] contain a negative size.");
            sum += s;
        }
        if (sum != _shape[d])
            throw new ArgumentException(
                $"split: sizes [{string.Join(", ", sizes)}] sum to {sum} but dim {dim} of tensor{ShapeUtil.Format(_shape)} has size {_shape[d]}; they must add up to it.");
        var pieces = new Tensor[sizes.Length];
        long at = 0;
        for (var p = 0; p < sizes.Length; p++)
        {
            pieces[p] = Narrow(d, at, sizes[p]);
            at += sizes[p];
        }
        return pieces;
    }

    /// <summary>Up to <paramref name="chunks"/> views of ceil(size/chunks) along dim (the last may be smaller; fewer
    /// pieces when the division leaves nothing for the last ones). A dim of size 0 gives <paramref name="chunks"/>
    /// empty pieces. Differentiable like <see cref="Split(int, int)"/>.</summary>
    public Tensor[] Chunk(int chunks, int dim)
    {
        var d = ShapeUtil.NormalizeDim(dim, Rank, "chunk");
        if (chunks <= 0) throw new ArgumentException($"chunk: number of chunks must be positive, got {chunks}.");
        var n = _shape[d];
        if (n == 0) return Split(new int[chunks], d);
        return Split((n + chunks - 1) / chunks, d);
    }
}
