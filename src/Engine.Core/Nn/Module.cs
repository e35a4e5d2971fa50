// The base of every layer: a tree of named children, parameters and buffers. Names compose with dots in
// registration order, own entries first, exactly as PyTorch and detectron2 name them
// ("backbone.res2.0.conv1.weight"), so converted checkpoints load by name. A module takes its
// hyper-parameters as explicit constructor arguments; nothing here reads configuration.
//
// A concrete layer is a short class:
//
//   public sealed class Scale : Module<Tensor, Tensor>
//   {
//       public Scale(int channels) => Weight = RegisterParameter("weight", Tensor.Ones([channels]));
//       public Parameter Weight { get; }
//       public override Tensor Forward(Tensor x) { using var w = Weight.Value.Reshape(1, -1, 1, 1); return x.Mul(w); }
//   }
using System.Text.RegularExpressions;
using Engine.Serialization;

namespace Engine.Nn;

/// <summary>Keys that a non-strict load skipped (strict loads throw instead).</summary>
public sealed record LoadResult(IReadOnlyList<string> MissingKeys, IReadOnlyList<string> UnexpectedKeys);

public abstract class Module : IDisposable
{
    private readonly List<(string Name, Module Module)> _children = [];
    private readonly List<Parameter> _parameters = [];
    private readonly List<ModuleBuffer> _buffers = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    /// <summary>Training mode (the default) or evaluation mode; set for the whole subtree by Train/Eval.</summary>
    public bool IsTraining { get; private set; } = true;

    // ---- registration (called from constructors) ----

    protected T RegisterModule<T>(string name, T module) where T : Module
    {
        ArgumentNullException.ThrowIfNull(module);
        ClaimName(name, "RegisterModule");
        if (ReferenceEquals(module, this) || module.NamedModules().Any(m => ReferenceEquals(m.Module, this)))
            throw new ArgumentException($"RegisterModule '{name}': a module cannot contain itself.");
        _children.Add((name, module));
        return module;
    }

    /// <summary>Registers <paramref name="value"/> (ownership passes to this module) as a trainable parameter.</summary>
    protected Parameter RegisterParameter(string name, Tensor value, bool frozen = false)
    {
        ClaimName(name, "RegisterParameter");
        var p = new Parameter(name, value, frozen);
        _parameters.Add(p);
        return p;
    }

    /// <summary>Registers <paramref name="value"/> (ownership passes to this module) as non-trainable saved state.</summary>
    protected ModuleBuffer RegisterBuffer(string name, Tensor value)
    {
        ClaimName(name, "RegisterBuffer");
        var b = new ModuleBuffer(name, value);
        _buffers.Add(b);
        return b;
    }

    private void ClaimName(string name, string op)
    {
        CheckLocalName(name, op);
        if (!_names.Add(name))
            throw new ArgumentException($"{op}: '{name}' is already a child, parameter or buffer of {GetType().Name}; names must be unique within a module.");
    }

    internal static void CheckLocalName(string name, string op)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.'))
            throw new ArgumentException($"{op}: invalid name '{name}': names are non-empty and contain no '.' (dots join the names of nested modules).");
    }

    // ---- traversal ----

    public IEnumerable<(string Name, Module Module)> NamedChildren() => _children;

    /// <summary>This module (name "") and every descendant, depth first, with dotted names.</summary>
    public IEnumerable<(string Name, Module Module)> NamedModules()
    {
        var seen = new HashSet<Module>(ReferenceEqualityComparer.Instance);
        return Walk("", this, seen);

        static IEnumerable<(string, Module)> Walk(string prefix, Module m, HashSet<Module> seen)
        {
            if (!seen.Add(m)) yield break;
            yield return (prefix, m);
            foreach (var (name, child) in m._children)
                foreach (var item in Walk(Join(prefix, name), child, seen))
                    yield return item;
        }
    }

    /// <summary>The parameters registered on this module itself (not its children).</summary>
    public IReadOnlyList<Parameter> LocalParameters => _parameters;

    public IReadOnlyList<ModuleBuffer> LocalBuffers => _buffers;

    /// <summary>Every parameter of the subtree with its dotted name; a parameter shared by two modules appears once.</summary>
    public IEnumerable<(string Name, Parameter Parameter)> NamedParameters(bool trainableOnly = false)
    {
        var seen = new HashSet<Parameter>(ReferenceEqualityComparer.Instance);
        foreach (var (prefix, m) in NamedModules())
            foreach (var p in m._parameters)
                if (seen.Add(p) && (!trainableOnly || !p.Frozen))
                    yield return (Join(prefix, p.Name), p);
    }

    public IEnumerable<(string Name, ModuleBuffer Buffer)> NamedBuffers()
    {
        var seen = new HashSet<ModuleBuffer>(ReferenceEqualityComparer.Instance);
        foreach (var (prefix, m) in NamedModules())
            foreach (var b in m._buffers)
                if (seen.Add(b))
                    yield return (Join(prefix, b.Name), b);
    }

    public IReadOnlyList<Parameter> Parameters(bool trainableOnly = false) =>
        NamedParameters(trainableOnly).Select(p => p.Parameter).ToList();

    private static string Join(string prefix, string name) => prefix.Length == 0 ? name : prefix + "." + name;

    // ---- modes, freezing, devices ----

    public Module Train(bool mode = true)
    {
        foreach (var (_, m) in NamedModules()) m.IsTraining = mode;
        return this;
    }

    public Module Eval() => Train(false);

    /// <summary>Freezes every parameter whose dotted name matches the glob <paramref name="pattern"/> and returns
    /// how many matched. Globs match the whole name: <c>*</c> matches within one dotted segment, <c>**</c> any
    /// number of segments (<c>backbone.**</c>, <c>**.bias</c>, <c>roi_heads.box_predictor.*</c>). A pattern
    /// that matches nothing throws, so a misspelt name in a schedule does not silently train everything.</summary>
    public int Freeze(string pattern) => SetFrozen(pattern, true, "Freeze");

    /// <summary>Unfreezes the parameters matching <paramref name="pattern"/> (same glob rules as Freeze).</summary>
    public int Unfreeze(string pattern) => SetFrozen(pattern, false, "Unfreeze");

    private int SetFrozen(string pattern, bool frozen, string op)
    {
        var regex = NamePattern.ToRegex(pattern);
        var all = NamedParameters().ToList();
        var count = 0;
        foreach (var (name, p) in all)
            if (regex.IsMatch(name))
            {
                p.Frozen = frozen;
                count++;
            }
        if (count == 0)
            throw new ArgumentException($"{op}: pattern '{pattern}' matched none of the {all.Count} parameters of {GetType().Name}" +
                                        (all.Count > 0 ? $" (names look like '{all[0].Name}', '{all[^1].Name}'); use * within a segment and ** across segments." : "."));
        return count;
    }

    /// <summary>Moves every parameter and buffer to <paramref name="device"/> in place (objects keep their identity).</summary>
    public Module To(Device device)
    {
        foreach (var (_, p) in NamedParameters()) p.MoveTo(device);
        foreach (var (_, b) in NamedBuffers()) b.MoveTo(device);
        return this;
    }

    // ---- state ----

    /// <summary>Parameters then buffers under their dotted names, as aliases sharing the module's memory
    /// (no autograd link). Disposing the returned dict leaves the module intact.</summary>
    public StateDict StateDict()
    {
        var dict = new StateDict();
        using (DisposeScope.Suspend())
        {
            foreach (var (name, p) in NamedParameters()) dict.Add(name, p.Value.Detach());
            foreach (var (name, b) in NamedBuffers()) dict.Add(name, b.Value.Detach());
        }
        return dict;
    }

    /// <summary>Copies tensors into the parameters and buffers of the same name. Every key is checked before anything
    /// is written: a shape or dtype mismatch always throws (naming the key and both shapes); missing and unexpected keys
    /// throw when <paramref name="strict"/>, and are returned otherwise.</summary>
    public LoadResult LoadStateDict(IReadOnlyDictionary<string, Tensor> dict, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(dict);
        return LoadCore(dict.Keys.ToList(), k => (dict[k].ShapeArray(), dict[k].DType), k => dict[k].Alias(), strict, "state dict");
    }

    /// <summary>Writes the state dict to a safetensors file atomically (see SafeTensors.Save).</summary>
    public void Save(string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var dict = StateDict();
        SafeTensors.Save(path, dict, metadata);
    }

    /// <summary>Loads a safetensors file (F16/BF16 converted to float32): checks every key against the header first,
    /// then reads one tensor at a time straight into its parameter.</summary>
    public LoadResult Load(string path, bool strict = true)
    {
        using var file = SafeTensorsFile.Open(path);
        return LoadCore(file.Entries.Select(e => e.Name).ToList(), k => (file[k].Shape, file[k].TensorDType), k => file.Read(k), strict, $"'{path}'");
    }

    private LoadResult LoadCore(IReadOnlyList<string> keys, Func<string, (int[] Shape, DType DType)> describe,
                                Func<string, Tensor> read, bool strict, string source)
    {
        var targets = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, p) in NamedParameters()) targets[name] = p.Value;
        foreach (var (name, b) in NamedBuffers()) targets[name] = b.Value;
        var present = new HashSet<string>(keys, StringComparer.Ordinal);
        var missing = targets.Keys.Where(k => !present.Contains(k)).ToList();
        var unexpected = keys.Where(k => !targets.ContainsKey(k)).ToList();

        var errors = new List<string>();
        var matched = keys.Where(targets.ContainsKey).ToList();
        foreach (var key in matched)
        {
            var (shape, dtype) = describe(key);
            var target = targets[key];
            if (!target.Shape.SequenceEqual(shape))
                errors.Add($"shape mismatch for '{key}': {source} has {ShapeUtil.Format(shape)}, the module has {ShapeUtil.Format(target.Shape)}");
            else if (dtype != target.DType)
                errors.Add($"dtype mismatch for '{key}': {source} has {dtype.Name()}, the module has {target.DType.Name()}");
        }
        if (strict)
        {
            if (missing.Count > 0) errors.Add($"{missing.Count} missing key(s) (in the module, not in {source}): {List(missing)}");
            if (unexpected.Count > 0) errors.Add($"{unexpected.Count} unexpected key(s) (in {source}, not in the module): {List(unexpected)}");
        }
        if (errors.Count > 0)
            throw new InvalidOperationException($"LoadStateDict into {GetType().Name} from {source} failed, nothing was loaded:\n  " +
                                                string.Join("\n  ", errors) +
                                                (strict && (missing.Count > 0 || unexpected.Count > 0) ? "\nPass strict: false to load only the matching keys, or rename the keys." : ""));

        using (GradMode.NoGrad())
            foreach (var key in matched)
            {
                using var src = read(key);
                targets[key].CopyFrom(src);
            }
        return new LoadResult(missing, unexpected);
    }

    private static string List(List<string> names) =>
        string.Join(", ", names.Take(20).Select(n => $"'{n}'")) + (names.Count > 20 ? $", … ({names.Count - 20} more)" : "");

    // ---- lifetime ----

    /// <summary>Disposes the parameters and buffers of the whole subtree, and what each module derived from them
    /// (<see cref="ReleaseDerived"/>).</summary>
    public void Dispose()
    {
        foreach (var (_, m) in NamedModules()) m.ReleaseDerived();
        foreach (var (_, p) in NamedParameters()) p.Dispose();
        foreach (var (_, b) in NamedBuffers()) b.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases tensors a module keeps besides its parameters and buffers (values derived from them and
    /// cached between calls); <see cref="Dispose"/> calls it for every module of the subtree.</summary>
    protected virtual void ReleaseDerived()
    {
    }
}

/// <summary>A module with one forward signature; layers that chain (Sequential) are Module&lt;Tensor, Tensor&gt;.</summary>
public abstract class Module<TIn, TOut> : Module
{
    public abstract TOut Forward(TIn input);
}

/// <summary>Glob patterns over dotted names: <c>*</c> = any run of characters without a dot, <c>**</c> = anything
/// (<c>a.**</c> also matches <c>a</c>'s direct entries, <c>**.b</c> also matches a top-level <c>b</c>).</summary>
public static class NamePattern
{
    public static Regex ToRegex(string pattern)
    {
        if (string.IsNullOrEmpty(pattern)) throw new ArgumentException("Name pattern is empty; use '**' to match every name.");
        var sb = new System.Text.StringBuilder("^");
        for (var i = 0; i < pattern.Length;)
        {
            if (string.CompareOrdinal(pattern, i, ".**", 0, 3) == 0 && i + 3 == pattern.Length) { sb.Append(@"(?:\..*)?"); i += 3; }
            else if (string.CompareOrdinal(pattern, i, "**.", 0, 3) == 0) { sb.Append(@"(?:.*\.)?"); i += 3; }
            else if (string.CompareOrdinal(pattern, i, "**", 0, 2) == 0) { sb.Append(".*"); i += 2; }
            else if (pattern[i] == '*') { sb.Append("[^.]*"); i++; }
            else { sb.Append(Regex.Escape(pattern[i].ToString())); i++; }
        }
        return new Regex(sb.Append('$').ToString(), RegexOptions.CultureInvariant);
    }
}
