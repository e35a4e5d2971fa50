// Example images in report.html: given images are embedded as base64 JPEG data URLs with their captions (the page
// still parses as XML), images saved under report_images/ are picked up by the plain RunReport.Write, and
// ReportDetections renders validation images with a detector's boxes drawn on them, large ones scaled down.
using System.Xml;
using System.Xml.Linq;
using Engine.Config;
using Engine.Data.Imaging;
using Engine.Data.Synthetic;
using Engine.Detection.Modeling;
using Engine.Training.Detection;

namespace Engine.Training.Tests.Detection;

public sealed class ReportDetectionsTests
{
    private static readonly XNamespace Html = "http://www.w3.org/1999/xhtml";

    private static XDocument Parse(string path)
    {
        using var reader = XmlReader.Create(path, new XmlReaderSettings { DtdProcessing = DtdProcessing.Ignore });
        return XDocument.Load(reader);
    }

    private static byte[] SolidJpeg(int width, int height, byte value)
    {
        var image = Image.Create(width, height);
        Array.Fill(image.Data, value);
        return Jpeg.Encode(image, 90);
    }

    private static List<(byte[] Bytes, string Caption)> Figures(XDocument doc) =>
        doc.Descendants(Html + "figure").Select(f =>
        {
            var src = (string)f.Element(Html + "img")!.Attribute("src")!;
            Assert.StartsWith("data:image/jpeg;base64,", src);
            return (Convert.FromBase64String(src["data:image/jpeg;base64,".Length..]), f.Element(Html + "figcaption")!.Value);
        }).ToList();

    [Fact]
    public void ImagesAreEmbeddedWithTheirCaptionsGivenOrSaved()
    {
        var dir = Toy.TempDir();
        ReportImage[] images = [new("a <b> & \"c\"", SolidJpeg(8, 6, 200)), new("second", SolidJpeg(5, 7, 30))];
        var doc = Parse(RunReport.Write(dir, "t", images));
        var figures = Figures(doc);
        Assert.Equal(images.Length, figures.Count);
        for (var i = 0; i < images.Length; i++)
        {
            Assert.Equal(images[i].Jpeg, figures[i].Bytes);
            Assert.Equal(images[i].Caption, figures[i].Caption);
        }

        // Without images (none given, no report_images/): no figure and no section.
        var plain = Parse(RunReport.Write(Toy.TempDir()));
        Assert.Empty(plain.Descendants(Html + "figure"));
        Assert.DoesNotContain("Detections on validation images", plain.ToString());

        // Saved into report_images/, the plain Write (as the trainer calls it) shows them.
        var saved = Toy.TempDir();
        RunReport.WriteImages(saved, images);
        var fromDisk = Figures(Parse(RunReport.Write(saved)));
        Assert.Equal(images.Select(i => i.Caption), fromDisk.Select(f => f.Caption));
        Assert.Equal(images[1].Jpeg, fromDisk[1].Bytes);

        File.Delete(Path.Combine(saved, RunReport.ImagesFolder, "01.jpg"));
        var missing = Assert.Throws<FileNotFoundException>(() => RunReport.Write(saved));
        Assert.Contains("01.jpg", missing.Message);
    }

    [Fact]
    public void ValidationImagesAreRenderedWithTheDetectionsDrawn()
    {
        var root = Toy.TempDir();
        SyntheticDataset.Generate(new SyntheticOptions
        {
            OutputDirectory = Path.Combine(root, "synth_lt"), Classes = 6, TrainImages = 4, ValImages = 3, ImageSize = 64, Seed = 4,
        });
        var config = ConfigLoader.Load(TinyDetector.SynthConfig(),
            [$"DATASETS.ROOT={root}", "MODEL.ROI_HEADS.NUM_CLASSES=6", "MODEL.FPN.OUT_CHANNELS=32", "MODEL.ROI_BOX_HEAD.FC_DIM=64",
             "INPUT.MIN_SIZE_TEST=64", "INPUT.MAX_SIZE_TEST=128", "SEED=5"]);
        using var detector = DetectorBuilder.FromConfig(config, new Generator(5));
        var test = DetectorTraining.LoadTestSet(config);
        var outputDir = Toy.TempDir();
        var images = ReportDetections.WriteForTestSet(outputDir, detector, config, test, count: 2);
        Assert.Equal(2, images.Count);
        for (var i = 0; i < 2; i++)
        {
            Assert.StartsWith(Path.GetFileName(test.Records[i].FilePath), images[i].Caption);
            Assert.Contains("with score ≥ 0.5", images[i].Caption);
            var shown = Jpeg.Decode(images[i].Jpeg);
            Assert.Equal((64, 64), (shown.Width, shown.Height));
        }
        Assert.Equal(images.Select(i => i.Caption), Figures(Parse(RunReport.Write(outputDir))).Select(f => f.Caption));

        // Threshold 0: every image gets boxes, so its pixels change; a 1000×500 image is shown at 800×400.
        var large = Path.Combine(Toy.TempDir(), "large.jpg");
        File.WriteAllBytes(large, Jpeg.Encode(Resize.Bilinear(Jpeg.Decode(test.Records[0].FilePath), 1000, 500), 95));
        using var inference = new ImageInference(detector, config.Input);
        var rendered = ReportDetections.Render(inference, [test.Records[0].FilePath, large], null, scoreThreshold: 0, maxDetections: 5);
        Assert.Contains("5 detections with score ≥ 0 of", rendered[0].Caption);
        var original = Jpeg.Decode(test.Records[0].FilePath);
        var drawn = Jpeg.Decode(rendered[0].Jpeg);
        var changed = original.Data.Zip(drawn.Data).Count(p => Math.Abs(p.First - p.Second) > 40);
        Assert.True(changed > 100, $"only {changed} bytes differ by more than JPEG noise between the image and its rendering with 5 boxes");
        var big = Jpeg.Decode(rendered[1].Jpeg);
        Assert.Equal((ReportDetections.MaxDisplaySide, 400), (big.Width, big.Height));
        Assert.StartsWith("large.jpg (1000×500)", rendered[1].Caption);
    }
}
