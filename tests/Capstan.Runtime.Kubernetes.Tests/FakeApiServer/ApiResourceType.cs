namespace Capstan.Runtime.Kubernetes.Tests.FakeApiServer;

/// <summary>One resource the fake API server serves: where its URL lives, its kind, and whether it has a status subresource.</summary>
public sealed record ApiResourceType(string Group, string Version, string Plural, string Kind, bool Namespaced = true, bool StatusSubresource = false)
{
    /// <summary><c>batch/v1</c>, or <c>v1</c> for the core group.</summary>
    public string ApiVersion => Group.Length == 0 ? Version : $"{Group}/{Version}";

    /// <summary>The name errors use, as the API server spells it: <c>jobs.batch</c>, <c>pods</c>.</summary>
    public string QualifiedName => Group.Length == 0 ? Plural : $"{Plural}.{Group}";

    /// <summary>The resources a Capstan operator and its tests touch, with the subresources the real API gives them.</summary>
    public static IReadOnlyList<ApiResourceType> Defaults { get; } =
    [
        new("", "v1", "pods", "Pod", StatusSubresource: true),
        new("", "v1", "services", "Service", StatusSubresource: true),
        new("", "v1", "events", "Event"),
        new("", "v1", "configmaps", "ConfigMap"),
        new("", "v1", "secrets", "Secret"),
        new("", "v1", "serviceaccounts", "ServiceAccount"),
        new("", "v1", "namespaces", "Namespace", Namespaced: false, StatusSubresource: true),
        new("events.k8s.io", "v1", "events", "Event"),
        new("batch", "v1", "jobs", "Job", StatusSubresource: true),
        new("apps", "v1", "deployments", "Deployment", StatusSubresource: true),
        new("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", StatusSubresource: true),
        new("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", StatusSubresource: true),
        new("coordination.k8s.io", "v1", "leases", "Lease"),
        new("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute", StatusSubresource: true),
        new("scheduling.volcano.sh", "v1beta1", "podgroups", "PodGroup", StatusSubresource: true),
        new("capstan.dev", "v1alpha1", "trainjobs", "TrainJob", StatusSubresource: true),
        new("capstan.dev", "v1alpha1", "experiments", "Experiment", StatusSubresource: true),
        new("capstan.dev", "v1alpha1", "inferenceservices", "InferenceService", StatusSubresource: true),
        new("capstan.dev", "v1alpha1", "pipelines", "Pipeline", StatusSubresource: true),
        new("capstan.dev", "v1alpha1", "monitors", "Monitor", StatusSubresource: true),
    ];
}

/// <summary>An API error, answered as a <c>Status</c> object with the HTTP code and reason the real server uses.</summary>
public sealed class ApiException(int code, string reason, string message, ApiResourceType? type = null, string? name = null) : Exception(message)
{
    public int Code { get; } = code;

    public string Reason { get; } = reason;

    public ApiResourceType? ResourceType { get; } = type;

    public string? Name { get; } = name;

    public static ApiException NotFound(ApiResourceType type, string name) =>
        new(404, "NotFound", $"{type.QualifiedName} \"{name}\" not found", type, name);

    public static ApiException AlreadyExists(ApiResourceType type, string name) =>
        new(409, "AlreadyExists", $"{type.QualifiedName} \"{name}\" already exists", type, name);

    public static ApiException Conflict(ApiResourceType type, string name, string why) =>
        new(409, "Conflict", $"Operation cannot be fulfilled on {type.QualifiedName} \"{name}\": {why}", type, name);

    public static ApiException BadRequest(string message) => new(400, "BadRequest", message);

    public static ApiException Invalid(ApiResourceType type, string name, string message) =>
        new(422, "Invalid", $"{type.Kind} \"{name}\" is invalid: {message}", type, name);
}
