using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading.Channels;
using Capstan.Core;
using Capstan.Core.Runtime;
using Capstan.Core.Tracking;

namespace Capstan.Runtime.Local;

/// <summary>
/// Runs workloads as child processes of this machine, with CPU, memory and GPU accounting and a queue.
/// <para>
/// Each replica runs as <c>setsid /bin/sh -c TRAMPOLINE ... COMMAND ARGS</c>: the shell leads a new process group
/// (so stopping signals every descendant), sends the command's stdout and stderr to files in the replica's folder
/// (so the process keeps running and its output is kept while the control plane restarts), and records the
/// command's exit code in a file (so a later runtime instance learns how an adopted replica ended).
/// </para>
/// <para>
/// The shell catches SIGTERM (a handler, not an ignore, so the command still gets the default) and so outlives
/// its command: a stop or deadline sends SIGTERM to the group, the command may clean up within
/// <see cref="LocalRuntimeOptions.TerminationGracePeriod"/>, the shell records its exit code, and SIGKILL follows
/// for whatever is left. When a replica's shell exits, what remains of its group is killed, as Kubernetes ends a
/// pod's other processes with its main one.
/// </para>
/// <para>
/// Scheduling is one loop fed by a channel: submissions and freed capacity wake it, it starts queued gangs in
/// order (priority, then submission) while the head of the queue fits, all replicas of a gang at once. The head
/// blocks those behind it, so a large job is never starved by smaller ones.
/// </para>
/// <para>
/// Disposing leaves running processes alone: a new instance over the same <see cref="LocalRuntimeOptions.RootPath"/>
/// re-adopts them. Use <see cref="StopAsync"/> to end a workload.
/// </para>
/// </summary>
public sealed partial class LocalWorkloadRuntime : IWorkloadRuntime
{
    public const string LogFile = "output.log";

    private const string Trampoline =
        "o=$1; e=$2; x=$3; shift 3\n" +
        "exec </dev/null >>\"$o\" 2>>\"$e\"\n" +
        "trap : TERM INT\n" +
        "\"$@\"\n" +
        "c=$?\n" +
        "echo \"$c\" >\"$x\"\n" +
        "exit \"$c\"\n";

    private readonly LocalRuntimeOptions _options;
    private readonly string _root;
    private readonly string? _setsid;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, LocalWorkload> _workloads = new(StringComparer.Ordinal);
    private readonly List<LocalWorkload> _queue = [];
    private readonly List<Channel<WorkloadEvent>> _watchers = [];
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1)
    {
        FullMode = BoundedChannelFullMode.DropWrite,
        SingleReader = true,
    });

    private readonly CancellationTokenSource _disposing = new();
    private readonly Task _scheduler;
    private readonly SortedSet<int> _freeGpus;
    private ResourceRequest _used = ResourceRequest.Zero;
    private long _sequence;
    private bool _disposed;

    public LocalWorkloadRuntime(LocalRuntimeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.RootPath))
        {
            throw CapstanException.Invalid("local runtime: RootPath is required");
        }

        _options = options;
        _root = Path.GetFullPath(options.RootPath);
        Capacity = options.ResolveCapacity();
        _setsid = new[] { "/usr/bin/setsid", "/bin/setsid" }.FirstOrDefault(File.Exists);
        _freeGpus = [.. Enumerable.Range(0, Capacity.Gpus)];
        Directory.CreateDirectory(_root);
        Recover();
        _scheduler = ScheduleLoopAsync(_disposing.Token);
    }

    /// <summary>All the CPU, memory and GPUs this runtime hands out.</summary>
    public ResourceRequest Capacity { get; }

    /// <summary>What running gangs hold now.</summary>
    public ResourceRequest Used
    {
        get
        {
            lock (_gate)
            {
                return _used;
            }
        }
    }

    public Task<WorkloadStatus> SubmitAsync(WorkloadSpec spec, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ObjectDisposedException.ThrowIf(_disposed, this);
        Validate(spec);
        var perReplica = ResourceRequest.From(spec.Resources);
        var request = perReplica.Times(spec.Replicas);
        lock (_gate)
        {
            if (_workloads.TryGetValue(spec.WorkloadId, out var existing))
            {
                return Task.FromResult(existing.Snapshot());
            }

            var workload = new LocalWorkload(spec.WorkloadId, Path.Combine(_root, spec.WorkloadId), spec, request, _sequence++, DateTimeOffset.UtcNow)
            {
                ActiveDeadlineSeconds = spec.ActiveDeadlineSeconds,
            };
            _workloads.Add(workload.WorkloadId, workload);
            if (!request.FitsIn(Capacity))
            {
                var what = spec.Replicas > 1 ? $"{spec.Replicas} replicas of {perReplica} need {request}" : $"it needs {request}";
                Finish(workload, WorkloadPhase.Failed, WorkloadReasons.Unschedulable, $"the gang can never start here: {what}, and this machine has {Capacity} in all");
                return Task.FromResult(workload.Snapshot());
            }

            InsertQueued(workload);
            var status = workload.Snapshot();
            Publish(new WorkloadStatusChanged(workload.WorkloadId, status));
            _wake.Writer.TryWrite(true);
            return Task.FromResult(status);
        }
    }

    public Task<WorkloadStatus?> GetStatusAsync(string workloadId, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult(_workloads.TryGetValue(workloadId, out var workload) ? workload.Snapshot() : null);
        }
    }

    public Task<IReadOnlyList<WorkloadStatus>> ListAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult<IReadOnlyList<WorkloadStatus>>([.. _workloads.Values.Select(w => w.Snapshot())]);
        }
    }

    public async Task<WorkloadStatus?> StopAsync(string workloadId, CancellationToken cancellationToken = default)
    {
        LocalWorkload? workload;
        lock (_gate)
        {
            if (!_workloads.TryGetValue(workloadId, out workload))
            {
                return null;
            }

            if (workload.Phase == WorkloadPhase.Queued)
            {
                _queue.Remove(workload);
                Finish(workload, WorkloadPhase.Failed, WorkloadReasons.Stopped, "stopped while queued");
                _wake.Writer.TryWrite(true);
                return workload.Snapshot();
            }

            if (workload.Phase != WorkloadPhase.Running)
            {
                return workload.Snapshot();
            }

            workload.StopRequested = true;
            workload.Attention.TrySetResult();
        }

        await workload.Supervision.WaitAsync(cancellationToken).ConfigureAwait(false);
        lock (_gate)
        {
            return workload.Snapshot();
        }
    }

    public async IAsyncEnumerable<string> ReadLogsAsync(string workloadId, bool follow, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        LocalWorkload? workload;
        lock (_gate)
        {
            _workloads.TryGetValue(workloadId, out workload);
        }

        var path = workload?.LogPath ?? Path.Combine(_root, workloadId, LogFile);
        if (workload is null && !File.Exists(path))
        {
            throw CapstanException.NotFound($"no workload '{workloadId}' in the local runtime");
        }

        FileStream? stream = null;
        var partial = new List<byte>();
        var buffer = new byte[16 * 1024];
        var lines = new List<string>();
        try
        {
            while (true)
            {
                Task changed;
                bool done;
                lock (_gate)
                {
                    changed = workload?.OutputChanged.Task ?? Task.CompletedTask;
                    done = workload is null || workload.OutputDone;
                }

                if (stream is null && File.Exists(path))
                {
                    stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                }

                if (stream is not null)
                {
                    int read;
                    while ((read = await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                    {
                        SplitLines(buffer.AsSpan(0, read), partial, lines);
                    }
                }

                foreach (var line in lines)
                {
                    yield return line;
                }

                lines.Clear();
                if (!follow || done)
                {
                    if (partial.Count > 0)
                    {
                        yield return Encoding.UTF8.GetString([.. partial]);
                    }

                    yield break;
                }

                await Task.WhenAny(changed, Task.Delay(TimeSpan.FromMilliseconds(250), cancellationToken)).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
            }
        }
        finally
        {
            if (stream is not null)
            {
                await stream.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>Events from the moment of this call (not of the first read), so a watch opened before a submit misses nothing.</summary>
    public IAsyncEnumerable<WorkloadEvent> WatchAsync(CancellationToken cancellationToken = default)
    {
        var channel = Channel.CreateUnbounded<WorkloadEvent>(new UnboundedChannelOptions { SingleReader = true });
        lock (_watchers)
        {
            if (_disposed)
            {
                channel.Writer.TryComplete();
            }

            _watchers.Add(channel);
        }

        return ReadEventsAsync(channel, cancellationToken);
    }

    private async IAsyncEnumerable<WorkloadEvent> ReadEventsAsync(Channel<WorkloadEvent> channel, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var item in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                yield return item;
            }
        }
        finally
        {
            lock (_watchers)
            {
                _watchers.Remove(channel);
            }
        }
    }

    /// <summary>Stops scheduling and watching; running processes keep running for a later instance to adopt.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await _disposing.CancelAsync().ConfigureAwait(false);
        _wake.Writer.TryComplete();
        Task[] supervisions;
        lock (_gate)
        {
            supervisions = [.. _workloads.Values.Select(w => w.Supervision)];
        }

        await Task.WhenAll([_scheduler, .. supervisions]).ConfigureAwait(false);
        lock (_watchers)
        {
            foreach (var watcher in _watchers)
            {
                watcher.Writer.TryComplete();
            }
        }

        lock (_gate)
        {
            foreach (var replica in _workloads.Values.SelectMany(w => w.Replicas))
            {
                replica.Process?.Dispose();
            }
        }

        _disposing.Dispose();
    }

    private static void Validate(WorkloadSpec spec)
    {
        if (!WorkloadIdPattern().IsMatch(spec.WorkloadId) || spec.WorkloadId is "." or "..")
        {
            throw CapstanException.Invalid($"workload id '{spec.WorkloadId}' must be 1-200 letters, digits, '.', '_' or '-'");
        }

        if (spec.Command.Count == 0 || string.IsNullOrEmpty(spec.Command[0]))
        {
            throw CapstanException.Invalid($"workload '{spec.WorkloadId}' has no command");
        }

        if (spec.Replicas < 1 || spec.NprocPerNode < 1)
        {
            throw CapstanException.Invalid($"workload '{spec.WorkloadId}': replicas and nprocPerNode must be at least 1");
        }

        if (spec.ActiveDeadlineSeconds is <= 0)
        {
            throw CapstanException.Invalid($"workload '{spec.WorkloadId}': activeDeadlineSeconds must be positive");
        }
    }

    private void InsertQueued(LocalWorkload workload)
    {
        var index = _queue.FindIndex(q => q.Priority < workload.Priority || (q.Priority == workload.Priority && q.Sequence > workload.Sequence));
        _queue.Insert(index < 0 ? _queue.Count : index, workload);
    }

    private async Task ScheduleLoopAsync(CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var _ in _wake.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                lock (_gate)
                {
                    StartWhatFits();
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Starts queued gangs in order while the head fits; tells the rest why they wait. Caller holds the lock.</summary>
    private void StartWhatFits()
    {
        while (_queue.Count > 0 && !_disposing.IsCancellationRequested)
        {
            var head = _queue[0];
            if (!head.Request.FitsIn(Capacity - _used))
            {
                break;
            }

            _queue.RemoveAt(0);
            Start(head);
        }

        for (var i = 0; i < _queue.Count; i++)
        {
            var waiting = _queue[i];
            var message = i == 0
                ? $"needs {waiting.Request}; free now {Capacity - _used}"
                : $"behind {i} workload(s) in the queue; needs {waiting.Request}";
            if (waiting.Reason != WorkloadReasons.InsufficientCapacity || waiting.Message != message)
            {
                var reasonChanged = waiting.Reason != WorkloadReasons.InsufficientCapacity;
                waiting.Reason = WorkloadReasons.InsufficientCapacity;
                waiting.Message = message;
                if (reasonChanged)
                {
                    Publish(new WorkloadStatusChanged(waiting.WorkloadId, waiting.Snapshot()));
                }
            }
        }
    }

    /// <summary>Starts every replica of the gang, or none. Caller holds the lock.</summary>
    private void Start(LocalWorkload workload)
    {
        var spec = workload.Spec!;
        try
        {
            if (Directory.Exists(workload.Folder))
            {
                Directory.Delete(workload.Folder, recursive: true);
            }

            Directory.CreateDirectory(workload.Folder);
            File.WriteAllBytes(workload.LogPath, []);
            var distributed = DistributedEnvironment.Applies(spec.Replicas, spec.NprocPerNode);
            var port = distributed ? FreePort() : 0;
            var gpusEach = workload.Request.Gpus / spec.Replicas;
            for (var rank = 0; rank < spec.Replicas; rank++)
            {
                var folder = Path.Combine(workload.Folder, $"replica-{rank}");
                ReplicaOutput.Prepare(folder);
                var workingDirectory = Path.GetFullPath(spec.WorkingDir ?? folder);
                Directory.CreateDirectory(workingDirectory);
                int[] gpus = [.. _freeGpus.Take(gpusEach)];
                _freeGpus.ExceptWith(gpus);
                workload.Replicas.Add(new LocalReplica(rank, folder, workingDirectory) { Gpus = gpus });
            }

            foreach (var replica in workload.Replicas)
            {
                var environment = distributed
                    ? DistributedEnvironment.For(replica.Rank, spec.Replicas, spec.NprocPerNode, _options.MasterAddress, port)
                    : null;
                StartReplica(spec, replica, environment);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            foreach (var replica in workload.Replicas.Where(r => r.ProcessId > 0))
            {
                KillGroup(replica, ProcessGroups.SigKill);
            }

            _freeGpus.UnionWith(workload.Replicas.SelectMany(r => r.Gpus));

            Finish(workload, WorkloadPhase.Failed, WorkloadReasons.StartFailed, $"could not start: {e.Message}");
            return;
        }

        _used += workload.Request;
        workload.Phase = WorkloadPhase.Running;
        workload.Reason = WorkloadReasons.Started;
        workload.Message = null;
        workload.StartTime = DateTimeOffset.UtcNow;
        Persist(workload);
        Publish(new WorkloadStatusChanged(workload.WorkloadId, workload.Snapshot()));
        workload.Supervision = SuperviseAsync(workload, adopted: false, _disposing.Token);
    }

    private void StartReplica(WorkloadSpec spec, LocalReplica replica, IReadOnlyDictionary<string, string>? distributed)
    {
        var info = new ProcessStartInfo(_setsid ?? "/bin/sh")
        {
            UseShellExecute = false,
            WorkingDirectory = replica.WorkingDirectory,
        };
        if (_setsid is not null)
        {
            info.ArgumentList.Add("/bin/sh");
        }

        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(Trampoline);
        info.ArgumentList.Add("capstan-replica");
        info.ArgumentList.Add(Path.Combine(replica.Folder, ReplicaOutput.StdoutFile));
        info.ArgumentList.Add(Path.Combine(replica.Folder, ReplicaOutput.StderrFile));
        info.ArgumentList.Add(Path.Combine(replica.Folder, ReplicaOutput.ExitCodeFile));
        foreach (var argument in spec.Command.Concat(spec.Args))
        {
            info.ArgumentList.Add(argument);
        }

        // Output reaches the log as it is printed, as Kubeflow's operator arranges for Python.
        info.Environment["PYTHONUNBUFFERED"] = "1";
        foreach (var (name, value) in spec.Environment)
        {
            info.Environment[name] = value;
        }

        foreach (var (name, value) in distributed ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
        }

        if (replica.Gpus.Count > 0)
        {
            // The GPU slots this replica holds, as the NVIDIA device plugin exposes only a pod's own devices.
            info.Environment["CUDA_VISIBLE_DEVICES"] = string.Join(',', replica.Gpus);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("the process did not start");
        replica.Process = process;
        replica.ProcessId = process.Id;
        replica.StartTicks = ProcessGroups.StartTicks(process.Id) ?? 0;
        replica.Exit = WaitForChildAsync(process);
    }

    private static async Task<int?> WaitForChildAsync(Process process)
    {
        await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        return process.ExitCode;
    }

    private async Task<int?> WaitForAdoptedAsync(LocalReplica replica, CancellationToken cancellationToken)
    {
        while (ProcessGroups.IsAlive(replica.ProcessId, replica.StartTicks))
        {
            await Task.Delay(_options.OutputPollInterval * 4, cancellationToken).ConfigureAwait(false);
        }

        return ReplicaOutput.ReadExitCode(replica.Folder);
    }

    /// <summary>
    /// Follows a running gang until every replica has exited: copies output to the combined log, reports metrics,
    /// and ends the gang on a failed or vanished replica, the deadline, or a stop request (SIGTERM to every
    /// replica's process group, SIGKILL after the grace period).
    /// </summary>
    private async Task SuperviseAsync(LocalWorkload workload, bool adopted, CancellationToken cancellationToken)
    {
        await Task.Yield();
        var prefix = workload.Replicas.Count > 1;
        var outputs = workload.Replicas.Select(r => new ReplicaOutput(r.Folder, resume: adopted)).ToArray();
        Array.ForEach(outputs, o => o.SavePosition());
        var parsers = workload.Replicas.Select(_ => new StdoutMetrics()).ToArray();
        var lines = new List<(bool IsStdout, string Line)>();
        var log = new FileStream(workload.LogPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
        DateTimeOffset? deadline = workload.ActiveDeadlineSeconds is { } seconds && workload.StartTime is { } started
            ? started.AddSeconds(seconds)
            : null;
        string? endReason = null;
        string? endMessage = null;
        DateTimeOffset? killAt = null;
        try
        {
            while (true)
            {
                // An adopted replica's watch ends cancelled, not exited, when this instance is disposed.
                cancellationToken.ThrowIfCancellationRequested();
                var exited = workload.Replicas.All(r => r.Exit.IsCompleted);
                try
                {
                    CopyOutput(workload, outputs, parsers, lines, log, prefix, final: exited);
                }
                catch (IOException) when (!exited)
                {
                    // A full disk or a vanished file must not leave the gang unsupervised; try again next round.
                }

                if (exited)
                {
                    break;
                }

                var now = DateTimeOffset.UtcNow;
                if (endReason is null)
                {
                    (endReason, endMessage) = EndCondition(workload, deadline, now);
                    if (endReason is not null)
                    {
                        killAt = now + _options.TerminationGracePeriod;
                        SignalAll(workload, ProcessGroups.SigTerm);
                    }
                }
                else if (now >= killAt)
                {
                    SignalAll(workload, ProcessGroups.SigKill);
                    killAt = DateTimeOffset.MaxValue;
                }

                Task attention;
                lock (_gate)
                {
                    attention = workload.Attention.Task;
                    if (attention.IsCompleted)
                    {
                        workload.Attention = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                        continue;
                    }
                }

                var waits = workload.Replicas.Where(r => !r.Exit.IsCompleted).Select(r => (Task)r.Exit)
                    .Append(attention)
                    .Append(Task.Delay(_options.OutputPollInterval, cancellationToken));
                await Task.WhenAny(waits).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Disposed: leave the processes running, and note how far their output was copied, for the next instance.
            try
            {
                CopyOutput(workload, outputs, parsers, lines, log, prefix, final: false);
                Array.ForEach(outputs, o => o.SavePosition());
            }
            catch (IOException)
            {
            }

            await log.DisposeAsync().ConfigureAwait(false);
            Array.ForEach(outputs, o => o.Dispose());
            return;
        }

        await log.DisposeAsync().ConfigureAwait(false);
        Array.ForEach(outputs, o => o.Dispose());

        // Whatever a replica left behind in its group (background children) ends with the gang, before it counts as ended.
        SignalAll(workload, ProcessGroups.SigKill, ownOnly: true);
        var settle = DateTimeOffset.UtcNow.AddSeconds(2);
        while (workload.Replicas.Any(r => r.Process is not null && ProcessGroups.HasLiveMembers(r.ProcessId)) && DateTimeOffset.UtcNow < settle)
        {
            await Task.Delay(10, CancellationToken.None).ConfigureAwait(false);
        }

        lock (_gate)
        {
            foreach (var replica in workload.Replicas)
            {
                replica.ExitCode = replica.Exit.IsCompletedSuccessfully ? replica.Exit.Result : null;
            }

            var (phase, reason, message) = Outcome(workload, endReason, endMessage);
            _used -= workload.Request;
            _freeGpus.UnionWith(workload.Replicas.SelectMany(r => r.Gpus));
            Finish(workload, phase, reason, message);
            _wake.Writer.TryWrite(true);
        }
    }

    private static (string? Reason, string? Message) EndCondition(LocalWorkload workload, DateTimeOffset? deadline, DateTimeOffset now)
    {
        if (workload.StopRequested)
        {
            return (WorkloadReasons.Stopped, "stopped on request");
        }

        if (now >= deadline)
        {
            return (WorkloadReasons.DeadlineExceeded, $"ran longer than activeDeadlineSeconds ({workload.ActiveDeadlineSeconds})");
        }

        foreach (var replica in workload.Replicas.Where(r => r.Exit.IsCompleted))
        {
            switch (replica.Exit.Result)
            {
                case null:
                    return (WorkloadReasons.Lost, $"replica {replica.Rank} (pid {replica.ProcessId}) vanished without an exit code");
                case not 0 and var code:
                    return (WorkloadReasons.ReplicaFailed, $"replica {replica.Rank} exited with code {code}");
            }
        }

        return (null, null);
    }

    private static (WorkloadPhase Phase, string Reason, string? Message) Outcome(LocalWorkload workload, string? endReason, string? endMessage)
    {
        if (endReason is null)
        {
            // Every replica exited before the loop saw it: judge by the exit codes alone.
            (endReason, endMessage) = EndCondition(workload, deadline: null, DateTimeOffset.MinValue);
        }

        return endReason switch
        {
            null => (WorkloadPhase.Succeeded, WorkloadReasons.Completed, null),
            WorkloadReasons.Lost => (WorkloadPhase.Lost, endReason, endMessage),
            _ => (WorkloadPhase.Failed, endReason, endMessage),
        };
    }

    private void CopyOutput(LocalWorkload workload, ReplicaOutput[] outputs, StdoutMetrics[] parsers, List<(bool IsStdout, string Line)> lines, FileStream log, bool prefix, bool final)
    {
        var wrote = false;
        for (var rank = 0; rank < outputs.Length; rank++)
        {
            lines.Clear();
            outputs[rank].Read(lines, final);
            if (lines.Count == 0)
            {
                continue;
            }

            wrote = true;
            var timestamp = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            List<Metric>? metrics = null;
            var text = new StringBuilder();
            foreach (var (isStdout, line) in lines)
            {
                if (prefix)
                {
                    text.Append('[').Append(rank).Append("] ");
                }

                text.Append(line).Append('\n');
                if (isStdout)
                {
                    var parsed = parsers[rank].Parse(line, timestamp);
                    if (parsed.Count > 0)
                    {
                        (metrics ??= []).AddRange(parsed);
                    }
                }
            }

            log.Write(Encoding.UTF8.GetBytes(text.ToString()));
            if (metrics is not null)
            {
                Publish(new WorkloadMetricsReported(workload.WorkloadId, rank, metrics));
            }
        }

        if (wrote)
        {
            log.Flush();

            // Noted as it goes, so an instance that crashes hands the next one the place to resume: output printed
            // while no control plane ran is copied (and its metrics reported) instead of skipped.
            Array.ForEach(outputs, o => o.SavePosition());
        }

        if (wrote || final)
        {
            lock (_gate)
            {
                var changed = workload.OutputChanged;
                workload.OutputChanged = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                changed.TrySetResult();
            }
        }
    }

    private void SignalAll(LocalWorkload workload, int signal, bool ownOnly = false)
    {
        foreach (var replica in workload.Replicas)
        {
            if (replica.Process is null && (ownOnly || !ProcessGroups.IsAlive(replica.ProcessId, replica.StartTicks)))
            {
                continue;
            }

            KillGroup(replica, signal);
        }
    }

    private void KillGroup(LocalReplica replica, int signal)
    {
        if (_setsid is not null)
        {
            ProcessGroups.Signal(replica.ProcessId, signal);
            return;
        }

        // Without setsid the replica leads no group of its own: end its tree the slow way, by /proc's parent links.
        if (signal == ProcessGroups.SigKill && replica.Process is { HasExited: false } process)
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }
        }
    }

    /// <summary>Moves the workload to a finished phase, persists and announces it. Caller holds the lock.</summary>
    private void Finish(LocalWorkload workload, WorkloadPhase phase, string reason, string? message)
    {
        workload.Phase = phase;
        workload.Reason = reason;
        workload.Message = message;
        workload.CompletionTime = DateTimeOffset.UtcNow;
        workload.OutputDone = true;
        workload.OutputChanged.TrySetResult();
        foreach (var replica in workload.Replicas)
        {
            replica.Process?.Dispose();
            replica.Process = null;
        }

        Persist(workload);
        Publish(new WorkloadStatusChanged(workload.WorkloadId, workload.Snapshot()));
    }

    private static void Persist(LocalWorkload workload)
    {
        try
        {
            Directory.CreateDirectory(workload.Folder);
            workload.ToState().Write(workload.Folder);
        }
        catch (IOException)
        {
            // The state file only serves a later instance; a full disk must not stop the workload.
        }
    }

    private void Publish(WorkloadEvent item)
    {
        lock (_watchers)
        {
            foreach (var watcher in _watchers)
            {
                watcher.Writer.TryWrite(item);
            }
        }
    }

    /// <summary>Reads the state files a previous instance left: finished workloads keep their status, running ones are re-adopted or found lost.</summary>
    private void Recover()
    {
        foreach (var folder in Directory.EnumerateDirectories(_root))
        {
            if (WorkloadState.Read(folder) is not { } state || state.WorkloadId != Path.GetFileName(folder))
            {
                continue;
            }

            var workload = new LocalWorkload(state.WorkloadId, folder, null, state.Request, _sequence++, state.SubmitTime)
            {
                Phase = state.Phase,
                Reason = state.Reason,
                Message = state.Message,
                StartTime = state.StartTime,
                CompletionTime = state.CompletionTime,
                ActiveDeadlineSeconds = state.ActiveDeadlineSeconds,
                OutputDone = state.Phase != WorkloadPhase.Running,
            };
            foreach (var saved in state.Replicas)
            {
                workload.Replicas.Add(new LocalReplica(saved.Rank, saved.Folder, saved.WorkingDirectory)
                {
                    ProcessId = saved.ProcessId,
                    StartTicks = saved.StartTicks,
                    ExitCode = saved.ExitCode,
                    Gpus = saved.Gpus ?? [],
                });
            }

            _workloads.Add(workload.WorkloadId, workload);
            if (state.Phase != WorkloadPhase.Running)
            {
                continue;
            }

            _used += workload.Request;
            _freeGpus.ExceptWith(workload.Replicas.SelectMany(r => r.Gpus));
            workload.Reason = WorkloadReasons.Adopted;
            workload.Message = "re-adopted after a runtime restart";
            foreach (var replica in workload.Replicas)
            {
                replica.Exit = WaitForAdoptedAsync(replica, _disposing.Token);
            }

            workload.Supervision = SuperviseAsync(workload, adopted: true, _disposing.Token);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private static void SplitLines(ReadOnlySpan<byte> data, List<byte> partial, List<string> lines)
    {
        int newline;
        while ((newline = data.IndexOf((byte)'\n')) >= 0)
        {
            partial.AddRange(data[..newline]);
            lines.Add(Encoding.UTF8.GetString([.. partial]));
            partial.Clear();
            data = data[(newline + 1)..];
        }

        partial.AddRange(data);
    }

    [GeneratedRegex("^[A-Za-z0-9._-]{1,200}$")]
    private static partial Regex WorkloadIdPattern();
}
