using Engine.Diagnostics;

namespace Engine.Tests.Diagnostics;

public class SelfTestTests
{
    [Fact]
    public void EveryCheckPassesOnTheCpu()
    {
        TestUtil.Fresh(out var seed);
        var results = SelfTest.Run(Device.Cpu, seed).ToList();
        Assert.NotEmpty(results);
        var failures = results.Where(r => !r.Passed).Select(r => $"{r.Op} {r.Part}: {r.RelativeError:G3} > {r.Tolerance:G3} {r.Error}").ToList();
        Assert.True(failures.Count == 0, $"seed {seed}: " + string.Join("; ", failures));
    }

    /// <summary>The sort and nonzero rows over several fresh seeds (each draws the direction, the dim, ties, NaNs and ±0
    /// anew), with the rows they list.</summary>
    [Fact]
    public void SortAndNonzeroRowsPassOnFreshSeeds() =>
        TestUtil.AssertSelfTestRowsPass(c => c.Op is "sort" or "nonzero",
                                        ["sort values", "sort indices", "sort grad x", "sort int64 values", "sort int64 indices", "nonzero coordinates"],
                                        rounds: 6);

    /// <summary>The comparison, int64 and cast rows over several fresh seeds, with the rows they list.</summary>
    [Fact]
    public void ComparisonIntegerAndCastRowsPassOnFreshSeeds() =>
        TestUtil.AssertSelfTestRowsPass(c => c.Op is "compare" or "int64" or "cast",
                                        ["compare eq", "compare ne", "compare lt", "compare le", "compare gt", "compare ge",
                                         "int64 add", "int64 sub", "int64 mul", "int64 div", "int64 maximum", "int64 minimum",
                                         "cast float32 to int64", "cast int64 to float32", "cast float32 to uint8", "cast uint8 to float32"],
                                        rounds: 6);

    [Fact]
    public void RelativeErrorCountsAnUnwrittenNaNAsInfinite()
    {
        Assert.Equal(double.PositiveInfinity, SelfTest.RelativeError([1.0, 2.0], [1.0, double.NaN]));
        Assert.Equal(0.25, SelfTest.RelativeError([2.0, -4.0], [2.0, -3.0]), 12);
        Assert.Equal(0.5, SelfTest.RelativeError([0.0], [0.5]), 12);
    }
}
