// safetensors: round trips, a file built byte by byte from the spec, corrupt files, atomic writes, module checkpoints.
using System.Buffers.Binary;
using System.Text;
using Engine.Nn;
using Engine.Reference;
using Engine.Serialization;
using Engine.Tests.Nn;

namespace Engine.Tests.Serialization;

public sealed class SafeTensorsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("engine-safetensors-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => System.IO.Path.Combine(_dir, name);

    /// <summary>A file laid out by hand per the spec: u64 LE header length, the header, the data.</summary>
    private static byte[] Build(string header, byte[] data, ulong? claimedLength = null)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, claimedLength ?? (ulong)h.Length);
        h.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + h.Length);
        return bytes;
    }

    private static byte[] U16(params ushort[] values)
    {
        var b = new byte[values.Length * 2];
        for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(2 * i), values[i]);
        return b;
    }

    private static uint Bits(float f) => BitConverter.SingleToUInt32Bits(f);

    [Fact]
    public void RoundTripKeepsValuesShapesDtypesAndMetadata()
    {
        var g = TestUtil.Fresh(out var seed);
        var r = RefTensor.Random(g, [3, 5], -10, 10);
        using var strided = TestUtil.NonContiguous(r);
        using var scalar = Tensor.Scalar(float.Epsilon);
        using var empty = Tensor.Zeros([0, 4]);
        using var longs = Tensor.From([1L << 40, -3L, long.MaxValue, 0L]);
        using var ints = Tensor.From([int.MinValue, 7, -1, 2, 3, 4], 2, 3);
        using var bytes = Tensor.From(new byte[] { 0, 1, 127, 128, 255 });
        var tensors = new Dictionary<string, Tensor> { ["w.strided"] = strided, ["scalar"] = scalar, ["empty"] = empty, ["i64"] = longs, ["i32"] = ints, ["u8"] = bytes };
        var meta = new Dictionary<string, string> { ["format"] = "pt", ["iteration"] = "1234", ["note"] = "ünïcode \"quoted\"" };
        var path = PathOf("round.safetensors");
        SafeTensors.Save(path, tensors, meta);

        using (var file = SafeTensorsFile.Open(path))
        {
            Assert.Equal(meta, file.Metadata);
            Assert.Equal(tensors.Keys, file.Entries.Select(e => e.Name));   // written in the order given
            foreach (var (name, t) in tensors)
            {
                Assert.Equal(t.ShapeArray(), file[name].Shape);
                using var back = file.Read(name);
                Assert.Equal(t.DType, back.DType);
                Assert.True(t.ToDoubleArray().SequenceEqual(back.ToDoubleArray()), $"{name} differs (seed {seed})");
            }
            Assert.Equal(r.Data.Select(v => Bits((float)v)), file.Read("w.strided").ToFloatArray().Select(Bits));
        }

        // layout: header length a multiple of 8, padded with spaces, offsets tiling the data section in order
        var raw = File.ReadAllBytes(path);
        var n = (long)BinaryPrimitives.ReadUInt64LittleEndian(raw);
        Assert.Equal(0, n % 8);
        var header = Encoding.UTF8.GetString(raw, 8, (int)n);
        Assert.Equal(header.TrimEnd(' ').Length, header.LastIndexOf('}') + 1);
        Assert.Equal(raw.Length - 8 - n, tensors.Values.Sum(t => t.Numel * t.DType.ElementSize()));
        Assert.Contains("\"w.strided\":{\"dtype\":\"F32\",\"shape\":[3,5],\"data_offsets\":[0,60]}", header);
        Assert.Contains("\"scalar\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[60,64]}", header);
        Assert.Contains("\"empty\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[64,64]}", header);
        Assert.Contains("\"i64\":{\"dtype\":\"I64\",\"shape\":[4],\"data_offsets\":[64,96]}", header);

        using var all = SafeTensors.Load(path);
        Assert.Equal(tensors.Keys.Order(), all.Keys.Order());
        Assert.Equal(meta, SafeTensors.ReadMetadata(path));
    }

    [Fact]
    public void ReadsAHandWrittenFileWithHalfAndBFloat16()
    {
        // F16: 1.0, −2.0, smallest subnormal 2^-24, largest subnormal (1023/1024)·2^-14, 1365/4096 (0x3555), +inf, NaN, −0
        var f16 = U16(0x3C00, 0xC000, 0x0001, 0x03FF, 0x3555, 0x7C00, 0x7E00, 0x8000);
        // BF16 = top half of float32: 1.0, 3.140625 (0x4049: 2·(1 + 73/128)), 2^-133 (subnormal 0x0001), −inf, NaN, max finite
        var bf16 = U16(0x3F80, 0x4049, 0x0001, 0xFF80, 0x7FC0, 0x7F7F);
        var i64 = new byte[16];
        BinaryPrimitives.WriteInt64LittleEndian(i64, -5);
        BinaryPrimitives.WriteInt64LittleEndian(i64.AsSpan(8), 1L << 50);
        var flags = new byte[] { 1, 0, 1 };
        var header = "{\"__metadata__\":{\"format\":\"pt\"}," +
                     "\"half\":{\"dtype\":\"F16\",\"shape\":[2,4],\"data_offsets\":[0,16]}," +
                     "\"brain\":{\"dtype\":\"BF16\",\"shape\":[6],\"data_offsets\":[16,28]}," +
                     "\"idx\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[28,44]}," +
                     "\"mask\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[44,47]}}";   // unpadded: data starts unaligned
        var path = PathOf("hand.safetensors");
        File.WriteAllBytes(path, Build(header, [.. f16, .. bf16, .. i64, .. flags]));

        using var file = SafeTensorsFile.Open(path);
        Assert.Equal("pt", file.Metadata["format"]);
        using var half = file.Read("half");
        Assert.Equal(DType.Float32, half.DType);
        Assert.Equal([2, 4], half.ShapeArray());
        float[] expectedHalf = [1f, -2f, MathF.Pow(2, -24), 1023f / 1024 * MathF.Pow(2, -14), 1365f / 4096, float.PositiveInfinity, float.NaN, -0f];
        Assert.Equal(expectedHalf.Select(Bits).Take(6), half.ToFloatArray().Select(Bits).Take(6));
        Assert.True(float.IsNaN(half.ToFloatArray()[6]));
        Assert.Equal(0x8000_0000u, Bits(half.ToFloatArray()[7]));

        using var brain = file.Read("brain");
        // 0x7FC0 widens to the positive quiet NaN 0x7FC00000 (float.NaN is 0xFFC00000): the bits are kept as stored
        float[] expectedBrain = [1f, 3.140625f, (float)Math.Pow(2, -133), float.NegativeInfinity, BitConverter.UInt32BitsToSingle(0x7FC0_0000), BitConverter.UInt32BitsToSingle(0x7F7F0000)];
        Assert.Equal(expectedBrain.Select(Bits), brain.ToFloatArray().Select(Bits));

        using var idx = file.Read("idx");
        Assert.Equal([-5L, 1L << 50], idx.ToInt64Array());
        using var mask = file.Read("mask");
        Assert.Equal(DType.UInt8, mask.DType);
        Assert.Equal(flags, mask.ToArray<byte>());
    }

    public static TheoryData<string, Func<byte[]>, string[]> CorruptFiles => new()
    {
        { "shorter than the length field", () => [1, 0, 0], ["3 bytes", "8-byte header length"] },
        { "header length beyond the file", () => Build("{}", [], claimedLength: 1000), ["header length 1000", "exceeds"] },
        { "huge header length", () => Build("{}", [], claimedLength: ulong.MaxValue), ["exceeds"] },
        { "truncated data", () => Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", new byte[10]), ["'a'", "[0, 16]", "10-byte data section"] },
        { "not an object", () => Build("[1,2]", []), ["not an object"] },
        { "overlapping offsets", () => Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", new byte[24]), ["'a'", "'b'", "overlap"] },
        { "size not numel × element size", () => Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", new byte[12]), ["'a'", "needs 16 bytes", "span 12"] },
        { "duplicate names", () => Build("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", new byte[2]), ["'a'", "twice"] },
        { "a hole", () => Build("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]}}", new byte[6]), ["[2, 4)", "'b'", "holes"] },
        { "trailing bytes", () => Build("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", new byte[5]), ["3 trailing bytes"] },
        { "unknown dtype", () => Build("{\"a\":{\"dtype\":\"F9\",\"shape\":[1],\"data_offsets\":[0,1]}}", new byte[1]), ["'a'", "unknown dtype 'F9'"] },
        { "negative dimension", () => Build("{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", new byte[1]), ["'a'", "shape entry -1"] },
        { "reversed offsets", () => Build("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[2,1]}}", new byte[2]), ["'a'", "begin ≤ end"] },
        { "metadata not strings", () => Build("{\"__metadata__\":{\"step\":5}}", []), ["'step'", "not a string"] },
    };

    [Theory]
    [MemberData(nameof(CorruptFiles))]
    public void CorruptFilesAreClearErrors(string what, Func<byte[]> build, string[] expected)
    {
        var path = PathOf("corrupt.safetensors");
        File.WriteAllBytes(path, build());
        var e = Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Open(path));
        Assert.Contains(path, e.Message);
        foreach (var s in expected) Assert.True(e.Message.Contains(s, StringComparison.Ordinal), $"{what}: message \"{e.Message}\" lacks \"{s}\"");
    }

    [Fact]
    public void BadJsonReportsTheByteOffset()
    {
        var path = PathOf("json.safetensors");
        var header = "{\"a\": {\"dtype\": \"F32\",, }}";
        File.WriteAllBytes(path, Build(header, []));
        var at = header.IndexOf(",,", StringComparison.Ordinal) + 1;
        var e = Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Open(path));
        Assert.Contains($"header byte {at} (file byte {8 + at})", e.Message);

        // on a later line the offset still counts from the start of the header
        header = "{\n  \"a\": nope\n}";
        File.WriteAllBytes(path, Build(header, []));
        e = Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Open(path));
        var start = header.IndexOf("nope", StringComparison.Ordinal);
        var reported = int.Parse(e.Message.Split("header byte ")[1].Split(' ')[0]);
        Assert.InRange(reported, start, start + 3);
    }

    [Fact]
    public void UnsupportedDtypesNameTheTensorAndTheDtype()
    {
        var path = PathOf("f64.safetensors");
        File.WriteAllBytes(path, Build("{\"ok\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[1,9]}}", new byte[9]));
        using var file = SafeTensorsFile.Open(path);
        using (var ok = file.Read("ok")) Assert.Equal(DType.UInt8, ok.DType);
        var e = Assert.Throws<NotSupportedException>(() => file.Read("d"));
        Assert.Contains("'d'", e.Message);
        Assert.Contains("F64", e.Message);
        Assert.Throws<NotSupportedException>(() => SafeTensors.Load(path));
        Assert.Contains("'missing'", Assert.Throws<KeyNotFoundException>(() => file.Read("missing")).Message);
    }

    [Fact]
    public void AFailedWriteLeavesTheTargetUntouched()
    {
        var path = PathOf("model.safetensors");
        using var good = Tensor.Ones([1000]);
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["w"] = good });
        var before = File.ReadAllBytes(path);

        // the disposed tensor fails when its data is written, after the header and the first tensor went out
        var gone = Tensor.Ones([4]);
        gone.Dispose();
        using var other = Tensor.Zeros([1000]);
        Assert.Throws<ObjectDisposedException>(() => SafeTensors.Save(path, new Dictionary<string, Tensor> { ["w"] = other, ["gone"] = gone }));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(_dir));   // no temporary file left behind

        var fresh = PathOf("never.safetensors");
        Assert.Throws<ObjectDisposedException>(() => SafeTensors.Save(fresh, new Dictionary<string, Tensor> { ["gone"] = gone }));
        Assert.False(File.Exists(fresh));

        // a successful write replaces the file
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["w"] = other });
        using var back = SafeTensors.Load(path);
        Assert.All(back["w"].ToFloatArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void WriterRejectsBadNamesAndMetadata()
    {
        using var t = Tensor.Zeros([1]);
        var path = PathOf("bad.safetensors");
        Assert.Contains("__metadata__", Assert.Throws<ArgumentException>(() => SafeTensors.Save(path, [new("__metadata__", t)])).Message);
        Assert.Contains("twice", Assert.Throws<ArgumentException>(() => SafeTensors.Save(path, [new("a", t), new("a", t)])).Message);
        Assert.Contains("'k'", Assert.Throws<ArgumentException>(() => SafeTensors.Save(path, [new("a", t)], new Dictionary<string, string> { ["k"] = null! })).Message);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void ReadingMapsTheFileInsteadOfCopyingItIntoManagedArrays()
    {
        // a 16 MB tensor: reading it must not allocate managed memory of that order (the data goes from the
        // mapping into native tensor storage); 1 MB covers the header, JSON document and bookkeeping.
        var path = PathOf("big.safetensors");
        using (var big = Tensor.Full([4 << 20], 0.5))
            SafeTensors.Save(path, [new("big", big)]);
        var before = GC.GetAllocatedBytesForCurrentThread();
        using (var file = SafeTensorsFile.Open(path))
        using (var t = file.Read("big"))
        {
            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < 1 << 20, $"reading a 16 MB tensor allocated {allocated} managed bytes");
            using var first = t.Slice(0, 0, 1);
            Assert.Equal(0.5, first.Item());
        }
    }

    [Fact]
    public void ModuleSaveAndLoadRoundTripWithMetadata()
    {
        var g = TestUtil.Fresh(out var seed);
        var path = PathOf("module.safetensors");
        using var a = new Sequential(new Affine(3), new FrozenBatchNorm2dHolder(), new Affine(3));
        using var b = new Sequential(new Affine(3), new FrozenBatchNorm2dHolder(), new Affine(3));
        using (GradMode.NoGrad())
        {
            foreach (var (_, p) in a.NamedParameters()) Init.Uniform(p, g, -1, 1);
            foreach (var (_, buf) in a.NamedBuffers()) Init.Uniform(buf, g, 0.5, 1);
        }
        a.Save(path, new Dictionary<string, string> { ["iteration"] = "99" });
        var result = b.Load(path);
        Assert.Empty(result.MissingKeys);
        using var sa = a.StateDict();
        using var sb = b.StateDict();
        foreach (var ((name, x), (_, y)) in sa.Zip(sb))
            Assert.True(x.ToFloatArray().SequenceEqual(y.ToFloatArray()), $"{name} (seed {seed})");
        Assert.Equal("99", SafeTensors.ReadMetadata(path)["iteration"]);

        // strict load of a file lacking a key names the key and the file, and changes nothing
        using var c = new Sequential(new Affine(3), new FrozenBatchNorm2dHolder(), new Affine(3), new Affine(3));
        var e = Assert.Throws<InvalidOperationException>(() => c.Load(path));
        Assert.Contains("'3.weight'", e.Message);
        Assert.Contains(path, e.Message);
        Assert.All(c.Parameters()[0].Value.ToFloatArray(), v => Assert.Equal(1f, v));
        Assert.Equal(["3.weight", "3.bias"], c.Load(path, strict: false).MissingKeys);
    }

    [Fact]
    public void ModuleLoadsHalfPrecisionCheckpointsAsFloat32()
    {
        var path = PathOf("half-module.safetensors");
        // weight F16 [1, 0.5, -2], bias BF16 [1, 3.140625, -inf]
        File.WriteAllBytes(path, Build(
            "{\"weight\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},\"bias\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[6,12]}}",
            [.. U16(0x3C00, 0x3800, 0xC000), .. U16(0x3F80, 0x4049, 0xFF80)]));
        using var m = new Affine(3);
        m.Load(path);
        Assert.Equal([1f, 0.5f, -2f], m.Weight.Value.ToFloatArray());
        Assert.Equal([1f, 3.140625f, float.NegativeInfinity], m.Bias.Value.ToFloatArray());
        Assert.True(m.Weight.RequiresGrad);

        using var wrong = new Affine(4);
        var e = Assert.Throws<InvalidOperationException>(() => wrong.Load(path));
        Assert.Contains("'weight'", e.Message);
        Assert.Contains("[3]", e.Message);
        Assert.Contains("[4]", e.Message);
    }

    /// <summary>A FrozenBatchNorm2d over 3 channels applied to (B, 3) rows, so it can sit between Affine layers.</summary>
    private sealed class FrozenBatchNorm2dHolder : Module<Tensor, Tensor>
    {
        private readonly FrozenBatchNorm2d _bn;
        public FrozenBatchNorm2dHolder() => _bn = RegisterModule("bn", new FrozenBatchNorm2d(3));

        public override Tensor Forward(Tensor input)
        {
            using var x = input.Reshape(input.Size(0), 3, 1, 1);
            using var y = _bn.Forward(x);
            return y.Reshape(input.Size(0), 3);
        }
    }
}
