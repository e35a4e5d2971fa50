// The synthetic long-tailed detection dataset behind `engine synth` and the embedded benchmark: JPEG
// images of K shape × colour × texture classes on noisy backgrounds, written with LVIS v1 JSON
// (train.json, val.json). Training images follow the long tail of LongTail (rare, common and frequent
// buckets all populated for the defaults); validation images are roughly class-balanced so every
// class's AP is measurable, and carry LVIS's neg_category_ids (classes verified absent) and
// not_exhaustive_category_ids (a present class with an instance left unannotated). Planning is
// sequential from the seed; drawing and encoding run in parallel, each image from its own derived
// generator, so the bytes written do not depend on the thread count.
using Engine.Data.Imaging;
using Engine.Data.Records;

namespace Engine.Data.Synthetic;

/// <summary>An object drawn in a synthetic image. <paramref name="AnnotationId"/> is null for the instance left unannotated in a
/// not-exhaustive class. <paramref name="BoxXywh"/> is the polygon's extent, <paramref name="Area"/> its shoelace area.</summary>
public sealed record SyntheticObject(int CategoryIndex, double[] Polygon, double[] BoxXywh, double Area, long? AnnotationId)
{
    public int CategoryId => CategoryIndex + 1;
}

public sealed record SyntheticImage(long Id, string FileName, string FilePath, int Width, int Height, IReadOnlyList<SyntheticObject> Objects,
                                    int[] NegCategoryIds, int[] NotExhaustiveCategoryIds)
{
    /// <summary>The annotated objects as a loader record (category index = id − 1, boxes xyxy).</summary>
    public DatasetRecord ToRecord() => new(Id, FilePath, Height, Width,
        Objects.Where(o => o.AnnotationId is not null).Select(o => new InstanceAnnotation(
            o.CategoryIndex,
            [(float)o.BoxXywh[0], (float)o.BoxXywh[1], (float)(o.BoxXywh[0] + o.BoxXywh[2]), (float)(o.BoxXywh[1] + o.BoxXywh[3])],
            [o.Polygon.Select(v => (float)v).ToArray()])).ToArray());
}

/// <summary>A category with its training statistics; <paramref name="Frequency"/> is 'r', 'c' or 'f' from <paramref name="ImageCount"/>.</summary>
public sealed record SyntheticCategory(int Id, SyntheticClass Look, char Frequency, int ImageCount, int InstanceCount)
{
    public string Name => Look.Name;
    public string Synset => Look.Synset;
}

public sealed class SyntheticDataset
{
    private const ulong TrainStream = 1, ValStream = 2, TrainNoiseStream = 3, ValNoiseStream = 4;

    private SyntheticDataset(SyntheticOptions options, IReadOnlyList<SyntheticCategory> categories,
                             IReadOnlyList<SyntheticImage> train, IReadOnlyList<SyntheticImage> val)
    {
        Options = options;
        Categories = categories;
        Train = train;
        Val = val;
    }

    public SyntheticOptions Options { get; }
    public IReadOnlyList<SyntheticCategory> Categories { get; }
    public IReadOnlyList<SyntheticImage> Train { get; }
    public IReadOnlyList<SyntheticImage> Val { get; }

    public string TrainJsonPath => Path.Combine(Options.OutputDirectory, "train.json");
    public string ValJsonPath => Path.Combine(Options.OutputDirectory, "val.json");

    public IReadOnlyList<DatasetRecord> TrainRecords() => Train.Select(i => i.ToRecord()).ToArray();
    public IReadOnlyList<DatasetRecord> ValRecords() => Val.Select(i => i.ToRecord()).ToArray();

    /// <summary>Plans, draws and writes the dataset to <see cref="SyntheticOptions.OutputDirectory"/>, and returns what it wrote.</summary>
    public static SyntheticDataset Generate(SyntheticOptions options)
    {
        options.Validate();
        var classes = SyntheticClasses.Take(options.Classes);
        var k = options.Classes;
        var g = new Generator(options.Seed);

        var counts = LongTail.ImageCounts(k, options.TrainImages, options.MaxObjectsPerImage, g);
        var trainPlans = LongTail.AssignClasses(counts, options.TrainImages, options.MaxObjectsPerImage, g)
            .Select(present => PlanImage(present, options, g, notExhaustiveProbability: 0)).ToArray();
        var valPlans = BalancedClasses(k, options.ValImages, options.MaxObjectsPerImage, g)
            .Select(present => PlanImage(present, options, g, options.NotExhaustiveProbability)).ToArray();

        Directory.CreateDirectory(Path.Combine(options.OutputDirectory, "train"));
        Directory.CreateDirectory(Path.Combine(options.OutputDirectory, "val"));
        var train = RenderSplit("train", trainPlans, firstId: 1, TrainStream, TrainNoiseStream, classes, options);
        var val = RenderSplit("val", valPlans, firstId: options.TrainImages + 1, ValStream, ValNoiseStream, classes, options);

        // Annotation ids are assigned after drawing, in image order, so they do not depend on thread timing.
        long nextAnnotation = 1;
        train = NumberAnnotations(train, trainPlans, ref nextAnnotation);
        val = NumberAnnotations(val, valPlans, ref nextAnnotation);

        var categories = classes.Select(c =>
        {
            var images = train.Count(i => i.Objects.Any(o => o.CategoryIndex == c.Index && o.AnnotationId is not null));
            var instances = train.Sum(i => i.Objects.Count(o => o.CategoryIndex == c.Index && o.AnnotationId is not null));
            return new SyntheticCategory(c.Index + 1, c, LongTail.Frequency(images), images, instances);
        }).ToArray();

        var dataset = new SyntheticDataset(options, categories, train, val);
        LvisJsonWriter.Write(dataset.TrainJsonPath, categories, train);
        LvisJsonWriter.Write(dataset.ValJsonPath, categories, val);
        return dataset;
    }

    private sealed record ImagePlan(PlannedObject[] Objects, int[] NegCategoryIds, int[] NotExhaustiveCategoryIds, int UnannotatedObject);

    /// <summary>Objects of an image from its distinct classes: one each, plus a second instance of a class with probability
    /// SecondInstanceProbability while there is room; then the negative and not-exhaustive categories.</summary>
    private static ImagePlan PlanImage(int[] present, SyntheticOptions options, Generator g, double notExhaustiveProbability)
    {
        var objects = present.Select(c => new PlannedObject(c)).ToList();
        foreach (var c in present)
            if (objects.Count < options.MaxObjectsPerImage && g.NextDouble() < options.SecondInstanceProbability)
                objects.Add(new PlannedObject(c));

        var absent = Enumerable.Range(0, options.Classes).Except(present).ToArray();
        var negCount = Math.Min(absent.Length, 1 + (int)g.NextInt64(Math.Max(1, options.Classes / 5)));
        for (var i = 0; i < negCount; i++)
        {
            var j = i + (int)g.NextInt64(absent.Length - i);
            (absent[i], absent[j]) = (absent[j], absent[i]);
        }
        var neg = absent.Take(negCount).Select(c => c + 1).Order().ToArray();

        var unannotated = -1;
        int[] notExhaustive = [];
        if (objects.Count > 0 && g.NextDouble() < notExhaustiveProbability)
        {
            unannotated = (int)g.NextInt64(objects.Count);
            notExhaustive = [objects[unannotated].ClassIndex + 1];
        }
        return new ImagePlan(objects.ToArray(), neg, notExhaustive, unannotated);
    }

    /// <summary>Validation classes: each image takes 1..min(4, maxObjects, K) distinct classes dealt from a deck of shuffled
    /// copies of all classes, so every class appears about equally often.</summary>
    private static int[][] BalancedClasses(int classes, int images, int maxObjects, Generator g)
    {
        var perImage = Math.Min(Math.Min(4, maxObjects), classes);
        var deck = new Queue<int>();
        var result = new int[images][];
        for (var i = 0; i < images; i++)
        {
            var want = 1 + (int)g.NextInt64(perImage);
            var chosen = new List<int>(want);
            var skipped = new List<int>();
            while (chosen.Count < want)
            {
                if (deck.Count == 0)
                    foreach (var c in g.Permutation(classes)) deck.Enqueue(c);
                var next = deck.Dequeue();
                if (chosen.Contains(next)) skipped.Add(next);
                else chosen.Add(next);
            }
            // Cards skipped as duplicates go back on top of the deck for the next image.
            var rest = deck.ToArray();
            deck.Clear();
            foreach (var c in skipped.Concat(rest)) deck.Enqueue(c);
            result[i] = chosen.ToArray();
        }
        return result;
    }

    private static SyntheticImage[] RenderSplit(string split, ImagePlan[] plans, long firstId, ulong stream, ulong noiseStream,
                                                IReadOnlyList<SyntheticClass> classes, SyntheticOptions options)
    {
        var result = new SyntheticImage[plans.Length];
        var s = options.ImageSize;
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = options.Threads ?? Environment.ProcessorCount };
        Parallel.For(0, plans.Length, parallel, i =>
        {
            var plan = plans[i];
            var id = firstId + i;
            var (pixels, drawn) = SceneRenderer.Render(plan.Objects, classes, options,
                Seeds.Generator(options.Seed, stream, (ulong)i), Seeds.Derive(options.Seed, noiseStream, (ulong)i));
            var fileName = $"{split}/{id:D12}.jpg";
            var path = Path.Combine(options.OutputDirectory, fileName);
            File.WriteAllBytes(path, Jpeg.Encode(new Image(s, s, 3, pixels), options.JpegQuality));
            var objects = drawn.Select(d => new SyntheticObject(d.ClassIndex, d.Polygon,
                [d.MinX, d.MinY, d.MaxX - d.MinX, d.MaxY - d.MinY], d.Area, AnnotationId: null)).ToArray();
            result[i] = new SyntheticImage(id, fileName, path, s, s, objects, plan.NegCategoryIds, plan.NotExhaustiveCategoryIds);
        });
        return result;
    }

    /// <summary>Gives every drawn object an annotation id, except the planned unannotated one. Drawing reorders objects by
    /// size, so the unannotated one is found by class: the last drawn instance of the not-exhaustive class.</summary>
    private static SyntheticImage[] NumberAnnotations(SyntheticImage[] images, ImagePlan[] plans, ref long next)
    {
        var result = new SyntheticImage[images.Length];
        for (var i = 0; i < images.Length; i++)
        {
            var skip = plans[i].UnannotatedObject < 0 ? -1
                : Array.FindLastIndex(images[i].Objects.ToArray(), o => o.CategoryIndex == plans[i].Objects[plans[i].UnannotatedObject].ClassIndex);
            var objects = new SyntheticObject[images[i].Objects.Count];
            for (var j = 0; j < objects.Length; j++)
                objects[j] = images[i].Objects[j] with { AnnotationId = j == skip ? null : next++ };
            result[i] = images[i] with { Objects = objects };
        }
        return result;
    }
}
