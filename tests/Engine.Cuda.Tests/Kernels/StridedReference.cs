// Test references the engine's Engine.Reference.ElementwiseReference does not cover: a naive
// strided/broadcast evaluator that walks the output's multi-index and computes every input offset from
// shape and strides directly, and both gradients of pow, maximum and minimum with the conventions of
// kernels/elementwise.cu at special points, written from the derivatives in double.
using Engine.Cuda.Kernels;

namespace Engine.Cuda.Tests.Kernels;

/// <param name="Strides">already aligned to the output shape (stride 0 on broadcast dimensions)</param>
internal sealed record StridedInput(float[] Data, long[] Strides, long Offset = 0)
{
    public static StridedInput Dense(float[] data, long[] shape) => new(data, ElementwiseLayout.ContiguousStrides(shape));
}

internal static class StridedReference
{
    /// <summary>Evaluates <paramref name="f"/> at every element of the dense row-major output of
    /// <paramref name="shape"/>, reading input k at offset_k + Σ index_d · strides_k[d].</summary>
    public static double[] Map(long[] shape, IReadOnlyList<StridedInput> inputs, Func<double[], double> f)
    {
        var count = shape.Aggregate(1L, (p, s) => p * s);
        var result = new double[count];
        var index = new long[shape.Length];
        var arguments = new double[inputs.Count];
        for (long i = 0; i < count; i++)
        {
            for (var k = 0; k < inputs.Count; k++)
            {
                var offset = inputs[k].Offset;
                for (var d = 0; d < shape.Length; d++) offset += index[d] * inputs[k].Strides[d];
                arguments[k] = inputs[k].Data[offset];
            }
            result[i] = f(arguments);
            for (var d = shape.Length - 1; d >= 0; d--)
            {
                if (++index[d] < shape[d]) break;
                index[d] = 0;
            }
        }
        return result;
    }
}

internal static class BinaryBackwardReference
{
    /// <summary>(∂L/∂a, ∂L/∂b) at one output element of a ∘ b, given dy = ∂L/∂out.</summary>
    public static (double Da, double Db) Gradients(BinaryOp op, double dy, double a, double b)
    {
        switch (op)
        {
            case BinaryOp.Pow:
                // ∂(a^b)/∂a = b·a^(b−1), taken as 0 where b = 0; ∂(a^b)/∂b = a^b·ln a, taken as 0 where a = 0, b ≥ 0.
                var da = b == 0 ? 0.0 : dy * b * Math.Pow(a, b - 1);
                var db = a == 0 && b >= 0 ? 0.0 : dy * Math.Pow(a, b) * Math.Log(a);
                return (da, db);
            case BinaryOp.Maximum:
            case BinaryOp.Minimum:
                // The selected operand's derivative is 1, the other's 0; at a tie each one-sided choice is
                // equally valid and the mean (1/2, 1/2) is taken. A NaN operand is the one selected.
                if (a == b) return (dy / 2, dy / 2);
                var aSelected = double.IsNaN(a) || (op == BinaryOp.Maximum ? a > b : a < b);
                return aSelected ? (dy, 0.0) : (0.0, dy);
            default:
                throw new ArgumentOutOfRangeException(nameof(op), op, "no two-gradient backward kernel");
        }
    }
}
