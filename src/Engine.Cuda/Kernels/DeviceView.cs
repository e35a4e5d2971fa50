// A strided float32 view of a device buffer, the way kernel launchers receive their inputs:
// element (i0, ..., in) lives at Offset + Σ i_d · Strides[d]. Construction checks that every element
// the view can address lies inside the buffer, so a launch can never read outside its allocation.
namespace Engine.Cuda.Kernels;

public readonly struct DeviceView
{
    public DeviceView(DeviceBuffer<float> buffer, long[] shape, long[]? strides = null, long offset = 0)
    {
        strides ??= ElementwiseLayout.ContiguousStrides(shape);
        if (strides.Length != shape.Length)
            throw new ArgumentException(
                $"DeviceView: strides {ElementwiseLayout.Format(strides)} and shape {ElementwiseLayout.Format(shape)} differ in rank.");
        long count = 1, lowest = offset, highest = offset;
        for (var d = 0; d < shape.Length; d++)
        {
            if (shape[d] < 0)
                throw new ArgumentException($"DeviceView: shape {ElementwiseLayout.Format(shape)} has a negative extent.");
            count = checked(count * shape[d]);
            var reach = checked(strides[d] * Math.Max(shape[d] - 1, 0));
            if (reach < 0) lowest += reach;
            else highest += reach;
        }
        if (count > 0 && (lowest < 0 || highest >= buffer.Length))
            throw new ArgumentException(
                $"DeviceView: shape {ElementwiseLayout.Format(shape)}, strides {ElementwiseLayout.Format(strides)} and offset {offset} " +
                $"address elements {lowest}..{highest}, outside the buffer of {buffer.Length} elements.");
        Buffer = buffer;
        Shape = shape;
        Strides = strides;
        Offset = offset;
        Count = count;
    }

    public DeviceBuffer<float> Buffer { get; }
    public long[] Shape { get; }
    public long[] Strides { get; }
    public long Offset { get; }
    public long Count { get; }

    /// <summary>The CUdeviceptr of the view's element at Offset.</summary>
    public ulong Address => Buffer.Pointer + (ulong)(Offset * sizeof(float));

    /// <summary>A dense row-major view of the whole buffer (or its first elements) with <paramref name="shape"/>.</summary>
    public static DeviceView Dense(DeviceBuffer<float> buffer, params long[] shape) => new(buffer, shape);
}
