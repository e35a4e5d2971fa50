// 2-D convolution layer over NCHW input, optionally followed by a normalization layer (registered as the
// child "norm", as detectron2's Conv2d wrapper does, so checkpoint names match) and a ReLU; a FrozenBatchNorm2d and
// its ReLU run as one pass (FrozenBatchNorm2d.Forward(x, relu: true)).
// Default initialization is PyTorch's: weight kaiming-uniform with a = √5 (bound = 1/√fan_in), bias uniform
// in ±1/√fan_in; detection code re-initializes with Init.* where its recipe differs (MSRA fill, Xavier fill).
namespace Engine.Nn;

public sealed class Conv2d : Module<Tensor, Tensor>
{
    public Conv2d(int inChannels, int outChannels, int kernelSize, Generator generator, int stride = 1, int padding = 0,
                  int dilation = 1, int groups = 1, bool bias = true, Module<Tensor, Tensor>? norm = null, bool relu = false)
    {
        if (inChannels <= 0 || outChannels <= 0 || kernelSize <= 0 || groups <= 0 || inChannels % groups != 0 || outChannels % groups != 0)
            throw new ArgumentException($"Conv2d({inChannels} → {outChannels}, k={kernelSize}, groups={groups}): channel counts must be positive multiples of groups and the kernel positive.");
        (InChannels, OutChannels, KernelSize, Stride, Padding, Dilation, Groups, Relu) =
            (inChannels, outChannels, kernelSize, stride, padding, dilation, groups, relu);
        var w = Tensor.Empty([outChannels, inChannels / groups, kernelSize, kernelSize]);
        Init.KaimingUniform(w, generator, a: Math.Sqrt(5));
        Weight = RegisterParameter("weight", w);
        if (bias)
        {
            var fanIn = (double)inChannels / groups * kernelSize * kernelSize;
            Bias = RegisterParameter("bias", Init.Uniform(Tensor.Empty([outChannels]), generator, -1 / Math.Sqrt(fanIn), 1 / Math.Sqrt(fanIn)));
        }
        if (norm is not null) Norm = RegisterModule("norm", norm);
    }

    public int InChannels { get; }
    public int OutChannels { get; }
    public int KernelSize { get; }
    public int Stride { get; }
    public int Padding { get; }
    public int Dilation { get; }
    public int Groups { get; }
    public bool Relu { get; }
    public Parameter Weight { get; }
    public Parameter? Bias { get; }
    public Module<Tensor, Tensor>? Norm { get; }

    /// <param name="input">(N, InChannels, H, W) → (N, OutChannels, Ho, Wo)</param>
    public override Tensor Forward(Tensor input)
    {
        var y = Tensor.Conv2d(input, Weight, Bias?.Value, Stride, Padding, Dilation, Groups);
        if (Norm is FrozenBatchNorm2d frozen && Relu)
            using (y) return frozen.Forward(y, relu: true);   // the norm and its ReLU in one pass
        if (Norm is not null)
        {
            var normalized = Norm.Forward(y);
            y.Dispose();
            y = normalized;
        }
        if (!Relu) return y;
        using (y) return y.Relu();
    }
}
