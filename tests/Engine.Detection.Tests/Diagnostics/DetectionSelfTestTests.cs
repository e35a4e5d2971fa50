// The detection rows of `engine selftest` on the CPU: every row passes on fresh seeds, the rows are the ones listed,
// and registering the family twice does not repeat them. (On a GPU the same rows run the CUDA backend's kernels.)
using Engine.Detection.Diagnostics;
using Engine.Diagnostics;
using Engine.Tests;

namespace Engine.Detection.Tests.Diagnostics;

public class DetectionSelfTestTests
{
    private static readonly string[] Ops = ["roi_align", "fpn_levels", "batched_nms", "box_iou", "box_coder", "match_proposals"];

    [Fact]
    public void EveryRowPassesOnTheCpuAndRegisteringTwiceAddsNothing()
    {
        DetectionSelfTest.Register();
        DetectionSelfTest.Register();
        TestUtil.AssertSelfTestRowsPass(c => Ops.Contains(c.Op),
                                        ["roi_align forward", "roi_align grad level 0", "roi_align grad level 1", "roi_align grad level 2", "fpn_levels levels",
                                         "batched_nms kept indices", "box_iou forward", "box_coder encode", "box_coder decode", "match_proposals matches (rpn)",
                                         "match_proposals labels (rpn)", "match_proposals matches (roi heads)", "match_proposals labels (roi heads)"]);
    }
}
