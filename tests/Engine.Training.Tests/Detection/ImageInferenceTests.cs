// Single-image inference on a tiny synthetic set (6 classes, 64×64 JPEGs) with the test-time resize set to 96,
// so every image goes through the model at another size than its own: the detections must equal those the
// dataset path (DetectorTraining.WriteResults) writes for the same images, must equal the detector's boxes
// at 96×96 scaled back by 64/96 by hand, and the overlay must draw them at those original coordinates. A
// freshly initialized detector is enough: it is deterministic and, with SCORE_THRESH_TEST 1e-4, detects plenty.
using System.Text.Json;
using Engine.Config;
using Engine.Data.Imaging;
using Engine.Data.Imaging.Drawing;
using Engine.Data.Synthetic;
using Engine.Detection;
using Engine.Detection.Modeling;
using Engine.Detection.Modeling.MetaArch;
using Engine.Training.Detection;

namespace Engine.Training.Tests.Detection;

public sealed class ImageInferenceTests
{
    private const int Classes = 6;
    private const int ImageSize = 64;
    private const int TestSize = 96;

    private static readonly Lazy<string> DatasetRoot = new(() =>
    {
        var root = Toy.TempDir();
        SyntheticDataset.Generate(new SyntheticOptions
        {
            OutputDirectory = Path.Combine(root, "synth_lt"), Classes = Classes, TrainImages = 6, ValImages = 4, ImageSize = ImageSize, Seed = 11,
        });
        return root;
    });

    private static EngineConfig Config(string? root = null) => ConfigLoader.Load(TinyDetector.SynthConfig(),
    [
        $"DATASETS.ROOT={root ?? DatasetRoot.Value}",
        $"OUTPUT_DIR={Toy.TempDir()}",
        $"MODEL.ROI_HEADS.NUM_CLASSES={Classes}",
        "MODEL.FPN.OUT_CHANNELS=32",
        "MODEL.ROI_BOX_HEAD.FC_DIM=64",
        "MODEL.RPN.PRE_NMS_TOPK_TEST=200",
        "MODEL.RPN.POST_NMS_TOPK_TEST=64",
        $"INPUT.MIN_SIZE_TEST={TestSize}",
        $"INPUT.MAX_SIZE_TEST={2 * TestSize}",
        "SEED=3",
    ]);

    private static GeneralizedRcnn Detector(EngineConfig config) => DetectorBuilder.FromConfig(config, new Generator(3));

    private static IReadOnlyList<string> ValImages() => ImageInference.ListImages(Path.Combine(DatasetRoot.Value, "synth_lt", "val"));

    [Fact]
    public void DetectionsEqualTheDatasetPathInOriginalCoordinates()
    {
        var config = Config();
        using var detector = Detector(config);
        var test = DetectorTraining.LoadTestSet(config);
        var results = Path.Combine(Toy.TempDir(), "results.json");
        // One image per batch, as ImageInference runs them, so both paths do the same arithmetic.
        DetectorTraining.WriteResults(detector, config, test, results, batchSize: 1);
        using var written = JsonDocument.Parse(File.ReadAllText(results));
        var categoryIds = test.CategoryIds;

        using var inference = new ImageInference(detector, config.Input);
        var total = 0;
        foreach (var record in test.Records)
        {
            var d = inference.Run(record.FilePath);
            Assert.Equal((ImageSize, ImageSize), (d.Width, d.Height));
            var expected = written.RootElement.EnumerateArray().Where(e => e.GetProperty("image_id").GetInt64() == record.ImageId).ToList();
            Assert.Equal(expected.Count, d.Count);
            for (var k = 0; k < d.Count; k++)
            {
                var e = expected[k];
                var b = e.GetProperty("bbox").EnumerateArray().Select(v => v.GetDouble()).ToArray();
                double[] xyxy = [b[0], b[1], b[0] + b[2], b[1] + b[3]];
                for (var j = 0; j < 4; j++)
                    // The results file stores x, y, w, h as float32 → double; x + w is rebuilt in double, a few float ulps off.
                    Assert.True(Math.Abs(xyxy[j] - d.Boxes[4 * k + j]) <= 1e-4, $"{record.FilePath} detection {k} coordinate {j}: results file {xyxy[j]}, image inference {d.Boxes[4 * k + j]}");
                Assert.Equal(e.GetProperty("category_id").GetInt32(), categoryIds[d.Classes[k]]);
                Assert.Equal(e.GetProperty("score").GetDouble(), d.Scores[k], 6);
            }
            total += d.Count;
        }
        Assert.True(total > 0, "the detector found nothing on any image; the comparison checked no box");
    }

    [Fact]
    public void BoxesAreTheResizedImageBoxesScaledBackToTheOriginalSize()
    {
        var config = Config();
        using var detector = Detector(config);
        detector.Eval();
        using var inference = new ImageInference(detector, config.Input);
        var path = ValImages()[0];
        var d = inference.Run(path);

        // By hand: resize to 96×96, run the detector at that size with no rescaling, scale by 64/96.
        var resized = Resize.Bilinear(Jpeg.Decode(path, inference.InputOrder), TestSize, TestSize);
        var pixels = new float[3 * 96 * 96];
        for (var c = 0; c < 3; c++)
            for (var y = 0; y < 96; y++)
                for (var x = 0; x < 96; x++) pixels[(c * 96 + y) * 96 + x] = resized[y, x, c];
        List<Instances> raw;
        using (var images = new ImageList(Tensor.From<float>(pixels, [1, 3, 96, 96]), [(96, 96)]))
            raw = detector.Inference(images);
        var rawBoxes = raw[0].PredBoxes!.ToFloatArray();
        var rawScores = raw[0].Scores!.ToFloatArray();
        foreach (var r in raw) r.Dispose();

        Assert.True(rawBoxes.Any(v => v > ImageSize + 1), "no box of the 96×96 image reaches past 64 pixels, so the test would not notice a missing rescale");
        Assert.Equal(rawScores.Length, d.Count);
        const double scale = (double)ImageSize / TestSize;
        for (var i = 0; i < rawBoxes.Length; i++)
        {
            var expected = Math.Min(ImageSize, rawBoxes[i] * scale);
            // float32 scaling of values ≤ 96: a few ulps of 64.
            Assert.True(Math.Abs(expected - d.Boxes[i]) <= 1e-4, $"{path} box value {i}: {rawBoxes[i]} at 96 px is {expected} at 64 px, image inference gave {d.Boxes[i]}");
            Assert.InRange(d.Boxes[i], 0f, ImageSize);
        }
        Assert.Equal(rawScores, d.Scores);
    }

    [Fact]
    public void OverlayDrawsTheBestDetectionAtItsOriginalCoordinates()
    {
        var config = Config();
        using var inference = new ImageInference(Detector(config), config.Input);
        using var _ = inference.Detector;
        var path = ValImages()[1];
        var all = inference.Run(path);
        var best = all.Top(0, 1);
        Assert.Equal(1, best.Count);

        var image = Jpeg.Decode(path, PixelOrder.Rgb);
        Assert.Equal(1, best.Draw(image, ["a", "b", "c", "d", "e", "f"], new OverlayOptions { ScoreThreshold = 0, Thickness = 1 }));
        var color = ClassPalette.Color(best.Classes[0]);
        var b = best.Boxes;
        var outline = Image.Create(image.Width, image.Height);
        new Painter(outline).DrawBox(b[0], b[1], b[2], b[3], 1, RgbColor.White);
        var label = DetectionOverlay.LabelRectangle(DetectionOverlay.Label(new[] { "a", "b", "c", "d", "e", "f" }[best.Classes[0]], best.Scores[0]), b, image.Width, image.Height, 1);
        var drawn = new Painter(image);
        var checkedPixels = 0;
        for (var y = 0; y < image.Height; y++)
            for (var x = 0; x < image.Width; x++)
            {
                var inLabel = x >= label.X && x < label.X + label.Width && y >= label.Y && y < label.Y + label.Height;
                if (outline[y, x, 0] == 0 || inLabel) continue;
                Assert.True(drawn.GetPixel(x, y) == color, $"{path}: outline pixel ({x}, {y}) of box [{string.Join(", ", b.ToArray())}] is {drawn.GetPixel(x, y)}, expected the class colour {color}");
                checkedPixels++;
            }
        Assert.True(checkedPixels > 0, "the label covered the whole outline; nothing was checked");
        Assert.Throws<ArgumentException>(() => best.Draw(Image.Create(10, 10), null, new OverlayOptions()));
    }

    [Fact]
    public void LoadedWeightsGiveTheSameDetectionsAsTheDetectorTheyCameFrom()
    {
        var config = Config();
        var weights = Path.Combine(Toy.TempDir(), "model.safetensors");
        ImageDetections expected;
        using (var detector = Detector(config))
        {
            detector.Save(weights);
            using var borrowed = new ImageInference(detector, config.Input);
            expected = borrowed.Run(ValImages()[2]);
            Assert.True(detector.IsTraining, "a borrowed detector goes back to the mode it was in");
        }
        using var loaded = ImageInference.Load(config with { Seed = 99 }, weights);
        var actual = loaded.Run(ValImages()[2]);
        Assert.Equal(expected.Boxes, actual.Boxes);
        Assert.Equal(expected.Scores, actual.Scores);
        Assert.Equal(expected.Classes, actual.Classes);
        var missing = Assert.Throws<FileNotFoundException>(() => ImageInference.Load(config, weights + ".nope"));
        Assert.Contains(".nope", missing.Message);
    }

    [Fact]
    public void InputPathsAreListedSortedAndBadOnesNamed()
    {
        var dir = Toy.TempDir();
        var jpeg = File.ReadAllBytes(ValImages()[0]);
        foreach (var name in new[] { "b.jpg", "a.JPEG", "c.jpeg" }) File.WriteAllBytes(Path.Combine(dir, name), jpeg);
        File.WriteAllText(Path.Combine(dir, "notes.txt"), "not an image");
        Directory.CreateDirectory(Path.Combine(dir, "sub"));
        File.WriteAllBytes(Path.Combine(dir, "sub", "0.jpg"), jpeg);
        Assert.Equal(["a.JPEG", "b.jpg", "c.jpeg"], ImageInference.ListImages(dir).Select(Path.GetFileName));
        Assert.Equal([Path.Combine(dir, "b.jpg")], ImageInference.ListImages(Path.Combine(dir, "b.jpg")));

        var empty = Toy.TempDir();
        Assert.Contains(empty, Assert.Throws<InvalidDataException>(() => ImageInference.ListImages(empty)).Message);
        var missing = Path.Combine(dir, "missing.jpg");
        Assert.Contains(missing, Assert.Throws<FileNotFoundException>(() => ImageInference.ListImages(missing)).Message);
        var text = Path.Combine(dir, "notes.txt");
        Assert.Contains(text, Assert.Throws<InvalidDataException>(() => ImageInference.ListImages(text)).Message);
        var fake = Path.Combine(dir, "fake.jpg");
        File.WriteAllText(fake, "GIF89a");
        Assert.Contains(fake, Assert.Throws<InvalidDataException>(() => ImageInference.ListImages(fake)).Message);
    }

    [Fact]
    public void ClassNamesComeFromTheTestSetTheClassFileOrTheIndex()
    {
        var config = Config();
        var valJson = Path.Combine(DatasetRoot.Value, "synth_lt", "val.json");
        var test = DetectorTraining.LoadTestSet(config);
        var fromTest = DetectionClasses.Resolve(config, null);
        Assert.Equal(test.Categories.Select(c => c.Name), fromTest.Names);
        Assert.Equal(test.CategoryIds, fromTest.CategoryIds);
        Assert.Equal(valJson, fromTest.Source);

        var nowhere = Config(Path.Combine(Toy.TempDir(), "nowhere"));
        var generic = DetectionClasses.Resolve(nowhere, null);
        Assert.Equal(Enumerable.Range(0, Classes).Select(k => $"class {k}"), generic.Names);
        Assert.Null(generic.CategoryIds);
        Assert.Contains("does not exist", generic.Source);
        Assert.Equal(fromTest.Names, DetectionClasses.Resolve(nowhere, valJson).Names);

        var wrongCount = Assert.Throws<ArgumentException>(() => DetectionClasses.Resolve(nowhere with { Model = nowhere.Model with { RoiHeads = nowhere.Model.RoiHeads with { NumClasses = 3 } } }, valJson));
        Assert.Contains("3 classes", wrongCount.Message);

        // detections.json carries the selected detections with their category names and ids.
        var d = new ImageDetections("x.jpg", 64, 48, [1, 2, 30, 40, 5, 5, 9, 9], [2, 0], [0.9f, 0.6f]);
        var json = Path.Combine(Toy.TempDir(), "detections.json");
        ImageInference.WriteJson(json, [d], fromTest, 0.5, 100);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var image = doc.RootElement.GetProperty("images")[0];
        Assert.Equal("x.jpg", image.GetProperty("file").GetString());
        var first = image.GetProperty("detections")[0];
        Assert.Equal([1.0, 2, 30, 40], first.GetProperty("box").EnumerateArray().Select(v => v.GetDouble()));
        Assert.Equal(fromTest.Names[2], first.GetProperty("category").GetString());
        Assert.Equal(fromTest.CategoryIds![2], first.GetProperty("category_id").GetInt32());
        Assert.Equal(0.9, first.GetProperty("score").GetDouble(), 6);
    }
}
