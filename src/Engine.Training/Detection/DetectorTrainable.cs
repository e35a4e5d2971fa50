// The two-stage detector as a trainable model: each ImageBatch of the data layer (raw pixels padded into one
// (N, 3, Hp, Wp) tensor, per-image boxes (R_i, 4) XYXY and class indices (R_i)) becomes the detector's ImageList
// and ground-truth Instances, and the detector's losses are the trainer's. The ROI/RPN samplers draw from
// generators the detector owns; they are exposed so a resumed run draws the same RoIs. The long-tail components'
// running state (EQLv2 gradient sums, Seesaw counts, FCBL confusion, CRAT Fisher bank, RIO queues, FHM moments,
// the class-sampling generators of Federated and BAGS) is exposed as stateful components
// "long_tail.classification_loss", "long_tail.embedding_augmenter" and "long_tail.gradient_transfuser", so the
// checkpoint holds it as "component.long_tail.<component>.<state name>"; the calibrator's statistics are model
// buffers and travel with the weights.
using Engine.Data.Transforms;
using Engine.Detection;
using Engine.Detection.Modeling.MetaArch;
using Engine.LongTail;
using Engine.Nn;

namespace Engine.Training.Detection;

public sealed class DetectorTrainable : ITrainable<ImageBatch>
{
    public DetectorTrainable(GeneralizedRcnn detector)
    {
        ArgumentNullException.ThrowIfNull(detector);
        Detector = detector;
        var generators = new Dictionary<string, Generator> { ["roi_heads.sampler"] = detector.RoiHeads.Generator };
        // The builder may hand one generator to both heads; checkpointing it once keeps its position unambiguous.
        if (!ReferenceEquals(detector.ProposalGenerator.Generator, detector.RoiHeads.Generator))
            generators["proposal_generator.sampler"] = detector.ProposalGenerator.Generator;
        Generators = generators;
        var predictor = detector.RoiHeads.BoxPredictor;
        var components = new Dictionary<string, IStatefulComponent> { ["long_tail.classification_loss"] = new StateDictComponent(predictor.ClassificationLoss.StateDict, predictor.ClassificationLoss.LoadStateDict) };
        if (detector.RoiHeads.EmbeddingAugmenter is { } augmenter)
            components["long_tail.embedding_augmenter"] = new StateDictComponent(augmenter.StateDict, augmenter.LoadStateDict);
        if (predictor.Transfuser is { } transfuser)
            components["long_tail.gradient_transfuser"] = new StateDictComponent(transfuser.StateDict, transfuser.LoadStateDict);
        StatefulComponents = components;
    }

    public IReadOnlyDictionary<string, IStatefulComponent> StatefulComponents { get; }

    /// <summary>A long-tail component's StateDict / LoadStateDict as checkpointed trainer state.</summary>
    private sealed class StateDictComponent(Func<StateDict> save, Action<IReadOnlyDictionary<string, Tensor>> load) : IStatefulComponent
    {
        public ComponentState SaveState() => new(save(), new Dictionary<string, System.Text.Json.Nodes.JsonNode?>());

        public void LoadState(ComponentState state) => load(state.Tensors);
    }

    public GeneralizedRcnn Detector { get; }

    public Module Module => Detector;

    public IReadOnlyDictionary<string, Generator> Generators { get; }

    public IReadOnlyDictionary<string, Tensor> Losses(ImageBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Boxes.Count != batch.Count || batch.Classes.Count != batch.Count)
            throw new ArgumentException($"DetectorTrainable.Losses: batch {batch.Index} has {batch.Count} images but {batch.Boxes.Count} box and {batch.Classes.Count} class tensors; give one of each per image.");
        if (!Detector.IsTraining)
            throw new InvalidOperationException("DetectorTrainable.Losses: the detector is in eval mode; call Detector.Train() before training (evaluation switches it back itself).");
        // The ImageList and targets take ownership of what they are given, so they get tensors of their own on the detector's device
        // (To: a storage-sharing view where the batch is there already, else a copy; the data layer assembles batches on the host), and
        // the batch keeps its own tensors (the trainer disposes the batch after the step).
        var device = Detector.Device;
        using var images = new ImageList(batch.Images.To(device), batch.ImageSizes, batch.OriginalSizes);
        var targets = new List<Instances>(batch.Count);
        try
        {
            for (var i = 0; i < batch.Count; i++)
                targets.Add(Instances.FromGroundTruth(batch.ImageSizes[i], batch.Boxes[i].To(device), batch.Classes[i].To(device)));
            return Detector.Losses(images, targets);
        }
        finally
        {
            foreach (var t in targets) t.Dispose();
        }
    }
}
