using System.Diagnostics;
using Capstan.Serving.Hosting;
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

        // Only when a tracer listens: otherwise not even the span's name is built.
        using var activity = ServingActivity.Source.HasListeners() ? ServingActivity.Source.StartActivity($"infer {modelName}") : null;
        ModelLease lease;
        try
        {
            lease = Repository.Acquire(modelName, version);
        }
        catch (InferenceException ex)
        {
            Repository.Metrics.Requests.WithLabels(modelName, version ?? string.Empty, "not_found").Inc();
            Failed(activity, "not_found", ex);
            throw;
        }

        using (lease)
        {
            var metadata = lease.Model.Metadata;
            activity?.SetTag("capstan.model.name", metadata.Name).SetTag("capstan.model.version", metadata.Version);
            try
            {
                lease.Model.Validate(request);
                var response = await lease.Model.InferAsync(request, cancellationToken).ConfigureAwait(false);
                lease.Model.RecordSuccess(request, response, started);
                activity?.SetTag("capstan.onnx.run_rows", response.RunRows).SetTag("capstan.onnx.run_us", Math.Round(response.OnnxMicroseconds, 1));
                return response;
            }
            catch (InferenceException ex)
            {
                var outcome = Outcome(ex.Kind);
                Repository.Metrics.Requests.WithLabels(metadata.Name, metadata.Version, outcome).Inc();
                lease.Model.RecordFailure(started);
                Failed(activity, outcome, ex);
                throw;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Repository.Metrics.Requests.WithLabels(metadata.Name, metadata.Version, "error").Inc();
                lease.Model.RecordFailure(started);
                Failed(activity, "error", ex);
                throw;
            }
        }
    }

    /// <summary>Marks the span failed with the outcome the metrics count it under and the message the caller got.</summary>
    private static void Failed(Activity? activity, string outcome, Exception error) =>
        activity?.SetStatus(ActivityStatusCode.Error, error.Message).SetTag("error.type", outcome);

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
