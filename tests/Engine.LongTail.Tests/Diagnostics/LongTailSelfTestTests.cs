// The long-tail rows of `engine selftest` on the CPU: every row passes on fresh seeds, the rows are the ones listed,
// and registering the family twice does not repeat them. (On a GPU the same rows run the CUDA backend's kernels.)
using Engine.Diagnostics;
using Engine.LongTail.Diagnostics;

namespace Engine.LongTail.Tests.Diagnostics;

public class LongTailSelfTestTests
{
    private static readonly string[] Ops = ["group_softmax", "group_log_softmax", "logn_statistics", "logn_standardize", "logn_calibrate"];

    [Fact]
    public void EveryRowPassesOnTheCpuAndRegisteringTwiceAddsNothing()
    {
        LongTailSelfTest.Register();
        LongTailSelfTest.Register();
        for (var round = 0; round < 4; round++)
        {
            TestUtil.Fresh(out var seed);
            var results = SelfTest.Run(Device.Cpu, seed, c => Ops.Contains(c.Op)).ToList();
            Assert.Equal(["group_softmax forward", "group_softmax grad x", "group_log_softmax forward", "group_log_softmax grad x",
                          "logn_statistics running mean", "logn_statistics running variance", "logn_standardize forward",
                          "logn_standardize running mean", "logn_standardize running variance", "logn_standardize grad x", "logn_calibrate logits",
                          "logn_calibrate scores"],
                         results.Select(r => $"{r.Op} {r.Part}"));
            var failures = results.Where(r => !r.Passed).Select(r => $"{r.Op} {r.Part}: {r.RelativeError:G3} > {r.Tolerance:G3} {r.Error}").ToList();
            Assert.True(failures.Count == 0, $"seed {seed}: " + string.Join("; ", failures));
        }
    }
}
