// Which of the engine configurations cuDNN's heuristics offer for a convolution may run, and which of the timed
// ones wins. Kept apart from the descriptors so the rules are tested without a GPU.
//   - DOWN_CONVERT_INPUTS (float inputs converted to a narrower type) never runs.
//   - TENSOR_CORE (TF32 on float inputs) and REDUCED_PRECISION_REDUCTION run only where TF32 is allowed, so an
//     FP32 run stays IEEE float, as the legacy engine's FMA math does.
//   - RUNTIME_COMPILATION engines compile their kernel when the plan is finalized, which takes seconds per plan
//     and per shape; the precompiled engines cover plain convolutions, so these are passed over.
// The fastest measured configuration wins; a tie goes to the one the heuristics ranked first.
using Engine.Cuda.Interop;

namespace Engine.Cuda.Backend;

internal static class ConvolutionCandidates
{
    /// <summary>Null when an engine with these notes may run; otherwise why not.</summary>
    public static string? Rejects(ReadOnlySpan<int> numericalNotes, ReadOnlySpan<int> behaviorNotes, bool allowTf32)
    {
        foreach (var note in numericalNotes)
        {
            switch ((cudnnBackendNumericalNote_t)note)
            {
                case cudnnBackendNumericalNote_t.CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS:
                    return "converts its float inputs to a narrower type";
                case cudnnBackendNumericalNote_t.CUDNN_NUMERICAL_NOTE_TENSOR_CORE when !allowTf32:
                    return "uses TF32 tensor cores, and TF32 is not allowed";
                case cudnnBackendNumericalNote_t.CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION when !allowTf32:
                    return "reduces in reduced precision, and TF32 is not allowed";
            }
        }
        foreach (var note in behaviorNotes)
            if ((cudnnBackendBehaviorNote_t)note == cudnnBackendBehaviorNote_t.CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION)
                return "compiles its kernel at run time";
        return null;
    }

    /// <summary>The position of the smallest time in <paramref name="milliseconds"/> (candidates in heuristic order; NaN
    /// marks one that failed to run), the first on ties; -1 when none ran.</summary>
    public static int Fastest(ReadOnlySpan<float> milliseconds)
    {
        var best = -1;
        for (var i = 0; i < milliseconds.Length; i++)
            if (!float.IsNaN(milliseconds[i]) && (best < 0 || milliseconds[i] < milliseconds[best])) best = i;
        return best;
    }

    /// <summary>The byte alignment every one of the addresses has, up to 16 (what the plans are built for).</summary>
    public static int Alignment(ulong a, ulong b, ulong c)
    {
        var any = a | b | c | 16;
        return (int)(any & (~any + 1));
    }
}
