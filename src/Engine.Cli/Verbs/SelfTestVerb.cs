// `engine selftest`: runs every op on each available device against its double reference with fresh random
// inputs and prints one row per comparison; exits non-zero if any row fails. The rows cover Engine.Core's ops and
// the detection and long-tail ops (their CUDA backends are registered with the core one).
using CommandLine;
using Engine.Cuda.Backend;
using Engine.Cuda.Ops;
using Engine.Detection.Diagnostics;
using Engine.Diagnostics;
using Engine.LongTail.Diagnostics;
using Spectre.Console;

namespace Engine.Cli.Verbs;

[Verb("selftest", HelpText = "Check every op (forward and gradients; the core, detection and long-tail ops) against its double-precision reference on random inputs, on each available device.")]
public sealed class SelfTestVerb : IVerb
{
    [Option("device", HelpText = "cpu, cuda, cuda:N, or all (every available device; the default).", Default = "all")]
    public string DeviceName { get; set; } = "all";

    [Option("seed", HelpText = "Random seed (default: fresh each run; the seed used is printed so a failure can be replayed).")]
    public ulong? Seed { get; set; }

    [Option("op", HelpText = "Only ops whose name contains this text.")]
    public string? Op { get; set; }

    [Option("cudnn", HelpText = "The cuDNN API the cuda rows convolve through: graph (the default) or legacy.")]
    public string? Cudnn { get; set; }

    public int Run()
    {
        DetectionSelfTest.Register();
        LongTailSelfTest.Register();
        var devices = ResolveDevices();
        var seed = Seed ?? (ulong)Random.Shared.NextInt64();
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn("op").AddColumn("part").AddColumn("device")
            .AddColumn(new TableColumn("max rel. error").RightAligned())
            .AddColumn(new TableColumn("tolerance").RightAligned()).AddColumn("result");
        var failed = 0;
        var total = 0;
        foreach (var device in devices)
            foreach (var r in SelfTest.Run(device, seed, Op is null ? null : c => c.Op.Contains(Op, StringComparison.OrdinalIgnoreCase)))
            {
                total++;
                if (!r.Passed) failed++;
                table.AddRow(
                    Markup.Escape(r.Op), Markup.Escape(r.Part), r.Device.ToString(),
                    double.IsNaN(r.RelativeError) ? "-" : r.RelativeError.ToString("0.0e+00", System.Globalization.CultureInfo.InvariantCulture),
                    r.Tolerance.ToString("0.0e+00", System.Globalization.CultureInfo.InvariantCulture),
                    r.Passed ? "[green]pass[/]" : $"[red]FAIL[/]{(r.Error is null ? "" : " " + Markup.Escape(r.Error))}");
            }
        if (total == 0) throw new ArgumentException($"selftest: no op matches --op '{Op}'.");
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"{total - failed} passed, {failed} failed on {string.Join(", ", devices)} (seed {seed}; replay with --seed {seed})");
        return failed == 0 ? 0 : 1;
    }

    private List<Device> ResolveDevices()
    {
        var api = DeviceSelection.ParseCudnn("selftest", Cudnn);
        // The CUDA backend joins where a device exists; without one, cuda is simply not among "all".
        var cuda = CudaOpsRegistration.TryRegister(out var noCuda, new CudaBackendOptions(ConvolutionApi: api ?? CudaBackendOptions.Default.ConvolutionApi));
        if (api is not null && !cuda)
            throw new NotSupportedException($"selftest: --cudnn {Cudnn} asked for, but no CUDA device is available: {noCuda}");
        if (!DeviceName.Equals("all", StringComparison.OrdinalIgnoreCase))
        {
            var d = Device.Parse(DeviceName);
            if (d.Kind == DeviceKind.Cuda && !cuda)
                throw new NotSupportedException($"selftest: --device {DeviceName} asked for, but no CUDA device is available: {noCuda}");
            if (d.Kind != DeviceKind.Cuda && api is not null)
                throw new ArgumentException($"selftest: --cudnn applies to cuda devices, not {d}.");
            _ = Backends.For(d); // a clear error when that device's backend is unavailable
            return [d];
        }
        var list = new List<Device> { Device.Cpu };
        if (Backends.IsCudaRegistered) list.Add(Device.Cuda(0));
        return list;
    }
}
