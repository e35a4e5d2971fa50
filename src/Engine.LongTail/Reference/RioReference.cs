// RIO's object-level memory banks (long-tail-methods.md section 5.2) as a plain list simulation: per bank class a
// list of entries (embedding, proposal, GT box), oldest first. A step samples before it pushes: for each bank class
// among the positives (ascending), the last min(k, q) entries (most-recent mode); then every positive of a bank class
// is appended in row order and the list is trimmed from the front to the capacity.
namespace Engine.LongTail.Reference;

public sealed class RioReference(int numClasses, IEnumerable<int> bankClasses, int replayCount, int capacity)
{
    public sealed record Entry(double[] Embedding, double[] Proposal, double[] GtBox, long Label);

    private readonly HashSet<int> _bank = [.. bankClasses];
    private readonly Dictionary<int, List<Entry>> _queues = [];

    public IReadOnlyList<Entry> Queue(int c) => _queues.TryGetValue(c, out var q) ? q : [];

    /// <summary>One step on rows (x, proposal, gt, label); returns the replayed entries in output order.</summary>
    public List<Entry> Step(IReadOnlyList<Entry> rows)
    {
        var replay = new List<Entry>();
        if (replayCount > 0)
            foreach (var c in rows.Select(e => e.Label).Where(l => l < numClasses && _bank.Contains((int)l)).Distinct().Order())
            {
                var q = Queue((int)c);
                replay.AddRange(q.Skip(q.Count - Math.Min(replayCount, q.Count)));
            }
        foreach (var e in rows)
        {
            if (e.Label >= numClasses || !_bank.Contains((int)e.Label)) continue;
            if (!_queues.TryGetValue((int)e.Label, out var q)) _queues[(int)e.Label] = q = [];
            q.Add(e);
            if (q.Count > capacity) q.RemoveAt(0);
        }
        return replay;
    }
}
