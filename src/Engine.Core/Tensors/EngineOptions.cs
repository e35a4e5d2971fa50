// Process-wide switches for testing and debugging.
namespace Engine;

public static class EngineOptions
{
    /// <summary>Fill every new allocation with 0xFF bytes (NaN for float32), so that an op that leaves an
    /// output element unwritten produces NaN and fails its test. Tests turn this on.</summary>
    public static bool PoisonAllocations { get; set; }
}
