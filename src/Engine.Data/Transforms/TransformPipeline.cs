// The augmentation of one sample: each transform in order, each drawing from the one per-sample
// generator, then box clipping and the removal of degenerate boxes.
namespace Engine.Data.Transforms;

public sealed class TransformPipeline
{
    public TransformPipeline(IReadOnlyList<ITransform> transforms) => Transforms = transforms.ToArray();

    public IReadOnlyList<ITransform> Transforms { get; }

    /// <summary>detectron2's training default: ResizeShortestEdge(sizes, maxSize) then a horizontal flip with probability 0.5.</summary>
    public static TransformPipeline Training(IReadOnlyList<int> shortEdgeSizes, int maxSize, double flipProbability = 0.5) =>
        new([new ResizeShortestEdge(shortEdgeSizes, maxSize), new RandomHorizontalFlip(flipProbability)]);

    /// <summary>Test-time: a single resize, no flip.</summary>
    public static TransformPipeline Inference(int shortEdge, int maxSize) => new([new ResizeShortestEdge([shortEdge], maxSize)]);

    public Sample Apply(Sample sample, Generator generator)
    {
        foreach (var t in Transforms) sample = t.Apply(sample, generator);
        return ClipBoxes.Apply(sample);
    }
}
