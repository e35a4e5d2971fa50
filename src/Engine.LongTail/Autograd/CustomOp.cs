// Records the long-tail ops (fused losses, group softmax) on Engine.Core's autograd tape. Engine.Core keeps
// Tape.Record and Node.Save internal and has no public entry point for an op with a hand-written backward,
// so this class binds to those two members once, through DynamicMethod stubs that skip the visibility check,
// and offers them with public types. The op pattern is Engine.Core's own: the forward computes under no
// tape, Record links the output to its inputs, tensors the backward needs are saved through the node (the
// caller may dispose the originals), and the backward returns fresh gradients or null. When Engine.Core
// exposes the tape publicly, Record and Save here become direct calls and no op changes.
using System.Reflection;
using System.Reflection.Emit;

namespace Engine.LongTail.Autograd;

/// <summary>Saves a tensor on the node being recorded; the backward must use the returned alias.</summary>
public delegate Tensor SaveForBackward(Tensor t);

public static class CustomOp
{
    private delegate void RecordStub(Tensor output, string op, Tensor[] inputs, Delegate build);

    private delegate Tensor SaveStub(object node, Tensor t);

    private static readonly Lazy<(RecordStub Record, SaveStub Save, Type BuildType)> Stubs = new(Bind);

    /// <summary>True when the tape is on and some input requires grad.</summary>
    public static bool IsNeeded(params ReadOnlySpan<Tensor> inputs)
    {
        if (!GradMode.IsEnabled) return false;
        foreach (var t in inputs)
            if (t.RequiresGrad) return true;
        return false;
    }

    /// <summary>Links <paramref name="output"/> to <paramref name="inputs"/>. <paramref name="build"/> runs now, saves
    /// what the backward needs through the saver it is given, and returns the backward closure (output gradient →
    /// one gradient or null per input, in the order of <paramref name="inputs"/>).</summary>
    public static void Record(Tensor output, string op, Tensor[] inputs, Func<SaveForBackward, Func<Tensor, Tensor?[]>> build)
    {
        var (record, save, buildType) = Stubs.Value;
        var adapter = new BuildAdapter(build, save);
        // Func<Node, ...> bound to a method taking object: delegates are contravariant in reference-type parameters
        var typed = Delegate.CreateDelegate(buildType, adapter, BuildAdapter.InvokeMethod);
        record(output, op, inputs, typed);
    }

    private sealed class BuildAdapter(Func<SaveForBackward, Func<Tensor, Tensor?[]>> build, SaveStub save)
    {
        public static readonly MethodInfo InvokeMethod = typeof(BuildAdapter).GetMethod(nameof(Invoke))!;

        public Func<Tensor, Tensor?[]> Invoke(object node) => build(t => save(node, t));
    }

    private static (RecordStub, SaveStub, Type) Bind()
    {
        var core = typeof(Tensor).Assembly;
        var tape = core.GetType("Engine.Autograd.Tape");
        var node = core.GetType("Engine.Autograd.Node");
        const BindingFlags any = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance;
        var recordMethod = tape?.GetMethods(any).FirstOrDefault(m => m.Name == "Record" && m.GetParameters().Length == 4);
        var saveMethod = node?.GetMethod("Save", any, [typeof(Tensor)]);
        if (node is null || recordMethod is null || saveMethod is null)
            throw new InvalidOperationException(
                "Engine.LongTail autograd: Engine.Core's tape (Engine.Autograd.Tape.Record(Tensor, string, ReadOnlySpan<Tensor>, Func<Node, ...>) " +
                "and Node.Save(Tensor)) was not found; Engine.LongTail was built against another Engine.Core. Rebuild both from one checkout.");
        var buildType = recordMethod.GetParameters()[3].ParameterType;

        // (output, op, Tensor[] inputs, Delegate build) => Tape.Record(output, op, new ReadOnlySpan<Tensor>(inputs), (Func<Node, ...>)build)
        var rec = new DynamicMethod("LongTailTapeRecord", typeof(void), [typeof(Tensor), typeof(string), typeof(Tensor[]), typeof(Delegate)],
            typeof(CustomOp).Module, skipVisibility: true);
        var il = rec.GetILGenerator();
        il.Emit(OpCodes.Ldarg_0);
        il.Emit(OpCodes.Ldarg_1);
        il.Emit(OpCodes.Ldarg_2);
        il.Emit(OpCodes.Newobj, typeof(ReadOnlySpan<Tensor>).GetConstructor([typeof(Tensor[])])!);
        il.Emit(OpCodes.Ldarg_3);
        il.Emit(OpCodes.Castclass, buildType);
        il.Emit(OpCodes.Call, recordMethod);
        il.Emit(OpCodes.Ret);

        // (object node, Tensor t) => ((Node)node).Save(t)
        var sv = new DynamicMethod("LongTailTapeSave", typeof(Tensor), [typeof(object), typeof(Tensor)], typeof(CustomOp).Module, skipVisibility: true);
        il = sv.GetILGenerator();
        il.Emit(OpCodes.Ldarg_0);
        il.Emit(OpCodes.Castclass, node);
        il.Emit(OpCodes.Ldarg_1);
        il.Emit(OpCodes.Callvirt, saveMethod);
        il.Emit(OpCodes.Ret);

        return ((RecordStub)rec.CreateDelegate(typeof(RecordStub)), (SaveStub)sv.CreateDelegate(typeof(SaveStub)), buildType);
    }
}
