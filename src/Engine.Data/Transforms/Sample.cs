// A sample on its way through the transforms: the decoded image and its instances in that image's
// current pixel coordinates. Transforms return new samples; records and their annotations are never
// modified, so a record can be read again in the next epoch.
using Engine.Data.Imaging;
using Engine.Data.Records;

namespace Engine.Data.Transforms;

public sealed record Sample(DatasetRecord Record, Image Image, IReadOnlyList<InstanceAnnotation> Instances)
{
    /// <summary>A sample of <paramref name="record"/> with its decoded <paramref name="image"/> and the record's instances.</summary>
    public static Sample FromRecord(DatasetRecord record, Image image)
    {
        if (image.Width != record.Width || image.Height != record.Height)
            throw new InvalidDataException(
                $"'{record.FilePath}' (image id {record.ImageId}) decodes to {image.Width}×{image.Height} but the dataset says {record.Width}×{record.Height}; " +
                "the annotations would not line up. Fix the dataset's width/height or the image file.");
        return new Sample(record, image, record.Instances);
    }
}

/// <summary>A step of the training-time augmentation. Randomness comes only from <paramref name="generator"/> in Apply, which the
/// loader derives from (seed, sample position), so results do not depend on threads or timing.</summary>
public interface ITransform
{
    Sample Apply(Sample sample, Generator generator);
}
