using Capstan.Runtime.Kubernetes.Operator;

namespace Capstan.Runtime.Kubernetes.Tests.Operator;

public sealed class WorkQueueTests
{
    private static WorkQueue Queue() => new(capacity: 8, baseDelay: TimeSpan.FromMilliseconds(10), maxDelay: TimeSpan.FromMilliseconds(40));

    [Fact]
    public async Task Add_SameKeyTwiceWhileWaiting_IsHandedOutOnce()
    {
        var queue = Queue();
        await queue.AddAsync("default/a", CancellationToken.None);
        await queue.AddAsync("default/a", CancellationToken.None);
        await queue.AddAsync("default/b", CancellationToken.None);

        Assert.Equal("default/a", await queue.TakeAsync(CancellationToken.None));
        Assert.Equal("default/b", await queue.TakeAsync(CancellationToken.None));
        using var empty = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await queue.TakeAsync(empty.Token));
    }

    [Fact]
    public async Task Add_WhileHeld_ComesBackOnlyAfterDone()
    {
        var queue = Queue();
        await queue.AddAsync("default/a", CancellationToken.None);
        var held = await queue.TakeAsync(CancellationToken.None);

        await queue.AddAsync("default/a", CancellationToken.None);
        using var notYet = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await queue.TakeAsync(notYet.Token));
        await queue.DoneAsync(held, CancellationToken.None);

        Assert.Equal("default/a", await queue.TakeAsync(CancellationToken.None));
    }

    [Fact]
    public async Task AddRateLimited_Failures_DoubleTheDelayUpToTheMaximumUntilForgotten()
    {
        var queue = Queue();
        using var stop = new CancellationTokenSource();
        var delays = queue.RunDelaysAsync(stop.Token);

        var backoffs = Enumerable.Range(0, 4).Select(_ => queue.AddRateLimited("default/a")).ToList();
        queue.Forget("default/a");
        var afterForget = queue.AddRateLimited("default/a");

        Assert.Equal([10, 20, 40, 40], backoffs.Select(d => (int)d.TotalMilliseconds));
        Assert.Equal(10, (int)afterForget.TotalMilliseconds);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        Assert.Equal("default/a", await queue.TakeAsync(timeout.Token));
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => delays);
    }
}
