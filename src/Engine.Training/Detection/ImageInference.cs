// A trained detector applied to single images, outside any dataset: the image is brought to the channel order
// of INPUT.FORMAT, resized with the config's test-time transform (ResizeShortestEdge MIN_SIZE_TEST,
// MAX_SIZE_TEST), padded to a multiple of 32 and run through the detector in eval mode, which maps its boxes
// back to the image's own size (GeneralizedRcnn.Rescale); this is the path DetectorTraining.WriteResults takes
// for a dataset, one image at a time. `engine infer --input`, the run report's example images and a demo use it.
// Also here: listing the JPEGs of an input path, the class names to label detections with, and detections.json.
using System.Text.Json;
using Engine.Config;
using Engine.Data.Imaging;
using Engine.Data.Imaging.Drawing;
using Engine.Data.Records;
using Engine.Data.Transforms;
using Engine.Detection;
using Engine.Detection.Modeling;
using Engine.Detection.Modeling.MetaArch;
using Engine.Lvis;

namespace Engine.Training.Detection;

/// <summary>The detections of one image in its original pixel coordinates: <see cref="Boxes"/> (R, 4) x1, y1, x2, y2
/// row-major, <see cref="Classes"/> (R) class indices in 0..K−1, <see cref="Scores"/> (R), highest first as the
/// detector returns them.</summary>
public sealed record ImageDetections(string Source, int Width, int Height, float[] Boxes, long[] Classes, float[] Scores)
{
    public int Count => Scores.Length;

    /// <summary>The detections DetectionOverlay draws with this threshold and limit, in that order (highest score first).</summary>
    public ImageDetections Top(double scoreThreshold, int maxDetections)
    {
        var keep = DetectionOverlay.Select(Boxes, Scores, scoreThreshold, maxDetections);
        return this with
        {
            Boxes = keep.SelectMany(i => Boxes.AsSpan(4 * i, 4).ToArray()).ToArray(),
            Classes = keep.Select(i => Classes[i]).ToArray(),
            Scores = keep.Select(i => Scores[i]).ToArray(),
        };
    }

    /// <summary>Draws these detections on <paramref name="image"/> (which must have this record's size) in place.</summary>
    public int Draw(Image image, IReadOnlyList<string>? classNames, OverlayOptions options)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Width != Width || image.Height != Height)
            throw new ArgumentException($"ImageDetections.Draw: the detections of '{Source}' are in a {Width}×{Height} image's coordinates, but the image to draw on is {image.Width}×{image.Height}.");
        return DetectionOverlay.Draw(image, Boxes, Classes, Scores, classNames, options);
    }
}

/// <summary>Names of the detector's classes (index k → Names[k]), the LVIS category ids when they are known, and
/// where the names came from (for messages).</summary>
public sealed record DetectionClasses(IReadOnlyList<string> Names, IReadOnlyList<int>? CategoryIds, string Source)
{
    /// <summary>"class 0", "class 1", …: no annotation file was available.</summary>
    public static DetectionClasses Generic(int count, string reason) =>
        new(Enumerable.Range(0, count).Select(k => $"class {k}").ToArray(), null, reason);

    /// <summary>The categories of an LVIS/COCO annotation file in ascending id order, the class order
    /// LvisRecords gives the detector; their number must equal <paramref name="numClasses"/>.</summary>
    public static DetectionClasses FromAnnotationFile(string jsonPath, int numClasses)
    {
        if (!File.Exists(jsonPath))
            throw new FileNotFoundException($"DetectionClasses: annotation file '{jsonPath}' does not exist; give an LVIS or COCO json whose categories are the model's classes.", jsonPath);
        var categories = LvisDatasetReader.Read(jsonPath, new LvisReadOptions { ReadSegmentation = false }).Categories.OrderBy(c => c.Id).ToList();
        if (categories.Count != numClasses)
            throw new ArgumentException($"DetectionClasses: '{jsonPath}' has {categories.Count} categories but the model has {numClasses} classes " +
                                        "(MODEL.ROI_HEADS.NUM_CLASSES); give the annotation file the model was trained with.");
        return new DetectionClasses(categories.Select(c => c.Name).ToArray(), categories.Select(c => c.Id).ToArray(), jsonPath);
    }

    /// <summary><paramref name="classesFile"/> when given; else the categories of the dataset DATASETS.TEST names when its
    /// annotation file exists; else generic "class k" names (Source then says why).</summary>
    public static DetectionClasses Resolve(EngineConfig config, string? classesFile)
    {
        ArgumentNullException.ThrowIfNull(config);
        var numClasses = config.Model.RoiHeads.NumClasses;
        if (classesFile is not null) return FromAnnotationFile(classesFile, numClasses);
        if (config.Datasets.Test.Count == 0)
            return Generic(numClasses, "DATASETS.TEST is empty and no class file was given, so classes are labelled by index");
        string json;
        try
        {
            json = config.Datasets.Resolve(config.Datasets.Test[0]).Json;
        }
        catch (ConfigException e)
        {
            return Generic(numClasses, $"{e.Message} No class file was given, so classes are labelled by index");
        }
        return File.Exists(json)
            ? FromAnnotationFile(json, numClasses)
            : Generic(numClasses, $"the DATASETS.TEST annotation file {Path.GetFullPath(json)} does not exist and no class file was given, so classes are labelled by index");
    }
}

public sealed class ImageInference : IDisposable
{
    private readonly GeneralizedRcnn _detector;
    private readonly bool _ownsDetector;
    private readonly TransformPipeline _transforms;
    private readonly Normalize _identity;

    /// <summary>Runs <paramref name="detector"/> (not owned; put in eval mode for each call and back after) with the
    /// test-time transform and channel order of <paramref name="input"/>.</summary>
    public ImageInference(GeneralizedRcnn detector, InputConfig input) : this(detector, input, ownsDetector: false)
    {
    }

    private ImageInference(GeneralizedRcnn detector, InputConfig input, bool ownsDetector)
    {
        ArgumentNullException.ThrowIfNull(detector);
        ArgumentNullException.ThrowIfNull(input);
        _detector = detector;
        _ownsDetector = ownsDetector;
        _transforms = DetectorTraining.InferenceTransforms(input);
        InputOrder = input.Format == PixelFormat.BGR ? PixelOrder.Bgr : PixelOrder.Rgb;
        // The detector subtracts PIXEL_MEAN and divides by PIXEL_STD itself; the batch carries raw pixels.
        _identity = new Normalize(InputOrder, [0, 0, 0], [1, 1, 1]);
    }

    /// <summary>The detector the config describes with the weights of <paramref name="weightsPath"/>; disposing this frees it.</summary>
    public static ImageInference Load(EngineConfig config, string weightsPath)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (!File.Exists(weightsPath))
            throw new FileNotFoundException($"ImageInference: weights file '{weightsPath}' does not exist (a run writes model_final.safetensors into its OUTPUT_DIR).", weightsPath);
        var device = DetectorTraining.ResolveDevice(config);
        // The initial values are replaced by the checkpoint; the seed only has to be a valid one.
        var detector = DetectorBuilder.FromConfig(config, new Generator(config.Seed >= 0 ? (ulong)config.Seed : 0));
        try
        {
            detector.Load(weightsPath);
            detector.To(device);
            detector.Eval();
            return new ImageInference(detector, config.Input, ownsDetector: true);
        }
        catch
        {
            detector.Dispose();
            throw;
        }
    }

    public GeneralizedRcnn Detector => _detector;

    /// <summary>The channel order the model takes (INPUT.FORMAT); images are converted to it.</summary>
    public PixelOrder InputOrder { get; }

    /// <summary>Decodes the JPEG at <paramref name="path"/> and runs the detector on it.</summary>
    public ImageDetections Run(string path) => Run(Jpeg.Decode(path, InputOrder), path);

    /// <summary>Detections of <paramref name="image"/> (any channel order) in its own pixel coordinates;
    /// <paramref name="source"/> names it in the result and in messages.</summary>
    public ImageDetections Run(Image image, string source = "image")
    {
        ArgumentNullException.ThrowIfNull(image);
        var record = new DatasetRecord(0, source, image.Height, image.Width, []);
        // The test-time transform is deterministic; the generator is only part of the transform interface.
        var sample = _transforms.Apply(new Sample(record, image.WithOrder(InputOrder), []), new Generator(0));
        var wasTraining = _detector.IsTraining;
        _detector.Eval();
        try
        {
            using var noGrad = GradMode.NoGrad();
            using var batch = ImageBatch.Collate([sample], _identity, sizeDivisibility: 32);
            using var images = new ImageList(batch.Images.To(_detector.Device), batch.ImageSizes, batch.OriginalSizes);
            var detections = _detector.Inference(images);
            try
            {
                var d = detections[0];
                return new ImageDetections(source, image.Width, image.Height, d.PredBoxes!.ToFloatArray(), d.PredClasses!.ToInt64Array(), d.Scores!.ToFloatArray());
            }
            finally
            {
                foreach (var d in detections) d.Dispose();
            }
        }
        finally
        {
            _detector.Train(wasTraining);
        }
    }

    /// <summary>The JPEG files an input path names: the file itself, or every *.jpg / *.jpeg directly in the folder
    /// (not its subfolders), sorted by name (ordinal).</summary>
    /// <exception cref="FileNotFoundException">the path is neither a file nor a folder.</exception>
    /// <exception cref="InvalidDataException">the file is not a JPEG, or the folder holds no JPEG.</exception>
    public static IReadOnlyList<string> ListImages(string inputPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(inputPath);
        if (Directory.Exists(inputPath))
        {
            var files = Directory.EnumerateFiles(inputPath)
                .Where(f => Path.GetExtension(f).ToLowerInvariant() is ".jpg" or ".jpeg")
                .Order(StringComparer.Ordinal)
                .ToList();
            if (files.Count == 0)
                throw new InvalidDataException($"ImageInference: folder '{inputPath}' holds no .jpg or .jpeg file (subfolders are not searched).");
            return files;
        }
        if (!File.Exists(inputPath))
            throw new FileNotFoundException($"ImageInference: input '{inputPath}' is neither a file nor a folder.", inputPath);
        Span<byte> head = stackalloc byte[3];
        int read;
        using (var stream = File.OpenRead(inputPath)) read = stream.ReadAtLeast(head, 3, throwOnEndOfStream: false);
        // Every JPEG starts with the SOI marker FF D8 followed by another marker (FF ..).
        if (read < 3 || head[0] != 0xFF || head[1] != 0xD8 || head[2] != 0xFF)
            throw new InvalidDataException($"ImageInference: '{inputPath}' is not a JPEG file (it does not start with the JPEG marker FF D8 FF); only JPEG images are read.");
        return [inputPath];
    }

    /// <summary>detections.json: per image its file, size and detections (box x1, y1, x2, y2 in its pixels, class index,
    /// category id when known, category name, score), plus the threshold and limit that selected them.</summary>
    public static void WriteJson(string path, IReadOnlyList<ImageDetections> images, DetectionClasses classes, double scoreThreshold, int maxDetections)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(classes);
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("score_thresh", scoreThreshold);
            w.WriteNumber("max_dets", maxDetections);
            w.WriteString("classes_from", classes.Source);
            w.WriteStartArray("images");
            foreach (var im in images)
            {
                w.WriteStartObject();
                w.WriteString("file", im.Source);
                w.WriteNumber("width", im.Width);
                w.WriteNumber("height", im.Height);
                w.WriteStartArray("detections");
                for (var k = 0; k < im.Count; k++)
                {
                    w.WriteStartObject();
                    w.WriteStartArray("box");
                    for (var j = 0; j < 4; j++) w.WriteNumberValue(im.Boxes[4 * k + j]);
                    w.WriteEndArray();
                    var cls = im.Classes[k];
                    w.WriteNumber("class", cls);
                    if (classes.CategoryIds is { } ids && cls >= 0 && cls < ids.Count) w.WriteNumber("category_id", ids[(int)cls]);
                    w.WriteString("category", DetectionOverlay.ClassName(classes.Names, cls));
                    w.WriteNumber("score", im.Scores[k]);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        AtomicFile.WriteAllBytes(path, buffer.ToArray());
    }

    public void Dispose()
    {
        if (_ownsDetector) _detector.Dispose();
    }
}
