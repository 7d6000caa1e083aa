using System.Net;
using System.Runtime.CompilerServices;
using k8s;
using k8s.Autorest;
using Microsoft.Extensions.Logging;

namespace Capstan.Runtime.Kubernetes.Operator;

/// <summary>
/// The reflector's loop of a controller, as the API concepts prescribe it: list, then watch from the list's
/// resourceVersion; when the watch ends (a server timeout, a dropped connection) watch again from the last version
/// seen; when the version is too old (<c>410 Gone</c>, <c>Expired</c>, as an ERROR event or a status code) list
/// afresh. Every object of a list comes out as <see cref="WatchEventType.Added"/>, so a consumer that enqueues keys
/// catches up with whatever it missed. Runs until cancelled.
/// </summary>
internal sealed class ListWatch<T>(
    string what,
    Func<CancellationToken, Task<(IEnumerable<T> Items, string ResourceVersion)>> list,
    Func<string, Action<Exception>, CancellationToken, IAsyncEnumerable<(WatchEventType Type, T Object)>> watch,
    Func<T, string?> resourceVersionOf,
    TimeSpan retryDelay,
    ILogger logger)
{
    public async IAsyncEnumerable<(WatchEventType Type, T Object)> RunAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string? version = null;
        while (!cancellationToken.IsCancellationRequested)
        {
            if (version is null)
            {
                var listed = await TryAsync(() => list(cancellationToken), cancellationToken).ConfigureAwait(false);
                if (listed is not { } result)
                {
                    continue;
                }

                version = result.ResourceVersion;
                Log.Listed(logger, what, version);
                foreach (var item in result.Items)
                {
                    yield return (WatchEventType.Added, item);
                }
            }

            var expired = false;
            Exception? failure = null;
            void OnError(Exception e)
            {
                if (e is KubernetesException { Status.Code: (int)HttpStatusCode.Gone })
                {
                    expired = true;
                }
                else
                {
                    failure = e;
                }
            }

            await using var events = watch(version, OnError, cancellationToken).GetAsyncEnumerator(cancellationToken);
            while (true)
            {
                bool more;
                try
                {
                    more = await events.MoveNextAsync().ConfigureAwait(false);
                }
                catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Gone)
                {
                    expired = true;
                    more = false;
                }
                catch (Exception e) when (e is HttpRequestException or HttpOperationException or IOException && !cancellationToken.IsCancellationRequested)
                {
                    failure = e;
                    more = false;
                }

                if (!more)
                {
                    break;
                }

                var (type, obj) = events.Current;
                if (resourceVersionOf(obj) is { Length: > 0 } seen)
                {
                    version = seen;
                }

                if (type is WatchEventType.Added or WatchEventType.Modified or WatchEventType.Deleted)
                {
                    yield return (type, obj);
                }
            }

            if (expired)
            {
                Log.WatchExpired(logger, what, version);
                version = null;
            }
            else if (failure is not null && !cancellationToken.IsCancellationRequested)
            {
                Log.WatchFailed(logger, what, failure);
                await Task.Delay(retryDelay, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task<TResult?> TryAsync<TResult>(Func<Task<TResult>> call, CancellationToken cancellationToken)
        where TResult : struct
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or HttpOperationException or IOException && !cancellationToken.IsCancellationRequested)
        {
            Log.ListFailed(logger, what, e);
            await Task.Delay(retryDelay, cancellationToken).ConfigureAwait(false);
            return null;
        }
    }
}
