namespace Capstan.Core.Artifacts;

/// <summary>
/// Run artifact locations. A run's artifact URI is <c>mlflow-artifacts:/{experimentId}/{runId}/artifacts</c>,
/// the scheme MLflow clients resolve through the server's artifact proxy, so they upload and download
/// through Capstan without knowing where the bytes live.
/// </summary>
public static class ArtifactUri
{
    public const string Scheme = "mlflow-artifacts:";

    public static string ForRun(string experimentId, string runId) => $"{Scheme}/{RunRoot(experimentId, runId)}";

    /// <summary>The store-relative folder of a run's artifacts.</summary>
    public static string RunRoot(string experimentId, string runId) => $"{experimentId}/{runId}/artifacts";

    /// <summary>The store-relative path an artifact URI points at (the part after the scheme).</summary>
    public static string ToStorePath(string uri)
    {
        if (!uri.StartsWith(Scheme, StringComparison.Ordinal))
        {
            throw CapstanException.Invalid($"Artifact URI '{uri}' is not an {Scheme} URI.");
        }

        return uri[Scheme.Length..].TrimStart('/');
    }
}
