// Trainable and non-trainable state owned by a module. A Parameter is a named leaf tensor that requires
// grad unless frozen; a ModuleBuffer is named state that is saved and moved with the module but never
// trained (FrozenBatchNorm2d statistics). Both hold their tensor outside every DisposeScope: the module
// owns it and disposes it. Both convert implicitly to Tensor, so module code reads `x.Mul(Weight)`.
namespace Engine.Nn;

public sealed class Parameter : IDisposable
{
    /// <summary>Takes ownership of <paramref name="value"/> (removed from its DisposeScope) and makes it a
    /// trainable leaf; <paramref name="frozen"/> leaves it without gradient.</summary>
    public Parameter(string name, Tensor value, bool frozen = false)
    {
        Module.CheckLocalName(name, "Parameter");
        ArgumentNullException.ThrowIfNull(value);
        if (!value.IsLeaf)
            throw new ArgumentException($"Parameter '{name}': the tensor is the result of an op (it has a gradient function); pass a leaf, e.g. value.Detach().");
        if (!value.DType.IsFloatingPoint())
            throw new ArgumentException($"Parameter '{name}': parameters must be floating point, got {value.DType.Name()}; use a ModuleBuffer for integer state.");
        Name = name;
        Value = value.DetachFromScope();
        Frozen = frozen;
    }

    /// <summary>The name within the owning module ("weight"); dotted paths come from Module.NamedParameters.</summary>
    public string Name { get; }

    public Tensor Value { get; private set; }

    /// <summary>Gradient accumulated by Backward, null before the first backward or after ZeroGrad.</summary>
    public Tensor? Grad => Value.Grad;

    public bool RequiresGrad => Value.RequiresGrad;

    /// <summary>A frozen parameter does not require grad, receives no gradient and is skipped by optimizers.</summary>
    public bool Frozen
    {
        get => !Value.RequiresGrad;
        set
        {
            Value.RequiresGrad = !value;
            if (value) Value.ZeroGrad();
        }
    }

    public ReadOnlySpan<int> Shape => Value.Shape;

    public static implicit operator Tensor(Parameter p) => p.Value;

    /// <summary>Moves the value (and its gradient) to <paramref name="device"/>; identity is kept, so optimizers
    /// holding this parameter see the moved tensor.</summary>
    internal void MoveTo(Device device)
    {
        if (Value.Device == device) return;
        var frozen = Frozen;
        Tensor moved;
        Tensor? grad = null;
        using (GradMode.NoGrad())
        using (DisposeScope.Suspend())
        {
            moved = Value.To(device);
            if (Value.Grad is { } g) grad = g.To(device);
        }
        Value.Dispose();
        Value = moved;
        Value.RequiresGrad = !frozen;
        Value.Grad = grad;
    }

    public void Dispose() => Value.Dispose();

    public override string ToString() => $"Parameter '{Name}' {ShapeUtil.Format(Value.Shape)}{(Frozen ? " frozen" : "")}";
}

public sealed class ModuleBuffer : IDisposable
{
    /// <summary>Takes ownership of <paramref name="value"/> (removed from its DisposeScope).</summary>
    public ModuleBuffer(string name, Tensor value)
    {
        Module.CheckLocalName(name, "ModuleBuffer");
        ArgumentNullException.ThrowIfNull(value);
        if (value.RequiresGrad)
            throw new ArgumentException($"ModuleBuffer '{name}': buffers are not trained; pass a tensor that does not require grad (Detach() it).");
        Name = name;
        Value = value.DetachFromScope();
    }

    public string Name { get; }

    public Tensor Value { get; private set; }

    public static implicit operator Tensor(ModuleBuffer b) => b.Value;

    internal void MoveTo(Device device)
    {
        if (Value.Device == device) return;
        Tensor moved;
        using (GradMode.NoGrad())
        using (DisposeScope.Suspend())
            moved = Value.To(device);
        Value.Dispose();
        Value = moved;
    }

    public void Dispose() => Value.Dispose();

    public override string ToString() => $"ModuleBuffer '{Name}' {ShapeUtil.Format(Value.Shape)} {Value.DType.Name()}";
}
