// The long-tail rows of `engine selftest` on the CPU: every row passes on fresh seeds, the rows are the ones listed,
// and registering the family twice does not repeat them; the ops' rows and the rows that call a backend member
// directly (the fused losses, FCBL's confusion update, LogN's exact statistics, the scale) in two tests. (On a GPU
// the same rows run the CUDA backend's kernels.)
using Engine.Diagnostics;
using Engine.LongTail.Diagnostics;

namespace Engine.LongTail.Tests.Diagnostics;

public class LongTailSelfTestTests
{
    private static readonly string[] Ops = ["group_softmax", "group_log_softmax", "logn_statistics", "logn_standardize", "logn_calibrate", "crat_transfuse"];

    [Fact]
    public void EveryRowPassesOnTheCpuAndRegisteringTwiceAddsNothing()
    {
        LongTailSelfTest.Register();
        LongTailSelfTest.Register();
        Engine.Tests.TestUtil.AssertSelfTestRowsPass(c => Ops.Contains(c.Op),
            ["group_softmax forward", "group_softmax grad x", "group_log_softmax forward", "group_log_softmax grad x",
             "logn_statistics running mean", "logn_statistics running variance", "logn_standardize forward",
             "logn_standardize running mean", "logn_standardize running variance", "logn_standardize grad x", "logn_calibrate logits",
             "logn_calibrate scores",
             .. new[] { "first sample", "per sample" }.SelectMany(q => new[] { "Fisher bank", "weights", "ungated weights", "extra gradient", "row loss" }
                                                                    .Select(part => $"crat_transfuse {part} ({q})"))]);
    }

    private static readonly string[] BackendOps =
        ["weighted_sigmoid_bce", "fcbl", "accumulate_confusion", "softmax_cross_entropy", "seesaw", "logn_merge", "logit_scale"];

    [Fact]
    public void EveryBackendMemberRowPassesOnTheCpu()
    {
        LongTailSelfTest.Register();
        LongTailSelfTest.Register();
        Engine.Tests.TestUtil.AssertSelfTestRowsPass(c => BackendOps.Contains(c.Op),
            ["weighted_sigmoid_bce row loss", "weighted_sigmoid_bce grad logits", "weighted_sigmoid_bce grad magnitude pos",
             "weighted_sigmoid_bce grad magnitude neg", "fcbl row loss", "fcbl grad logits", "fcbl row loss (reweighted)",
             "fcbl grad logits (reweighted)", "accumulate_confusion confusion", "accumulate_confusion counts",
             "softmax_cross_entropy row loss", "softmax_cross_entropy grad logits", "seesaw row loss", "seesaw grad logits",
             "logn_merge count", "logn_merge mean", "logn_merge m2", "logit_scale forward"]);
    }
}
