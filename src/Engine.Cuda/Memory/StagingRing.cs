// The bookkeeping of the upload ring of PinnedStaging, apart from the driver so it can be tested without a GPU: a
// block of `Capacity` staging bytes handed out in FIFO order. Each upload reserves the next contiguous bytes (wrapping
// to the start when the tail is too short for it), copies into them and queues its transfer; its bytes stay in flight
// until the transfer's marker (a token: a CUDA event in PinnedStaging) completes. A reservation can only reuse bytes
// of the oldest reservations still in flight, so the host waits only when the ring comes round onto a transfer the
// stream has not reached yet: with a ring much larger than a step's uploads, never in steady state. Completed
// reservations are retired without waiting (their tokens go back to the caller for reuse).
namespace Engine.Cuda.Memory;

public sealed class StagingRing<TToken> where TToken : class
{
    private readonly Queue<(long Start, long End, TToken Token)> _inFlight = new();
    private long _head;
    private (long Start, long Length)? _open;

    public StagingRing(long capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
    }

    public long Capacity { get; }

    /// <summary>Reservations whose transfer has not been seen to complete.</summary>
    public int InFlight => _inFlight.Count;

    /// <summary>Offset of <paramref name="bytes"/> contiguous bytes (1 ≤ bytes ≤ Capacity) for the next upload. When they
    /// overlap reservations still in flight, the newest of those is returned in <paramref name="waitFor"/> (the caller
    /// waits for it before writing: transfers on one stream complete in order, so the older ones are then done too), and
    /// every overlapped token is added to <paramref name="retired"/>. Commit must follow before the next Reserve.</summary>
    public long Reserve(long bytes, out TToken? waitFor, List<TToken> retired)
    {
        ArgumentNullException.ThrowIfNull(retired);
        if (bytes < 1 || bytes > Capacity)
            throw new ArgumentOutOfRangeException(nameof(bytes), bytes, $"StagingRing.Reserve: a reservation is 1 to {Capacity} bytes (split larger copies).");
        if (_open is not null) throw new InvalidOperationException("StagingRing.Reserve: the previous reservation was not committed.");
        // Claimed: [head, head + bytes), or on a wrap the skipped tail [head, Capacity) plus [0, bytes).
        var wraps = _head + bytes > Capacity;
        var start = wraps ? 0 : _head;
        waitFor = null;
        while (_inFlight.Count > 0)
        {
            var (s, e, token) = _inFlight.Peek();
            var overlaps = wraps ? e > _head || s < bytes : s < start + bytes && e > start;
            if (!overlaps) break;
            _inFlight.Dequeue();
            waitFor = token;
            retired.Add(token);
        }
        _open = (start, bytes);
        return start;
    }

    /// <summary>Marks the last reservation in flight until <paramref name="token"/> completes.</summary>
    public void Commit(TToken token)
    {
        ArgumentNullException.ThrowIfNull(token);
        var (start, length) = _open ?? throw new InvalidOperationException("StagingRing.Commit: nothing was reserved.");
        _inFlight.Enqueue((start, start + length, token));
        _head = start + length;
        _open = null;
    }

    /// <summary>Drops the last reservation when its transfer could not be queued (its bytes were never in flight).</summary>
    public void Cancel() => _open = null;

    /// <summary>Retires the oldest reservations whose tokens <paramref name="isComplete"/> says are done, stopping at the
    /// first that is not (never waits); their tokens are added to <paramref name="retired"/>.</summary>
    public void RetireCompleted(Func<TToken, bool> isComplete, List<TToken> retired)
    {
        ArgumentNullException.ThrowIfNull(isComplete);
        ArgumentNullException.ThrowIfNull(retired);
        while (_inFlight.Count > 0 && isComplete(_inFlight.Peek().Token)) retired.Add(_inFlight.Dequeue().Token);
    }

    /// <summary>Retires every reservation (after the caller waited for the stream), adding their tokens to <paramref name="retired"/>.</summary>
    public void RetireAll(List<TToken> retired)
    {
        ArgumentNullException.ThrowIfNull(retired);
        while (_inFlight.Count > 0) retired.Add(_inFlight.Dequeue().Token);
    }
}
