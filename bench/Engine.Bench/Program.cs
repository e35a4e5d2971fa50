// Entry point of the CPU microbenchmarks: BenchmarkDotNet by default, `--quick [repeats] [row]` for the
// Stopwatch table of the oneDNN rows, `--norm [repeats] [row]` for GroupNorm / BatchNorm, `--frozen [repeats] [row]`
// for FrozenBatchNorm2d, `--frozen-relu [repeats] [row]` for it with its ReLU fused, `--add-relu [repeats] [row]` for the
// residual sum with its ReLU (see bench/README.md).
if (args.Length > 0 && args[0] == "--quick") return Engine.Bench.QuickBench.Run(args[1..]);
if (args.Length > 0 && args[0] == "--norm") return Engine.Bench.NormBench.Run(args[1..]);
if (args.Length > 0 && args[0] == "--frozen") return Engine.Bench.FrozenNormBench.Run(args[1..]);
if (args.Length > 0 && args[0] == "--frozen-relu") return Engine.Bench.FrozenNormBench.Run(args[1..], relu: true);
if (args.Length > 0 && args[0] == "--add-relu") return Engine.Bench.ResidualBench.Run(args[1..]);
BenchmarkDotNet.Running.BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
