using System.Reflection;
using System.Runtime.ExceptionServices;
using Capstan.Core.Storage;
using Capstan.Core.Tracking;

namespace Capstan.Runtime.Kubernetes.Tests.Operator;

/// <summary>
/// A tracking store behind a Capstan API that can go away: while <see cref="Down"/>, ending a run (UpdateRunAsync) fails with
/// the HttpRequestException CapstanClient throws when nothing answers; every other call reaches the real store.
/// </summary>
public class TrackingOutage : DispatchProxy
{
    private IMetadataStore _inner = null!;
    private int _refused;

    public bool Down { get; set; }

    /// <summary>Run updates refused so far: how often the operator tried while the API was down.</summary>
    public int RefusedUpdates => Volatile.Read(ref _refused);

    public static (IMetadataStore Store, TrackingOutage Outage) Wrap(IMetadataStore inner)
    {
        var store = Create<IMetadataStore, TrackingOutage>();
        var outage = (TrackingOutage)(object)store;
        outage._inner = inner;
        return (store, outage);
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(targetMethod);
        if (Down && targetMethod.Name == nameof(IMetadataStore.UpdateRunAsync))
        {
            Interlocked.Increment(ref _refused);
            return Task.FromException<RunInfo>(new HttpRequestException("Connection refused (127.0.0.1:8000)"));
        }

        try
        {
            return targetMethod.Invoke(_inner, args);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            ExceptionDispatchInfo.Throw(e.InnerException);
            throw;
        }
    }
}
