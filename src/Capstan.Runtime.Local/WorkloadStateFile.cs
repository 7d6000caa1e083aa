using System.Text.Json;
using Capstan.Core;
using Capstan.Core.Runtime;

namespace Capstan.Runtime.Local;

/// <summary>
/// <c>ROOT/WORKLOAD_ID/workload.json</c>: what a later runtime instance needs to re-adopt or judge a
/// workload it did not start — replicas' pids and start times, folders, the capacity it holds, its deadline.
/// Written when the gang starts and when it ends, atomically (write then rename).
/// </summary>
internal sealed record WorkloadState(
    string WorkloadId,
    WorkloadPhase Phase,
    string Reason,
    string? Message,
    DateTimeOffset SubmitTime,
    DateTimeOffset? StartTime,
    DateTimeOffset? CompletionTime,
    long? ActiveDeadlineSeconds,
    ResourceRequest Request,
    IReadOnlyList<ReplicaState> Replicas)
{
    public const string FileName = "workload.json";

    public static WorkloadState? Read(string folder)
    {
        var path = Path.Combine(folder, FileName);
        try
        {
            return JsonSerializer.Deserialize<WorkloadState>(File.ReadAllBytes(path), CapstanJson.Options);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public void Write(string folder)
    {
        var path = Path.Combine(folder, FileName);
        var temporary = path + ".tmp";
        File.WriteAllBytes(temporary, JsonSerializer.SerializeToUtf8Bytes(this, CapstanJson.Options));
        File.Move(temporary, path, overwrite: true);
    }
}

/// <summary>One replica as persisted; <see cref="Folder"/> holds its output files and exit-code file.</summary>
internal sealed record ReplicaState(int Rank, int ProcessId, ulong StartTicks, string Folder, string WorkingDirectory, int? ExitCode, IReadOnlyList<int>? Gpus);
