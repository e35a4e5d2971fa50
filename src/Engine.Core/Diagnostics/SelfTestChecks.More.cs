// Self-test checks of the remaining op families.
namespace Engine.Diagnostics;

public static partial class SelfTest
{
    private static partial IEnumerable<SelfTestCheck> MoreChecks()
    {
        yield break;
    }
}
