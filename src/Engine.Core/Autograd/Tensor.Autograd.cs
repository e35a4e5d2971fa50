// The public face of autograd on a tensor.
namespace Engine;

public sealed partial class Tensor
{
    /// <summary>Computes gradients of this tensor (a scalar, or with an explicit output gradient) with respect to
    /// every leaf that requires grad, accumulating (+=) into their Grad. Frees the graph unless retainGraph.</summary>
    public void Backward(Tensor? gradient = null, bool retainGraph = false) =>
        Autograd.Tape.Backward(this, gradient, retainGraph);

    /// <summary>Marks this leaf as requiring grad and returns it.</summary>
    public Tensor RequireGrad()
    {
        RequiresGrad = true;
        return this;
    }
}
