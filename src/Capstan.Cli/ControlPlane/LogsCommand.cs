using System.CommandLine;
using System.Runtime.CompilerServices;
using System.Text;
using Capstan.Cli.Hosting;
using Capstan.Client;
using Capstan.Core;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Capstan.Core.Runtime;

namespace Capstan.Cli.ControlPlane;

/// <summary>
/// <c>capstan logs [-f] job/NAME</c> (also <c>trainjob/NAME</c>, <c>tj NAME</c>): a TrainJob's output. Through the server's
/// log API when <c>CAPSTAN_URL</c> is set, else from the local runtime's files under the Capstan home.
/// </summary>
public static class LogsCommand
{
    public static Command Create(CliContext context)
    {
        var target = new Argument<string>("job") { Description = "job/NAME, trainjob/NAME, or a kind (tj, job) followed by the name." };
        var name = new Argument<string?>("name") { Description = "The job's name when the kind is given apart.", Arity = ArgumentArity.ZeroOrOne };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep streaming until the job finishes." };
        var ns = ResourceArguments.CreateNamespaceOption();
        var command = new Command("logs", "Print the output of a TrainJob.") { target, name, follow, ns };
        Cluster.ClusterOptions.AddTo(command);
        command.SetHandler(context, async (parse, ct) =>
        {
            var jobName = JobName(parse.GetRequiredValue(target), parse.GetValue(name));
            var @namespace = parse.GetValue(ns) ?? ResourceMetadata.DefaultNamespace;
            var following = parse.GetValue(follow);
            await using var backend = await Cluster.ClusterOptions.OpenBackendAsync(context, parse, ct);
            var lines = backend.Resources is ResourceClient remote
                ? remote.ReadLogsAsync(@namespace, jobName, following, ct)
                : backend.Resources is Runtime.Kubernetes.Cluster.KubernetesResourceStore cluster
                ? cluster.ReadLogsAsync(@namespace, jobName, following, ct)
                : ReadFilesAsync(backend.Resources, RuntimeRoot(context), @namespace, jobName, following, ct);
            var output = context.RawOut;
            await foreach (var line in lines)
            {
                await output.WriteLineAsync(line);
                await output.FlushAsync(ct);
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>The job's name from <c>job/NAME</c>, <c>trainjob/NAME</c>, or a kind and a name.</summary>
    internal static string JobName(string first, string? second)
    {
        var slash = first.IndexOf('/', StringComparison.Ordinal);
        var (kind, jobName) = slash >= 0 ? (first[..slash], second is null ? first[(slash + 1)..] : null) : (first, second);
        if (!string.Equals(kind, "job", StringComparison.OrdinalIgnoreCase) && !string.Equals(kind, "jobs", StringComparison.OrdinalIgnoreCase)
            && KindNames.Resolve(kind) != TrainJob.KindName)
        {
            throw CapstanException.Invalid($"logs are kept for TrainJobs only; use job/NAME (got '{first}')");
        }

        return string.IsNullOrEmpty(jobName)
            ? throw CapstanException.Invalid("name the job: capstan logs job/NAME")
            : jobName;
    }

    private static string RuntimeRoot(CliContext context) => Path.Combine(Backend.ResolveHome(context).Root, "runtime");

    /// <summary>The embedded form: the runtime's <c>output.log</c> of each attempt, tailed while the job is unfinished.</summary>
    private static async IAsyncEnumerable<string> ReadFilesAsync(IResourceStore resources, string runtimeRoot, string @namespace, string name, bool follow, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var shown = 0;
        while (true)
        {
            var job = await resources.GetAsync<TrainJob>(@namespace, name, cancellationToken);
            var attempts = job.Status?.Attempts ?? 0;
            if (attempts == 0 && !follow)
            {
                yield break;
            }

            if (attempts > shown)
            {
                var attempt = follow ? shown + 1 : attempts;
                shown = attempt;
                if (attempt > 1 && follow)
                {
                    yield return $"--- attempt {attempt} ---";
                }

                var path = Path.Combine(runtimeRoot, TrainJobWorkloads.WorkloadId(job, attempt), "output.log");
                await foreach (var line in TailAsync(path, follow, () => AttemptOverAsync(resources, @namespace, name, attempt, cancellationToken), cancellationToken))
                {
                    yield return line;
                }

                if (!follow)
                {
                    yield break;
                }

                continue;
            }

            if (!follow || job.Status?.Phase is TrainJobPhase.Succeeded or TrainJobPhase.Failed)
            {
                yield break;
            }

            await Task.Delay(200, cancellationToken);
        }
    }

    private static async Task<bool> AttemptOverAsync(IResourceStore resources, string @namespace, string name, int attempt, CancellationToken cancellationToken)
    {
        var job = await resources.FindAsync(TrainJob.KindName, @namespace, name, cancellationToken) as TrainJob;
        return job is null || (job.Status?.Attempts ?? 0) > attempt || job.Status?.Phase is TrainJobPhase.Succeeded or TrainJobPhase.Failed;
    }

    private static async IAsyncEnumerable<string> TailAsync(string path, bool follow, Func<Task<bool>> over, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var position = 0L;
        var partial = new StringBuilder();
        while (true)
        {
            // Read what is there before asking whether the attempt is over, so its last lines are never lost.
            var finished = !follow || await over();
            if (File.Exists(path))
            {
                var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                await using (stream)
                {
                    stream.Position = position;
                    using var reader = new StreamReader(stream, Encoding.UTF8);
                    var text = await reader.ReadToEndAsync(cancellationToken);
                    position = stream.Position;
                    partial.Append(text);
                }

                var all = partial.ToString();
                var lastBreak = all.LastIndexOf('\n');
                if (lastBreak >= 0)
                {
                    foreach (var line in all[..lastBreak].Split('\n'))
                    {
                        yield return line;
                    }

                    partial.Clear().Append(all[(lastBreak + 1)..]);
                }
            }

            if (finished)
            {
                if (partial.Length > 0)
                {
                    yield return partial.ToString();
                }

                yield break;
            }

            await Task.Delay(200, cancellationToken);
        }
    }
}
