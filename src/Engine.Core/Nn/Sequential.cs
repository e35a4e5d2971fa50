// A chain of layers applied in order. Children are named "0", "1", ... (or by the caller), which gives
// detectron2's names for stages built from blocks ("res2.0.conv1.weight").
namespace Engine.Nn;

public sealed class Sequential : Module<Tensor, Tensor>
{
    private readonly List<Module<Tensor, Tensor>> _layers = [];

    public Sequential(params Module<Tensor, Tensor>[] layers)
        : this(layers.Select((l, i) => (i.ToString(System.Globalization.CultureInfo.InvariantCulture), l)))
    {
    }

    public Sequential(IEnumerable<(string Name, Module<Tensor, Tensor> Layer)> layers)
    {
        foreach (var (name, layer) in layers) _layers.Add(RegisterModule(name, layer));
    }

    public int Count => _layers.Count;

    public Module<Tensor, Tensor> this[int index] => _layers[index];

    /// <summary>Runs the layers in order; intermediate results are disposed as soon as the next layer has used them
    /// (autograd keeps what it saved).</summary>
    public override Tensor Forward(Tensor input)
    {
        var x = input;
        foreach (var layer in _layers)
        {
            var y = layer.Forward(x);
            if (!ReferenceEquals(x, input) && !ReferenceEquals(x, y)) x.Dispose();
            x = y;
        }
        return ReferenceEquals(x, input) ? input.Reshape(input.ShapeArray()) : x; // a new view, so caller and result dispose independently
    }
}
