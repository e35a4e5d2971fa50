// detectron2's convolution initializers (fvcore.nn.weight_init), applied after a Conv2d is built:
//   c2_msra_fill:   weight ~ N(0, 2 / fan_out), fan_out = out·kh·kw (He et al. 2015, "fan_out", ReLU gain √2); bias 0
//   c2_xavier_fill: weight ~ U(−b, b), b = sqrt(3 / fan_in) (kaiming_uniform with a = 1, i.e. gain 1); bias 0
// The names come from Caffe2's MSRAFill and XavierFill, whose formulas these reproduce.
using Engine.Nn;

namespace Engine.Detection.Modeling.Backbone;

public static class C2Init
{
    /// <summary>Re-initializes <paramref name="conv"/> as c2_msra_fill (used by every ResNet conv).</summary>
    public static Conv2d MsraFill(Conv2d conv, Generator generator)
    {
        Init.KaimingNormal(conv.Weight, generator, mode: FanMode.FanOut, nonlinearity: Nonlinearity.Relu);
        if (conv.Bias is { } b) Init.Zeros(b);
        return conv;
    }

    /// <summary>Re-initializes <paramref name="conv"/> as c2_xavier_fill (used by the FPN convs).</summary>
    public static Conv2d XavierFill(Conv2d conv, Generator generator)
    {
        Init.KaimingUniform(conv.Weight, generator, a: 1);
        if (conv.Bias is { } b) Init.Zeros(b);
        return conv;
    }
}
