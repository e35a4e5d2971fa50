// ToYaml writes every key; loading that text gives back an equal record, for the defaults, for every
// shipped config and for configs with random numbers (which exercises the shortest round-trip formatting).
namespace Engine.Config.Tests.Writing;

public sealed class RoundTripTests
{
    [Fact]
    public void DefaultsRoundTrip()
    {
        var yaml = new EngineConfig().ToYaml();
        Assert.Equal(new EngineConfig(), ConfigLoader.LoadText(yaml));
        // Every key is written, defaults included.
        Assert.Contains("  RESNETS:\n    DEPTH: 50\n", yaml);
        Assert.Contains("    STRIDE_IN_1X1: true\n", yaml);
        Assert.Contains("  WEIGHT_DECAY_BIAS: null\n", yaml);
        Assert.Contains("  SAMPLER_TRAIN: \"TrainingSampler\"\n", yaml);
        Assert.Contains("    NORM: \"FrozenBN\"\n", yaml);
        Assert.Contains("    SIZES: [[32.0], [64.0], [128.0], [256.0], [512.0]]\n", yaml);
        Assert.Contains("  TRAINABLE_MODULES: []\n", yaml);
        Assert.Contains("    lvis_v1_train:\n      JSON: \"lvis/lvis_v1_train.json\"\n", yaml);
    }

    [Fact]
    public void EveryShippedConfigRoundTrips()
    {
        foreach (var path in Directory.EnumerateFiles(Repo.ConfigsDir, "*.yaml", SearchOption.AllDirectories))
        {
            var config = ConfigLoader.Load(path);
            var again = ConfigLoader.LoadText(config.ToYaml(), "effective.yaml");
            Assert.True(config == again, $"{path} does not round-trip:\n{config.ToYaml()}");
            Assert.Equal(config.ToYaml(), again.ToYaml());
        }
    }

    [Fact]
    public void RandomNumbersAndStringsRoundTrip()
    {
        var seed = Environment.TickCount;
        var rng = new Random(seed);
        for (var trial = 0; trial < 200; trial++)
        {
            // Doubles over many magnitudes (subnormal to huge), ints of both signs, strings with quotes and escapes.
            double D() => (rng.NextDouble() - 0.5) * Math.Pow(10, rng.Next(-320, 300));
            const string alphabet = "ab \"\\:#\n\t-[]{},'é\u0001";
            var weird = new string(Enumerable.Range(0, rng.Next(0, 12)).Select(_ => alphabet[rng.Next(alphabet.Length)]).ToArray());
            var config = new EngineConfig
            {
                Seed = rng.NextInt64(long.MinValue, long.MaxValue),
                OutputDir = weird,
                Model = new ModelConfig
                {
                    Weights = weird + "x",
                    PixelMean = [D(), D(), D()],
                    AnchorGenerator = new AnchorGeneratorConfig { Sizes = [[D(), D()], []], AspectRatios = [[D()]] },
                    LongTail = new LongTailConfig { Classifier = new ClassifierConfig { PriorProb = rng.Next(2) == 0 ? null : D() } },
                },
                Solver = new SolverConfig { BaseLr = D(), WeightDecayBias = D(), Steps = [rng.Next(), -rng.Next()] },
                Datasets = new DatasetsConfig { Catalog = new DatasetsConfig().Catalog.With(weird.Length > 0 ? weird : "k", new DatasetEntry { Json = weird }) },
            };
            var yaml = config.ToYaml();
            // Validation would reject most of these values; round-tripping is about the text, so bind only.
            var tree = (ConfigMap)YamlTreeReader.Read(yaml, "random.yaml");
            var (again, _) = ConfigBinder.Bind<EngineConfig>(tree);
            Assert.True(config == again, $"seed {seed}, trial {trial}: round trip differs\n{yaml}");
        }
    }

    [Theory]
    [InlineData(0.02, "0.02")]
    [InlineData(1.0, "1.0")]
    [InlineData(-3.0, "-3.0")]
    [InlineData(1e-11, "1.0e-11")]
    [InlineData(5e-5, "5.0e-05")]
    [InlineData(1.0 / 6, "0.16666666666666666")]
    public void DoublesAreWrittenAsFloats(double value, string text) => Assert.Equal(text, ConfigYamlWriter.FormatDouble(value));
}
