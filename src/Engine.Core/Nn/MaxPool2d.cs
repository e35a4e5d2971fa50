// Max pooling over NCHW input as a layer (the ResNet stem uses 3/2/1; FPN's P6 uses 1/2/0).
namespace Engine.Nn;

public sealed class MaxPool2d(int kernelSize, int stride, int padding = 0) : Module<Tensor, Tensor>
{
    public int KernelSize { get; } = kernelSize;
    public int Stride { get; } = stride;
    public int Padding { get; } = padding;

    public override Tensor Forward(Tensor input) => input.MaxPool2d(KernelSize, Stride, Padding);
}
