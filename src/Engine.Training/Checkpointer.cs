// Checkpoints that resume exactly. A checkpoint named N is three files in the output folder:
//   N.safetensors          the module's parameters and buffers (what inference and fine-tuning load)
//   N.trainer.safetensors  optimizer momentum buffers ("optimizer.{group}.{index}.momentum_buffer") and the
//                          components' tensors ("component.{name}.{tensor}")
//   N.trainer.json         the scalars: last completed iteration, batch-source position, every generator's
//                          seed and position, the components' JSON values
// Each file is written atomically, and the pointer file `last_checkpoint` (holding "N.safetensors") is
// written last, also atomically, so a crash during a save leaves the pointer on the previous complete
// checkpoint.
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Engine.Nn;
using Engine.Optim;
using Engine.Serialization;

namespace Engine.Training;

/// <summary>The scalars of a checkpoint. <paramref name="Iteration"/> is the last completed iteration (0-based);
/// a resumed run continues at Iteration + 1.</summary>
public sealed record TrainerState(
    long Iteration,
    long SourcePosition,
    IReadOnlyDictionary<string, (ulong Seed, ulong Position)> Generators,
    IReadOnlyDictionary<string, IReadOnlyDictionary<string, JsonNode?>> ComponentValues);

/// <summary>A checkpoint file is missing or unreadable; the message names the file.</summary>
public sealed class CheckpointException : Exception
{
    public CheckpointException(string message, Exception? inner = null) : base(message, inner) { }
}

public sealed class Checkpointer
{
    public const string PointerFile = "last_checkpoint";
    private const int FormatVersion = 1;

    public Checkpointer(string outputDir)
    {
        ArgumentException.ThrowIfNullOrEmpty(outputDir);
        OutputDir = Path.GetFullPath(outputDir);
    }

    public string OutputDir { get; }

    public static string WeightsFile(string name) => name + ".safetensors";
    public static string TrainerTensorsFile(string name) => name + ".trainer.safetensors";
    public static string TrainerJsonFile(string name) => name + ".trainer.json";

    /// <summary>Periodic checkpoints are named after the last completed iteration, zero-padded as detectron2 does.</summary>
    public static string PeriodicName(long iteration) => "model_" + iteration.ToString("D7", CultureInfo.InvariantCulture);

    /// <summary>Writes checkpoint <paramref name="name"/>; with <paramref name="updatePointer"/> last_checkpoint then
    /// points to it. Returns the weights file's path.</summary>
    public string Save(string name, Module module, Sgd optimizer, IReadOnlyDictionary<string, IStatefulComponent> components,
                       TrainerState state, bool updatePointer)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        Directory.CreateDirectory(OutputDir);
        var weights = Path.Combine(OutputDir, WeightsFile(name));
        module.Save(weights, new Dictionary<string, string> { ["iteration"] = state.Iteration.ToString(CultureInfo.InvariantCulture) });

        var owned = new List<IDisposable>();
        try
        {
            var tensors = new List<KeyValuePair<string, Tensor>>();
            var optimizerState = optimizer.StateDict();
            owned.Add(optimizerState);
            foreach (var (key, t) in optimizerState) tensors.Add(new("optimizer." + key, t));
            var componentValues = new JsonObject();
            foreach (var (componentName, component) in components)
            {
                var snapshot = component.SaveState();
                foreach (var t in snapshot.Tensors.Values) owned.Add(t);
                foreach (var (tensorName, t) in snapshot.Tensors) tensors.Add(new($"component.{componentName}.{tensorName}", t));
                var values = new JsonObject();
                foreach (var (k, v) in snapshot.Values) values[k] = v?.DeepClone();
                componentValues[componentName] = values;
            }
            SafeTensors.Save(Path.Combine(OutputDir, TrainerTensorsFile(name)), tensors);

            var generators = new JsonObject();
            foreach (var (g, (seed, position)) in state.Generators)
                generators[g] = new JsonObject { ["seed"] = seed, ["position"] = position };
            var json = new JsonObject
            {
                ["format"] = FormatVersion,
                ["iteration"] = state.Iteration,
                ["source_position"] = state.SourcePosition,
                ["generators"] = generators,
                ["components"] = componentValues,
            };
            AtomicFile.WriteAllText(Path.Combine(OutputDir, TrainerJsonFile(name)), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }
        finally
        {
            foreach (var d in owned) d.Dispose();
        }

        if (updatePointer) AtomicFile.WriteAllText(Path.Combine(OutputDir, PointerFile), WeightsFile(name) + "\n");
        return weights;
    }

    /// <summary>The weights file last_checkpoint points to, or null when the folder has no pointer.</summary>
    public string? FindLast()
    {
        var pointer = Path.Combine(OutputDir, PointerFile);
        if (!File.Exists(pointer)) return null;
        var target = File.ReadAllText(pointer).Trim();
        if (target.Length == 0 || target.Contains('/') || target.Contains('\\'))
            throw new CheckpointException($"Checkpoint pointer '{pointer}' is corrupt: it holds '{target}', expected a file name like 'model_0004999.safetensors'. Delete it to start afresh, or write the name of an existing checkpoint into it.");
        var weights = Path.Combine(OutputDir, target);
        if (!File.Exists(weights))
            throw new CheckpointException($"Checkpoint pointer '{pointer}' names '{target}', but '{weights}' does not exist. Restore the file or point last_checkpoint at another checkpoint.");
        return weights;
    }

    /// <summary>Loads the weights into <paramref name="module"/>, the optimizer's buffers, the components' state and
    /// the generators' positions from the checkpoint whose weights file is <paramref name="weightsPath"/>; returns
    /// its scalars. All three files must exist and the JSON must parse, and generator names and seeds must match,
    /// before anything changes; the module and optimizer each check their own keys and shapes before they load.</summary>
    public static TrainerState Load(string weightsPath, Module module, Sgd optimizer, IReadOnlyDictionary<string, IStatefulComponent> components,
                                    IReadOnlyDictionary<string, Generator> generators)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(weightsPath))!;
        var fileName = Path.GetFileName(weightsPath);
        if (!fileName.EndsWith(".safetensors", StringComparison.Ordinal))
            throw new CheckpointException($"Checkpoint '{weightsPath}': expected a weights file ending in .safetensors.");
        var name = fileName[..^".safetensors".Length];
        var jsonPath = Path.Combine(dir, TrainerJsonFile(name));
        var tensorsPath = Path.Combine(dir, TrainerTensorsFile(name));
        foreach (var required in new[] { weightsPath, jsonPath, tensorsPath })
            if (!File.Exists(required))
                throw new CheckpointException($"Checkpoint '{name}' is incomplete: '{required}' is missing. A resumable checkpoint has {WeightsFile(name)}, {TrainerTensorsFile(name)} and {TrainerJsonFile(name)}.");

        var state = ReadState(jsonPath);
        foreach (var (g, (seed, _)) in state.Generators)
        {
            if (!generators.TryGetValue(g, out var live))
                throw new CheckpointException($"Checkpoint '{jsonPath}' has generator '{g}', which the model does not expose (it has: {string.Join(", ", generators.Keys)}).");
            if (live.Seed != seed)
                throw new CheckpointException($"Checkpoint '{jsonPath}': generator '{g}' was seeded with {seed}, the live one with {live.Seed}; resume with the SEED of the original run.");
        }
        foreach (var g in generators.Keys)
            if (!state.Generators.ContainsKey(g))
                throw new CheckpointException($"Checkpoint '{jsonPath}' has no state for generator '{g}'; it was written by a different model.");

        StateDict trainerTensors;
        try
        {
            trainerTensors = SafeTensors.Load(tensorsPath);
        }
        catch (Exception e) when (e is not CheckpointException)
        {
            throw new CheckpointException($"Checkpoint file '{tensorsPath}' is unreadable: {e.Message}", e);
        }
        using (trainerTensors)
        {
            var optimizerState = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            var componentTensors = components.Keys.ToDictionary(k => k, _ => new Dictionary<string, Tensor>(StringComparer.Ordinal));
            foreach (var (key, t) in trainerTensors)
            {
                if (key.StartsWith("optimizer.", StringComparison.Ordinal)) optimizerState[key["optimizer.".Length..]] = t;
                else if (key.StartsWith("component.", StringComparison.Ordinal) && SplitComponentKey(key, components.Keys) is { } split)
                    componentTensors[split.Component][split.Tensor] = t;
                else
                    throw new CheckpointException($"Checkpoint file '{tensorsPath}' holds '{key}', which is neither optimizer state nor the state of a component of this model ({string.Join(", ", components.Keys)}).");
            }
            foreach (var c in state.ComponentValues.Keys)
                if (!components.ContainsKey(c))
                    throw new CheckpointException($"Checkpoint '{jsonPath}' has state for component '{c}', which the model does not expose.");

            try
            {
                module.Load(weightsPath);
            }
            catch (Exception e)
            {
                throw new CheckpointException($"Checkpoint weights '{weightsPath}' could not be loaded: {e.Message}", e);
            }
            try
            {
                optimizer.LoadStateDict(optimizerState);
            }
            catch (Exception e)
            {
                throw new CheckpointException($"Optimizer state in '{tensorsPath}' could not be loaded: {e.Message}", e);
            }
            foreach (var (c, component) in components)
            {
                var values = state.ComponentValues.TryGetValue(c, out var v) ? v : new Dictionary<string, JsonNode?>();
                component.LoadState(new ComponentState(componentTensors[c], values));
            }
        }
        foreach (var (g, (_, position)) in state.Generators) generators[g].Position = position;
        return state;
    }

    private static (string Component, string Tensor)? SplitComponentKey(string key, IEnumerable<string> components)
    {
        var rest = key["component.".Length..];
        // Component names may contain dots, so match the longest registered name that prefixes the key.
        foreach (var c in components.OrderByDescending(c => c.Length))
            if (rest.StartsWith(c + ".", StringComparison.Ordinal))
                return (c, rest[(c.Length + 1)..]);
        return null;
    }

    /// <summary>Parses N.trainer.json; a malformed file throws a CheckpointException naming it.</summary>
    public static TrainerState ReadState(string jsonPath)
    {
        try
        {
            var root = JsonNode.Parse(File.ReadAllText(jsonPath))?.AsObject()
                       ?? throw new CheckpointException($"Checkpoint file '{jsonPath}' is empty.");
            var format = root["format"]?.GetValue<int>();
            if (format != FormatVersion)
                throw new CheckpointException($"Checkpoint file '{jsonPath}' has format {format?.ToString(CultureInfo.InvariantCulture) ?? "(none)"}; this version reads format {FormatVersion}.");
            var generators = new Dictionary<string, (ulong, ulong)>(StringComparer.Ordinal);
            foreach (var (g, node) in Required(root, "generators", jsonPath).AsObject())
                generators[g] = (Required(node!.AsObject(), "seed", jsonPath).GetValue<ulong>(), Required(node.AsObject(), "position", jsonPath).GetValue<ulong>());
            var components = new Dictionary<string, IReadOnlyDictionary<string, JsonNode?>>(StringComparer.Ordinal);
            foreach (var (c, node) in Required(root, "components", jsonPath).AsObject())
                components[c] = node!.AsObject().ToDictionary(kv => kv.Key, kv => kv.Value?.DeepClone(), StringComparer.Ordinal);
            return new TrainerState(Required(root, "iteration", jsonPath).GetValue<long>(), Required(root, "source_position", jsonPath).GetValue<long>(),
                                    generators, components);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or IOException)
        {
            throw new CheckpointException($"Checkpoint file '{jsonPath}' is corrupt: {e.Message}", e);
        }
    }

    private static JsonNode Required(JsonObject obj, string key, string path) =>
        obj[key] ?? throw new CheckpointException($"Checkpoint file '{path}' lacks \"{key}\".");
}
