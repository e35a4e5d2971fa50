// Marks normalization layers, whose affine parameters detectron2 trains with their own weight decay
// (SOLVER.WEIGHT_DECAY_NORM); ParamGroups.Build reads it.
namespace Engine.Nn;

public interface INormLayer;
