// Small in-memory LVIS cases for the rule tests: images with their neg / not-exhaustive lists,
// categories with a frequency, box annotations with an explicit area, and detections.
using Engine.Lvis;

namespace Engine.Evaluation.Tests;

internal sealed class CaseBuilder
{
    private readonly List<LvisImage> _images = [];
    private readonly List<LvisCategory> _categories = [];
    private readonly List<LvisAnnotation> _annotations = [];
    public LvisResults Results { get; } = new();
    private long _nextAnnId = 1;

    public CaseBuilder Image(long id, int[]? neg = null, int[]? notExhaustive = null, int width = 1000, int height = 1000)
    {
        _images.Add(new LvisImage { Id = id, Width = width, Height = height, NegCategoryIds = neg ?? [], NotExhaustiveCategoryIds = notExhaustive ?? [] });
        return this;
    }

    public CaseBuilder Category(int id, LvisFrequency frequency = LvisFrequency.Frequent)
    {
        _categories.Add(new LvisCategory { Id = id, Name = $"c{id}", Frequency = frequency });
        return this;
    }

    /// <summary>A GT box; its area is w*h unless given (LVIS areas are mask areas).</summary>
    public CaseBuilder Gt(long image, int category, double x, double y, double w, double h, double? area = null, bool? ignore = null, long? id = null)
    {
        _annotations.Add(new LvisAnnotation
        {
            Id = id ?? _nextAnnId++, ImageId = image, CategoryId = category, Bbox = [x, y, w, h], Area = area ?? w * h, Ignore = ignore,
        });
        return this;
    }

    public CaseBuilder Det(long image, int category, double x, double y, double w, double h, double score)
    {
        Results.Add(image, category, score, [x, y, w, h]);
        return this;
    }

    public LvisDataset Dataset => new() { Images = _images, Categories = _categories, Annotations = _annotations };

    public LvisEvalResult Evaluate(LvisEvalOptions? options = null) => LvisEvaluator.Evaluate(Dataset, Results, options);
}
