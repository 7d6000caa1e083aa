using System.Reflection;
using Capstan.Core.Resources;
using Capstan.Core.Storage;

namespace Capstan.Server.Tests.ControlPlane;

public sealed class ControlPlaneResilienceTests
{
    [Fact]
    public async Task Reconcile_UnexpectedStoreErrors_JobRetriedWithBackoffAndSucceeds()
    {
        await using var plane = await ControlPlaneHarness.StartAsync(metadata: inner => FlakyStore.Wrap(inner, failures: 3));
        await plane.ApplyAsync("""
            apiVersion: capstan.dev/v1alpha1
            kind: TrainJob
            metadata:
              name: survivor
            spec:
              command: ["/bin/sh", "-c", "echo loss=0.5"]
            """);

        // Each failing pass throws what no reconciler expects (a driver bug, say); the loop must outlive it.
        var job = await plane.WaitForFinishAsync("survivor");

        Assert.Equal(TrainJobPhase.Succeeded, job.Status!.Phase);
        Assert.Equal(1, job.Status.Attempts);
    }

    /// <summary>The real store, except that its first <c>failures</c> CreateRun calls throw NotSupportedException.</summary>
    public class FlakyStore : DispatchProxy
    {
        private IMetadataStore _inner = null!;
        private int _failuresLeft;

        public static IMetadataStore Wrap(IMetadataStore inner, int failures)
        {
            var proxy = Create<IMetadataStore, FlakyStore>();
            var flaky = (FlakyStore)(object)proxy;
            flaky._inner = inner;
            flaky._failuresLeft = failures;
            return proxy;
        }

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            if (targetMethod?.Name == nameof(IMetadataStore.CreateRunAsync) && Interlocked.Decrement(ref _failuresLeft) >= 0)
            {
                throw new NotSupportedException("simulated driver bug");
            }

            try
            {
                return targetMethod!.Invoke(_inner, args);
            }
            catch (TargetInvocationException e) when (e.InnerException is not null)
            {
                throw e.InnerException;
            }
        }
    }
}
