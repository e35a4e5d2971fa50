// The fixed parameters of CRAT's box transfusion (long-tail-methods.md 3.5 has the defaults), as one value that
// CratTransfuser hands to ILongTailBackend.CratTransfuse; a device backend maps it onto its own kernel arguments.
namespace Engine.LongTail;

/// <summary>C, D, the query mode and the constants a, T, λ_b of CRAT; the constructor rejects values the method has no
/// meaning for.</summary>
public sealed record CratParameters
{
    /// <param name="numClasses">C ≥ 1 foreground classes (label C is background).</param>
    /// <param name="embeddingDim">D ≥ 1, the width of the embeddings feeding the regressor.</param>
    /// <param name="query">the similarity's query (3.3).</param>
    /// <param name="fisherRate">Fisher EMA rate a in (0, 1].</param>
    /// <param name="temperature">softmax temperature T &gt; 0.</param>
    /// <param name="boxWeight">λ_b ≥ 0 of the extra loss.</param>
    public CratParameters(int numClasses, int embeddingDim, CratQuery query, double fisherRate, double temperature, double boxWeight)
    {
        if (numClasses < 1) throw new ArgumentException($"CratParameters: C must be ≥ 1, got {numClasses}.", nameof(numClasses));
        if (embeddingDim < 1) throw new ArgumentException($"CratParameters: embedding width D must be ≥ 1, got {embeddingDim}.", nameof(embeddingDim));
        if (!Enum.IsDefined(query)) throw new ArgumentException($"CratParameters: query {query} is not a CratQuery value.", nameof(query));
        if (!(fisherRate > 0 && fisherRate <= 1)) throw new ArgumentException($"CratParameters: Fisher EMA rate must be in (0, 1], got {fisherRate}.", nameof(fisherRate));
        if (!(temperature > 0)) throw new ArgumentException($"CratParameters: temperature must be > 0, got {temperature}.", nameof(temperature));
        if (!(boxWeight >= 0)) throw new ArgumentException($"CratParameters: box transfusion weight λ_b must be ≥ 0, got {boxWeight}.", nameof(boxWeight));
        (NumClasses, EmbeddingDim, Query, FisherRate, Temperature, BoxWeight) = (numClasses, embeddingDim, query, fisherRate, temperature, boxWeight);
    }

    public int NumClasses { get; }

    public int EmbeddingDim { get; }

    public CratQuery Query { get; }

    public double FisherRate { get; }

    public double Temperature { get; }

    public double BoxWeight { get; }
}
