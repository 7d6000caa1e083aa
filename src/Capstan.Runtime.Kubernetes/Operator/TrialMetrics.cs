using System.Collections.Concurrent;
using System.Globalization;
using Capstan.Core.Resources;
using Capstan.Core.Runtime;
using Capstan.Core.Tracking;
using Capstan.Runtime.Kubernetes.Rendering;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Engine = Capstan.Tuning;

namespace Capstan.Runtime.Kubernetes.Operator;

/// <summary>
/// A trial's metrics on a cluster, read the way Katib's default StdOut collector reads them: the <c>name=value</c> lines
/// the training code printed (<see cref="StdoutMetrics"/>, the same parser the local runtime uses), from the log of the
/// trial Job's rank-0 pod (found by the <c>capstan.dev/trainjob</c> label the renderer puts on the pod template, which
/// does not depend on the Kubernetes version labelling Job pods; an Indexed Job's rank is its completion index), through
/// the API server's <c>pods/log</c>. Read when the trial's TrainJob has ended, and the
/// observation kept in the Experiment's status, so it outlives the pod; read while it runs for early stopping.
/// </summary>
internal sealed class TrialMetrics(IKubernetes client, TimeProvider? time = null)
{
    // Lines are asked for from this much before the newest line seen, then deduplicated by their timestamps: the
    // kubelet counts sinceSeconds on the node's clock, which may run ahead of the operator's.
    private const int ClockSkewSeconds = 10;

    // A cursor nobody has read for this long belongs to a trial that went without a final read (its experiment was
    // deleted, its pod replaced): dropped, so the operator's memory does not grow with every such trial.
    private static readonly TimeSpan s_idleCursor = TimeSpan.FromMinutes(30);

    private readonly ConcurrentDictionary<string, LogCursor> _cursors = new(StringComparer.Ordinal);

    /// <summary>Running trials whose log is being read incrementally.</summary>
    internal int CursorCount => _cursors.Count;

    /// <summary>
    /// The metrics in <paramref name="names"/> that the trial's rank-0 pod printed so far (all of them once it has
    /// ended), in the order printed; null with the reason when no pod or log is left to read. While the trial
    /// <paramref name="running"/>, each call reads only what the pod printed since the last (<c>sinceSeconds</c> with
    /// <c>timestamps</c>, lines already seen dropped by their time) and keeps the parser's step counting between calls;
    /// once it has ended the whole log is read once more.
    /// </summary>
    public async Task<(IReadOnlyList<Metric>? Metrics, string? Problem)> ReadAsync(string @namespace, string trial, IEnumerable<string> names, CancellationToken cancellationToken, bool running = false)
    {
        var pods = await client.CoreV1.ListNamespacedPodAsync(@namespace, labelSelector: $"{CapstanLabels.TrainJob}={trial}", cancellationToken: cancellationToken).ConfigureAwait(false);
        var pod = pods.Items
            .Where(p => Rank(p) == 0)
            .OrderByDescending(p => p.Status?.Phase == "Succeeded")
            .ThenByDescending(p => p.Metadata.CreationTimestamp)
            .FirstOrDefault();
        if (pod is null)
        {
            return (null, $"no pod of Job {trial} is left to read its metrics from");
        }

        var wanted = names.ToHashSet(StringComparer.Ordinal);
        var key = $"{@namespace}/{pod.Metadata.Name}/{pod.Metadata.Uid}";
        LogCursor cursor;
        if (running)
        {
            cursor = _cursors.GetOrAdd(key, static _ => new LogCursor());
            cursor.LastUsed = (time ?? TimeProvider.System).GetUtcNow();
            ForgetIdle(cursor.LastUsed);
        }
        else
        {
            _cursors.TryRemove(key, out _);
            cursor = new LogCursor();
        }

        try
        {
            int? sinceSeconds = cursor.Newest is { } newest
                ? (int)Math.Ceiling((DateTimeOffset.UtcNow - DateTimeOffset.FromUnixTimeMilliseconds(newest / 1_000_000)).TotalSeconds) + ClockSkewSeconds
                : null;
            var stream = await client.CoreV1.ReadNamespacedPodLogAsync(
                pod.Metadata.Name, @namespace, container: TrainJobRenderer.ContainerName, sinceSeconds: sinceSeconds, timestamps: true, cancellationToken: cancellationToken).ConfigureAwait(false);
            using var reader = new StreamReader(stream);
            cursor.BeginRead();
            while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
            {
                if (cursor.IsNew(line, out var text))
                {
                    cursor.Found.AddRange(cursor.Parser.Parse(text, 0));
                }
            }

            cursor.EndRead();
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            _cursors.TryRemove(key, out _);
            return (null, $"the log of pod {pod.Metadata.Name} is gone");
        }
        catch
        {
            // A read cut off part-way has moved the parser's step counts: the next read starts over from the whole log.
            _cursors.TryRemove(key, out _);
            throw;
        }

        return ([.. cursor.Found.Where(m => wanted.Contains(m.Key))], null);
    }

    private void ForgetIdle(DateTimeOffset now)
    {
        foreach (var (key, cursor) in _cursors)
        {
            if (now - cursor.LastUsed > s_idleCursor)
            {
                _cursors.TryRemove(key, out _);
            }
        }
    }

    /// <summary>Katib's observation: min, max and latest (by step) of each metric; null when none was printed.</summary>
    public static Observation? Observe(IReadOnlyList<Metric>? found)
    {
        var metrics = (found ?? [])
            .Where(m => !double.IsNaN(m.Value))
            .GroupBy(m => m.Key, StringComparer.Ordinal)
            .Select(g => new ObservedMetric { Name = g.Key, Min = g.Min(m => m.Value), Max = g.Max(m => m.Value), Latest = g.OrderBy(m => m.Step).Last().Value })
            .ToList();
        return metrics.Count == 0 ? null : new Observation { Metrics = metrics };
    }

    /// <summary>One metric's values by step, as an early-stopping rule reads them.</summary>
    public static IReadOnlyList<Engine.IntermediateValue> Series(IReadOnlyList<Metric>? found, string metric) =>
        [.. (found ?? []).Where(m => m.Key == metric).OrderBy(m => m.Step).Select(m => new Engine.IntermediateValue(m.Step, m.Value))];

    /// <summary>
    /// How far a running pod's log has been read: the metrics parsed so far, the parser (it numbers steps), and the
    /// newest line time seen (Unix nanoseconds) with how many lines carried it, to drop those when a read repeats them.
    /// </summary>
    private sealed class LogCursor
    {
        private long _skipAtNewest;
        private long? _readNewest;
        private long _readAtNewest;

        public List<Metric> Found { get; } = [];

        public StdoutMetrics Parser { get; } = new();

        public DateTimeOffset LastUsed { get; set; }

        public long? Newest { get; private set; }

        public long AtNewest { get; private set; }

        public void BeginRead()
        {
            _skipAtNewest = AtNewest;
            _readNewest = null;
            _readAtNewest = 0;
        }

        /// <summary>Splits off the line's timestamp; false for a line an earlier read already took.</summary>
        public bool IsNew(string line, out string text)
        {
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            if (space < 0 || !TryParseTime(line.AsSpan(0, space), out var time))
            {
                text = line; // no timestamp (not what was asked for): taken as it is
                return true;
            }

            text = line[(space + 1)..];
            if (Newest is { } newest && (time < newest || (time == newest && _skipAtNewest-- > 0)))
            {
                return false;
            }

            if (_readNewest is not { } seen || time > seen)
            {
                (_readNewest, _readAtNewest) = (time, 1);
            }
            else if (time == seen)
            {
                _readAtNewest++;
            }

            return true;
        }

        public void EndRead()
        {
            if (_readNewest is not { } seen)
            {
                return;
            }

            if (Newest is { } newest && seen == newest)
            {
                AtNewest += _readAtNewest;
            }
            else
            {
                (Newest, AtNewest) = (seen, _readAtNewest);
            }
        }

        /// <summary>RFC 3339 with up to nine fraction digits (the kubelet trims trailing zeros) as Unix nanoseconds.</summary>
        private static bool TryParseTime(ReadOnlySpan<char> text, out long nanoseconds)
        {
            nanoseconds = 0;
            if (text.Length < 20 || text[^1] != 'Z'
                || !DateTime.TryParseExact(text[..19], "yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var seconds))
            {
                return false;
            }

            long fraction = 0;
            var digits = 0;
            if (text[19] == '.')
            {
                foreach (var c in text[20..^1])
                {
                    if (c is < '0' or > '9' || digits == 9)
                    {
                        return false;
                    }

                    fraction = (fraction * 10) + (c - '0');
                    digits++;
                }
            }
            else if (text.Length != 20)
            {
                return false;
            }

            for (; digits < 9; digits++)
            {
                fraction *= 10;
            }

            nanoseconds = (new DateTimeOffset(seconds, TimeSpan.Zero).ToUnixTimeSeconds() * 1_000_000_000) + fraction;
            return true;
        }
    }

    private static int Rank(V1Pod pod) =>
        pod.Metadata.Annotations?.TryGetValue(CapstanLabels.JobCompletionIndex, out var index) == true && int.TryParse(index, out var rank) ? rank : 0;
}
