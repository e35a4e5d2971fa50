// Example images for report.html: a few validation images with the detector's detections drawn on them
// (DetectionOverlay, score ≥ 0.5, at most 20 per image), saved under OUTPUT_DIR/report_images so that every later
// RunReport.Write shows them. The training run renders the first images of its test set after each evaluation.
using Engine.Config;
using Engine.Data.Imaging;
using Engine.Data.Imaging.Drawing;
using Engine.Data.Records;
using Engine.Detection.Modeling.MetaArch;

namespace Engine.Training.Detection;

public static class ReportDetections
{
    /// <summary>Images a training run shows in its report.</summary>
    public const int DefaultCount = 4;

    public const double DefaultScoreThreshold = 0.5;
    public const int DefaultMaxDetections = 20;

    /// <summary>Longer side of a shown image: larger images are scaled down (before drawing, so lines stay sharp).</summary>
    public const int MaxDisplaySide = 800;

    /// <summary>Each image of <paramref name="imagePaths"/> with its detections drawn, as a JPEG and a caption.</summary>
    public static IReadOnlyList<ReportImage> Render(ImageInference inference, IReadOnlyList<string> imagePaths, IReadOnlyList<string>? classNames,
                                                    double scoreThreshold = DefaultScoreThreshold, int maxDetections = DefaultMaxDetections)
    {
        ArgumentNullException.ThrowIfNull(inference);
        ArgumentNullException.ThrowIfNull(imagePaths);
        var result = new List<ReportImage>(imagePaths.Count);
        foreach (var path in imagePaths)
        {
            var image = Jpeg.Decode(path, PixelOrder.Rgb);
            var all = inference.Run(image, path);
            var shown = all.Top(scoreThreshold, maxDetections);
            var scale = Math.Min(1.0, (double)MaxDisplaySide / Math.Max(image.Width, image.Height));
            if (scale < 1)
            {
                var (w, h) = (Math.Max(1, (int)Math.Round(image.Width * scale)), Math.Max(1, (int)Math.Round(image.Height * scale)));
                image = Resize.Bilinear(image, w, h);
                shown = shown with
                {
                    Width = w,
                    Height = h,
                    Boxes = shown.Boxes.Select((v, i) => (float)(v * (i % 2 == 0 ? (double)w / all.Width : (double)h / all.Height))).ToArray(),
                };
            }
            // Thresholds were applied by Top; the overlay draws everything it is given.
            shown.Draw(image, classNames, OverlayOptions.ForImage(image.Width, image.Height, double.NegativeInfinity, int.MaxValue));
            var caption = $"{Path.GetFileName(path)} ({all.Width}×{all.Height}): {shown.Count} detection{(shown.Count == 1 ? "" : "s")} " +
                          $"with score ≥ {scoreThreshold:0.##} of {all.Count}" + (shown.Count == maxDetections ? $" (the {maxDetections} best shown)" : "");
            result.Add(new ReportImage(caption, Jpeg.Encode(image, 90)));
        }
        return result;
    }

    /// <summary>Renders the first <paramref name="count"/> images of <paramref name="test"/> with <paramref name="detector"/>
    /// (its mode is restored after) and saves them into <paramref name="outputDir"/>/report_images for the report.</summary>
    public static IReadOnlyList<ReportImage> WriteForTestSet(string outputDir, GeneralizedRcnn detector, EngineConfig config, LvisRecordSet test, int count = DefaultCount)
    {
        ArgumentNullException.ThrowIfNull(detector);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(test);
        if (count < 0) throw new ArgumentException($"ReportDetections.WriteForTestSet: count {count} must be ≥ 0.");
        using var inference = new ImageInference(detector, config.Input);
        var paths = test.Records.Take(count).Select(r => r.FilePath).ToList();
        var images = Render(inference, paths, test.Categories.Select(c => c.Name).ToArray());
        RunReport.WriteImages(outputDir, images);
        return images;
    }
}
