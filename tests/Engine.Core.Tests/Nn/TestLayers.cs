// Small layers for the nn, optim and serialization tests, built from existing tensor ops the way real
// layers are: a per-feature affine map and a dense layer (matrix product as broadcast multiply + sum).
using Engine.Nn;

namespace Engine.Tests.Nn;

/// <summary>y = x·weight + bias over the last dim of x.</summary>
public sealed class Affine : Module<Tensor, Tensor>
{
    public Affine(int features)
    {
        Weight = RegisterParameter("weight", Tensor.Ones([features]));
        Bias = RegisterParameter("bias", Tensor.Zeros([features]));
    }

    public Parameter Weight { get; }
    public Parameter Bias { get; }

    public override Tensor Forward(Tensor input)
    {
        using var scaled = input.Mul(Weight);
        return scaled.Add(Bias);
    }
}

/// <summary>y = x Wᵀ + b for x (B, in), W (out, in), b (out); Kaiming-uniform weight (ReLU gain), zero bias.</summary>
public sealed class Dense : Module<Tensor, Tensor>
{
    public Dense(int inFeatures, int outFeatures, Generator generator)
    {
        Weight = RegisterParameter("weight", Tensor.Empty([outFeatures, inFeatures]));
        Bias = RegisterParameter("bias", Tensor.Zeros([outFeatures]));
        Init.KaimingUniform(Weight, generator, nonlinearity: Nonlinearity.Relu);
    }

    public Parameter Weight { get; }
    public Parameter Bias { get; }

    public override Tensor Forward(Tensor input)
    {
        using var x = input.Unsqueeze(1);                 // (B, 1, in)
        using var w = Weight.Value.Unsqueeze(0);          // (1, out, in)
        using var products = x.Mul(w);                    // (B, out, in)
        using var sums = products.Sum(2);                 // (B, out)
        return sums.Add(Bias);
    }
}

/// <summary>A module with a parameter and children but no forward: for naming tests.</summary>
public sealed class Holder : Module
{
    public Holder(int channels, params (string Name, Module Child)[] children)
    {
        Weight = RegisterParameter("weight", Tensor.Ones([channels]));
        foreach (var (name, child) in children) RegisterModule(name, child);
    }

    public Parameter Weight { get; }

    public void Add(string name, Module child) => RegisterModule(name, child);

    public void AddParameter(string name, Tensor value) => RegisterParameter(name, value);

    public void AddBuffer(string name, Tensor value) => RegisterBuffer(name, value);
}
