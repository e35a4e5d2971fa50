// Double-precision references of the backbone's building blocks, composed from the core references
// (ConvolutionReference, NormReference, PoolingReference) and written from the definitions in the source
// files' headers: a conv layer is conv → norm → optional ReLU; a residual block is ReLU(branch(x) + shortcut(x));
// the FPN is the top-down recurrence M_k = L_k + up2(M_{k+1}), P_k = output_k(M_k), P_{top+1} = max_pool(P_top, 1, 2).
// Each has a backward (vector-Jacobian product) for the input and the conv weights. Their state (weights,
// frozen-BN statistics, GroupNorm parameters) is copied from the engine modules under test.
using Engine.Detection.Modeling.Backbone;
using Engine.Native;
using Engine.Nn;
using Engine.Reference;

namespace Engine.Detection.Tests.Modeling.Backbone;

/// <summary>conv (no groups, no dilation) → FrozenBN | GroupNorm | nothing → ReLU?</summary>
internal sealed class RefConvLayer
{
    public RefConvLayer(Conv2d conv)
    {
        Assert.True(conv.Groups == 1 && conv.Dilation == 1, "the reference covers ungrouped, undilated convs");
        (CIn, COut, Kernel, Stride, Padding, Relu) = (conv.InChannels, conv.OutChannels, conv.KernelSize, conv.Stride, conv.Padding, conv.Relu);
        Weight = conv.Weight.Value.ToDoubleArray();
        Bias = conv.Bias?.Value.ToDoubleArray();
        switch (conv.Norm)
        {
            case null:
                break;
            case FrozenBatchNorm2d bn:
                Frozen = (bn.Weight.Value.ToDoubleArray(), bn.Bias.Value.ToDoubleArray(), bn.RunningMean.Value.ToDoubleArray(),
                          bn.RunningVar.Value.ToDoubleArray(), bn.Eps);
                break;
            case GroupNorm gn:
                Group = (gn.NumGroups, gn.Weight?.Value.ToDoubleArray(), gn.Bias?.Value.ToDoubleArray(), gn.Eps);
                break;
            default:
                throw new ArgumentException($"no reference for norm {conv.Norm.GetType().Name}");
        }
    }

    public int CIn { get; }
    public int COut { get; }
    public int Kernel { get; }
    public int Stride { get; }
    public int Padding { get; }
    public bool Relu { get; }

    /// <summary>(COut, CIn, k, k), replaceable so finite differences can perturb it.</summary>
    public double[] Weight { get; set; }

    public double[]? Bias { get; }
    private (double[] W, double[] B, double[] Mean, double[] Var, double Eps)? Frozen { get; }
    private (int Groups, double[]? W, double[]? B, double Eps)? Group { get; }

    public sealed record Saved(Conv2dGeometry Geometry, RefTensor X, double[] Conv, double[] Normed);

    public RefTensor Forward(RefTensor x) => Forward(x, out _);

    public RefTensor Forward(RefTensor x, out Saved saved)
    {
        var geo = Conv2dGeometry.Square(x.Shape[0], CIn, x.Shape[2], x.Shape[3], COut, Kernel, Stride, Padding);
        var z = ConvolutionReference.Forward(geo, x.Data, Weight, Bias);
        var s = geo.OutH * geo.OutW;
        var normed = Frozen is { } f ? NormReference.FrozenBatchNormForward(z, geo.N, COut, s, f.W, f.B, f.Mean, f.Var, f.Eps)
            : Group is { } g ? NormalizationReference.GroupNormForward(z, geo.N, COut, s, g.Groups, g.W, g.B, g.Eps)
            : z;
        saved = new Saved(geo, x, z, normed);
        var y = Relu ? normed.Select(v => Math.Max(v, 0)).ToArray() : (double[])normed.Clone();
        return new RefTensor([geo.N, COut, geo.OutH, geo.OutW], y);
    }

    /// <summary>Gradients of Σ dy·Forward(x) with respect to x and Weight.</summary>
    public (RefTensor Dx, double[] Dw) Backward(Saved saved, RefTensor dy)
    {
        var geo = saved.Geometry;
        var s = geo.OutH * geo.OutW;
        var dNormed = Relu ? dy.Data.Select((v, i) => saved.Normed[i] > 0 ? v : 0).ToArray() : dy.Data;
        var dz = Frozen is { } f ? NormReference.FrozenBatchNormBackward(dNormed, geo.N, COut, s, f.W, f.Var, f.Eps)
            : Group is { } g ? NormalizationReference.GroupNormBackward(saved.Conv, geo.N, COut, s, g.Groups, g.W, g.Eps, dNormed).Dx
            : dNormed;
        var dx = ConvolutionReference.BackwardData(geo, dz, Weight);
        var dw = ConvolutionReference.BackwardWeights(geo, saved.X.Data, dz);
        return (new RefTensor(saved.X.Shape, dx), dw);
    }
}

/// <summary>ReLU(branch(x) + shortcut(x)), branch = the block's convs in order, shortcut = projection or identity.</summary>
internal sealed class RefBlock
{
    public RefBlock(ResNetBlock block)
    {
        Branch = block switch
        {
            BasicBlock b => [new RefConvLayer(b.Conv1), new RefConvLayer(b.Conv2)],
            BottleneckBlock b => [new RefConvLayer(b.Conv1), new RefConvLayer(b.Conv2), new RefConvLayer(b.Conv3)],
            _ => throw new ArgumentException(block.GetType().Name),
        };
        Shortcut = block.Shortcut is { } sc ? new RefConvLayer(sc) : null;
    }

    public RefConvLayer[] Branch { get; }
    public RefConvLayer? Shortcut { get; }

    public sealed record Saved(RefConvLayer.Saved[] Branch, RefConvLayer.Saved? Shortcut, double[] Sum);

    public RefTensor Forward(RefTensor x) => Forward(x, out _);

    public RefTensor Forward(RefTensor x, out Saved saved)
    {
        var h = x;
        var branchSaved = new RefConvLayer.Saved[Branch.Length];
        for (var i = 0; i < Branch.Length; i++) h = Branch[i].Forward(h, out branchSaved[i]);
        RefConvLayer.Saved? shortcutSaved = null;
        var s = Shortcut?.Forward(x, out shortcutSaved) ?? x;
        var sum = RefTensor.Zip(h, s, (a, b) => a + b);
        saved = new Saved(branchSaved, shortcutSaved, sum.Data);
        return sum.Map(v => Math.Max(v, 0));
    }

    /// <summary>dx and the weight gradient of every branch conv (in order) and of the shortcut (null without one).</summary>
    public (RefTensor Dx, double[][] DBranch, double[]? DShortcut) Backward(Saved saved, RefTensor dy)
    {
        var dSum = new RefTensor(dy.Shape, dy.Data.Select((v, i) => saved.Sum[i] > 0 ? v : 0).ToArray());
        var g = dSum;
        var dBranch = new double[Branch.Length][];
        for (var i = Branch.Length - 1; i >= 0; i--) (g, dBranch[i]) = Branch[i].Backward(saved.Branch[i], g);
        double[]? dShortcut = null;
        var dxShortcut = dSum;
        if (Shortcut is not null) (dxShortcut, dShortcut) = Shortcut.Backward(saved.Shortcut!, dSum);
        return (RefTensor.Zip(g, dxShortcut, (a, b) => a + b), dBranch, dShortcut);
    }
}

/// <summary>The FPN's top-down pass over in-features given finest first.</summary>
internal sealed class RefFpn
{
    public RefFpn(Fpn fpn)
    {
        Laterals = fpn.LateralConvs.Select(c => new RefConvLayer(c)).ToArray();
        Outputs = fpn.OutputConvs.Select(c => new RefConvLayer(c)).ToArray();
        Average = fpn.Fuse == FpnFuse.Average;
        MaxPoolTop = fpn.LastLevelMaxPool;
    }

    public RefConvLayer[] Laterals { get; }
    public RefConvLayer[] Outputs { get; }
    public bool Average { get; }
    public bool MaxPoolTop { get; }

    private static readonly Pool2dWindow P6Window = new(1, 1, 2, 2, 0, 0);

    public sealed record Saved(RefConvLayer.Saved[] Laterals, RefConvLayer.Saved[] Outputs, long[]? PoolIndices, int[] TopShape);

    /// <summary>P levels finest first, then the pooled extra level when MaxPoolTop.</summary>
    public RefTensor[] Forward(RefTensor[] inputs, out Saved saved)
    {
        var k = inputs.Length;
        var lat = new RefConvLayer.Saved[k];
        var outs = new RefConvLayer.Saved[k];
        var p = new List<RefTensor>(new RefTensor[k]);
        var merged = Laterals[k - 1].Forward(inputs[k - 1], out lat[k - 1]);
        p[k - 1] = Outputs[k - 1].Forward(merged, out outs[k - 1]);
        for (var i = k - 2; i >= 0; i--)
        {
            var up = PoolingReference.UpsampleNearest2d(merged, merged.Shape[2] * 2, merged.Shape[3] * 2);
            var l = Laterals[i].Forward(inputs[i], out lat[i]);
            merged = RefTensor.Zip(l, up, (a, b) => Average ? (a + b) / 2 : a + b);
            p[i] = Outputs[i].Forward(merged, out outs[i]);
        }
        long[]? indices = null;
        if (MaxPoolTop)
        {
            var (pooled, idx) = PoolingReference.MaxPool2d(p[k - 1], P6Window);
            p.Add(pooled);
            indices = idx;
        }
        saved = new Saved(lat, outs, indices, p[k - 1].Shape);
        return p.ToArray();
    }

    /// <summary>Gradients of Σ_l dp_l·P_l with respect to each input map.</summary>
    public RefTensor[] Backward(Saved saved, RefTensor[] dp)
    {
        var k = Laterals.Length;
        var dTop = dp[k - 1];
        if (MaxPoolTop)
        {
            var routed = PoolingReference.MaxPool2dBackward(dp[k], saved.PoolIndices!, saved.TopShape);
            dTop = RefTensor.Zip(dTop, routed, (a, b) => a + b);
        }
        // M_{i+1} reaches P_i through up2 inside M_i, so gradients flow from the finest level to the coarsest
        var dInputs = new RefTensor[k];
        RefTensor? dFromFiner = null;                            // gradient reaching M_i through the upsampling in M_{i-1}
        for (var i = 0; i < k; i++)
        {
            var dMerged = Outputs[i].Backward(saved.Outputs[i], i == k - 1 ? dTop : dp[i]).Dx;
            if (dFromFiner is not null) dMerged = RefTensor.Zip(dMerged, dFromFiner, (a, b) => a + b);
            var scale = Average && i < k - 1 ? 0.5 : 1.0;       // M_i = (L_i + up2(M_{i+1}))/2 below the top
            var dScaled = dMerged.Map(v => v * scale);
            dInputs[i] = Laterals[i].Backward(saved.Laterals[i], dScaled).Dx;
            if (i < k - 1) dFromFiner = PoolingReference.UpsampleNearest2dBackward(dScaled, saved.Outputs[i + 1].X.Shape);
        }
        return dInputs;
    }
}
