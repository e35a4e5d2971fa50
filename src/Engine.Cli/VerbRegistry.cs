// The verbs of the `engine` program, in the order `engine --help` lists them.
namespace Engine.Cli;

public static class VerbRegistry
{
    public static readonly Type[] Verbs =
    [
        typeof(Verbs.SelfTestVerb),
        typeof(Verbs.TrainVerb),
        typeof(Verbs.EvalVerb),
        typeof(Verbs.InferVerb),
        typeof(Verbs.CalibrateVerb),
        typeof(Verbs.SynthVerb),
        typeof(Verbs.DemoVerb),
    ];
}
