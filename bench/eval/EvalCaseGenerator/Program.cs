// Generates a synthetic evaluation case shaped like LVIS v1 val for timing `engine eval`: 1203
// categories split into rare/common/frequent by a long-tailed (Zipf) popularity, images with ~8.7
// polygon annotations, neg_category_ids and not_exhaustive_category_ids, and detector-like results:
// up to 300 detections per image (jittered copies of GT boxes with high scores, detections of negative
// categories, and low-score clutter), boxes and scores as float32 values written at double precision
// as detectron2 writes them. Deterministic for a given seed.
//
// usage: EvalCaseGenerator --out DIR [--images 5000] [--categories 1203] [--dets-per-image 300]
//                          [--gt-per-image 8.74] [--images-without-dets 0.03] [--seed 1]
using System.Globalization;
using Engine.Lvis;

var opts = new Dictionary<string, string>();
for (int i = 0; i + 1 < args.Length; i += 2)
{
    if (!args[i].StartsWith("--", StringComparison.Ordinal))
        return Fail($"unexpected argument {args[i]}");
    opts[args[i][2..]] = args[i + 1];
}
if (args.Length % 2 != 0 || !opts.TryGetValue("out", out string? outDir))
    return Fail("usage: EvalCaseGenerator --out DIR [--images N] [--categories K] [--dets-per-image D] [--gt-per-image G] [--images-without-dets F] [--seed S]");
int images = Int("images", 5000), categories = Int("categories", 1203), detsPerImage = Int("dets-per-image", 300), seed = Int("seed", 1);
double gtPerImage = Dbl("gt-per-image", 8.74), noDetFraction = Dbl("images-without-dets", 0.03);
Directory.CreateDirectory(outDir);
var rng = new Random(seed);

// Category popularity: Zipf over a random permutation; the most popular 34% are frequent, the next 38%
// common, the rest rare (LVIS v1: 405 f, 461 c, 337 r of 1203).
var weight = new double[categories];
for (int k = 0; k < categories; k++)
    weight[k] = 1.0 / Math.Pow(k + 1, 1.1);
var cumulative = new double[categories];
double acc = 0;
for (int k = 0; k < categories; k++)
    cumulative[k] = acc += weight[k];
int SampleCategory() => Math.Min(categories - 1, Array.BinarySearch(cumulative, rng.NextDouble() * acc) is int p && p < 0 ? ~p : p);
var catIds = Enumerable.Range(1, categories).OrderBy(_ => rng.Next()).ToArray();   // popularity rank -> category id

(int W, int H)[] sizes = [(640, 480), (480, 640), (640, 427), (500, 375), (612, 612), (800, 600), (427, 640)];
var imageList = new List<LvisImage>();
var anns = new List<LvisAnnotation>();
var results = new LvisResultsWriter(Path.Combine(outDir, "results.json"));
var imageCount = new int[categories];
var instanceCount = new int[categories];
long annId = 1;
for (int i = 0; i < images; i++)
{
    long imageId = 100000 + i * 7L;
    var (w, h) = sizes[rng.Next(sizes.Length)];
    // Annotations: a few categories per image, instances split among them.
    int n = Math.Max(1, (int)Math.Round(-Math.Log(1 - rng.NextDouble()) * gtPerImage));
    int nc = Math.Min(n, 1 + rng.Next(4));
    var present = new List<int>();
    while (present.Count < nc)
    {
        int k = SampleCategory();
        if (!present.Contains(k))
            present.Add(k);
    }
    var gtBoxes = new List<(int K, double X, double Y, double W, double H)>();
    for (int j = 0; j < n; j++)
    {
        int k = present[j % nc];
        double side = Math.Exp(Math.Log(4) + rng.NextDouble() * (Math.Log(Math.Min(w, h)) - Math.Log(4)));
        double bw = Math.Round(Math.Clamp(side * (0.5 + rng.NextDouble()), 2, w - 1), 2);
        double bh = Math.Round(Math.Clamp(side * (0.5 + rng.NextDouble()), 2, h - 1), 2);
        double bx = Math.Round(rng.NextDouble() * (w - bw), 2), by = Math.Round(rng.NextDouble() * (h - bh), 2);
        // An octagon inscribed in the box; its shoelace area is the annotation's area, as LVIS stores mask areas.
        var poly = new double[16];
        for (int v = 0; v < 8; v++)
        {
            double ang = v * Math.PI / 4 + Math.PI / 8;
            poly[2 * v] = Math.Round(bx + bw / 2 + bw / 2 * Math.Cos(ang) / Math.Cos(Math.PI / 8), 2);
            poly[2 * v + 1] = Math.Round(by + bh / 2 + bh / 2 * Math.Sin(ang) / Math.Cos(Math.PI / 8), 2);
        }
        double area = 0;
        for (int v = 0; v < 8; v++)
        {
            int u = (v + 1) % 8;
            area += poly[2 * v] * poly[2 * u + 1] - poly[2 * u] * poly[2 * v + 1];
        }
        anns.Add(new LvisAnnotation
        {
            Id = annId++, ImageId = imageId, CategoryId = catIds[k], Bbox = [bx, by, bw, bh], Area = Math.Round(Math.Abs(area) / 2, 2),
            Segmentation = new PolygonSegmentation([poly]),
        });
        gtBoxes.Add((k, bx, by, bw, bh));
        instanceCount[k]++;
    }
    foreach (int k in present)
        imageCount[k]++;
    var neg = new SortedSet<int>();
    int negCount = 4 + rng.Next(9);
    while (neg.Count < negCount)
    {
        int k = SampleCategory();
        if (!present.Contains(k))
            neg.Add(catIds[k]);
    }
    int[] notExhaustive = rng.NextDouble() < 0.3 ? [catIds[present[rng.Next(nc)]]] : [];
    imageList.Add(new LvisImage
    {
        Id = imageId, Width = w, Height = h, CocoUrl = $"http://images.cocodataset.org/val2017/{imageId:D12}.jpg",
        NegCategoryIds = [.. neg], NotExhaustiveCategoryIds = notExhaustive,
    });

    if (rng.NextDouble() < noDetFraction)
        continue;
    // Detections: jittered GT copies (high scores), negative-category hits, then low-score clutter.
    var dets = new List<(int K, double X, double Y, double W, double H, double S)>();
    foreach (var g in gtBoxes)
    {
        int copies = 1 + rng.Next(4);
        for (int c = 0; c < copies && dets.Count < detsPerImage; c++)
        {
            double jw = g.W * (1 + 0.15 * (rng.NextDouble() - 0.5)), jh = g.H * (1 + 0.15 * (rng.NextDouble() - 0.5));
            double jx = g.X + g.W * 0.1 * (rng.NextDouble() - 0.5), jy = g.Y + g.H * 0.1 * (rng.NextDouble() - 0.5);
            int k = rng.NextDouble() < 0.8 ? g.K : SampleCategory();
            dets.Add((k, jx, jy, jw, jh, 0.2 + 0.8 * rng.NextDouble()));
        }
    }
    foreach (int negId in neg)
    {
        if (rng.NextDouble() < 0.5 && dets.Count < detsPerImage)
            dets.Add((Array.IndexOf(catIds, negId), rng.NextDouble() * w * 0.8, rng.NextDouble() * h * 0.8, 10 + rng.NextDouble() * w * 0.2, 10 + rng.NextDouble() * h * 0.2, 0.4 * rng.NextDouble()));
    }
    while (dets.Count < detsPerImage)
    {
        double dw = 2 + rng.NextDouble() * w * 0.5, dh = 2 + rng.NextDouble() * h * 0.5;
        dets.Add((SampleCategory(), rng.NextDouble() * (w - dw), rng.NextDouble() * (h - dh), dw, dh, 0.3 * Math.Pow(rng.NextDouble(), 3)));
    }
    foreach (var d in dets.OrderByDescending(d => (float)d.S))
    {
        Span<double> box = [(float)d.X, (float)d.Y, (float)d.W, (float)d.H];
        results.Write(imageId, catIds[d.K], box, Math.Max(1e-4f, (float)d.S));
    }
}
results.Dispose();

var cats = new List<LvisCategory>();
for (int k = 0; k < categories; k++)
{
    var f = k < categories * 0.34 ? LvisFrequency.Frequent : k < categories * 0.72 ? LvisFrequency.Common : LvisFrequency.Rare;
    cats.Add(new LvisCategory
    {
        Id = catIds[k], Name = $"category_{catIds[k]}", Synset = $"category_{catIds[k]}.n.01", Synonyms = [$"category_{catIds[k]}"],
        Definition = "a synthetic category", Frequency = f, ImageCount = imageCount[k], InstanceCount = instanceCount[k],
    });
}
LvisDatasetWriter.Write(Path.Combine(outDir, "gt.json"), new LvisDataset { Images = imageList, Categories = cats, Annotations = anns });
Console.WriteLine($"wrote {outDir}/gt.json ({images} images, {categories} categories, {anns.Count} annotations) and results.json");
return 0;

int Int(string name, int fallback) => opts.TryGetValue(name, out string? v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
double Dbl(string name, double fallback) => opts.TryGetValue(name, out string? v) ? double.Parse(v, CultureInfo.InvariantCulture) : fallback;
static int Fail(string message)
{
    Console.Error.WriteLine(message);
    return 2;
}
