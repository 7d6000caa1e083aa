using System.Diagnostics;
using Capstan.Serving.Models;

namespace Capstan.Serving.Inference;

/// <summary>
/// What REST and gRPC share: find the model version, hold it for the request, validate, run
/// (through the batch queue) and count the outcome.
/// </summary>
public sealed class InferenceService(ModelRepository repository)
{
    public ModelRepository Repository { get; } = repository;

    public async Task<InferResponse> InferAsync(string modelName, string? version, InferRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var started = Stopwatch.GetTimestamp();
        ModelLease lease;
        try
        {
            lease = Repository.Acquire(modelName, version);
        }
        catch (InferenceException)
        {
            Repository.Metrics.Requests.WithLabels(modelName, version ?? string.Empty, "not_found").Inc();
            throw;
        }

        using (lease)
        {
            var metadata = lease.Model.Metadata;
            try
            {
                lease.Model.Validate(request);
                var response = await lease.Model.InferAsync(request, cancellationToken).ConfigureAwait(false);
                lease.Model.RecordSuccess(Stopwatch.GetElapsedTime(started).TotalSeconds);
                return response;
            }
            catch (InferenceException ex)
            {
                Repository.Metrics.Requests.WithLabels(metadata.Name, metadata.Version, Outcome(ex.Kind)).Inc();
                throw;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Repository.Metrics.Requests.WithLabels(metadata.Name, metadata.Version, "error").Inc();
                throw;
            }
        }
    }

    /// <summary>The metadata of a model version; NotFound when it is not loaded.</summary>
    public ModelMetadata GetMetadata(string modelName, string? version)
    {
        using var lease = Repository.Acquire(modelName, version);
        return lease.Model.Metadata;
    }

    public bool IsReady(string modelName, string? version)
    {
        try
        {
            using var lease = Repository.Acquire(modelName, version);
            return true;
        }
        catch (InferenceException)
        {
            return false;
        }
    }

    private static string Outcome(InferenceErrorKind kind) => kind switch
    {
        InferenceErrorKind.InvalidArgument => "invalid",
        InferenceErrorKind.NotFound => "not_found",
        InferenceErrorKind.QueueFull => "queue_full",
        InferenceErrorKind.Timeout => "timeout",
        _ => "unavailable",
    };
}
