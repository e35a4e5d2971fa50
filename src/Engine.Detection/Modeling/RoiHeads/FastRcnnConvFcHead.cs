// The box head of the FPN Faster R-CNN, as detectron2's FastRCNNConvFCHead with NUM_FC = 2: the pooled RoI
// features (R, C, Ph, Pw) flattened and passed through FC + ReLU layers "fc1", "fc2", … of FcDim outputs. The
// last layer's output (R, FcDim) is the RoI embedding that the predictor (and the embedding augmenter) sees.
// Weights c2_xavier_fill (U(±sqrt(3 / fan_in))), biases 0, as detectron2.
using Engine.Nn;

namespace Engine.Detection.Modeling.RoiHeads;

public sealed class FastRcnnConvFcHead : Module<Tensor, Tensor>
{
    private readonly List<Linear> _fcs = [];

    /// <param name="inputShape">(C, Ph, Pw) of the pooled features.</param>
    public FastRcnnConvFcHead((int Channels, int Height, int Width) inputShape, int numFc, int fcDim, Generator generator)
    {
        if (numFc <= 0 || fcDim <= 0) throw new ArgumentException($"FastRcnnConvFcHead: numFc {numFc} and fcDim {fcDim} must be positive.");
        var inDim = inputShape.Channels * inputShape.Height * inputShape.Width;
        if (inDim <= 0) throw new ArgumentException($"FastRcnnConvFcHead: input shape {inputShape} must be positive.");
        for (var k = 0; k < numFc; k++)
        {
            var fc = new Linear(k == 0 ? inDim : fcDim, fcDim, generator);
            Init.KaimingUniform(fc.Weight, generator, a: 1);
            Init.Zeros(fc.Bias!);
            _fcs.Add(RegisterModule($"fc{k + 1}", fc));
        }
        InputShape = inputShape;
        OutputDim = fcDim;
    }

    public (int Channels, int Height, int Width) InputShape { get; }
    public int OutputDim { get; }

    /// <param name="x">(R, C, Ph, Pw)</param>
    /// <returns>(R, FcDim) RoI embeddings.</returns>
    public override Tensor Forward(Tensor x)
    {
        var h = x.Flatten(1);
        foreach (var fc in _fcs)
        {
            using var input = h;
            using var linear = fc.Forward(input);
            h = linear.Relu();
        }
        return h;
    }
}
