// max(x, 0) as a layer, for Sequential chains.
namespace Engine.Nn;

public sealed class ReLU : Module<Tensor, Tensor>
{
    public override Tensor Forward(Tensor input) => input.Relu();
}
