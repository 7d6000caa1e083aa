using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Capstan.Core;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using k8s;
using k8s.Autorest;

namespace Capstan.Runtime.Kubernetes.Cluster;

/// <summary>
/// Capstan resources as custom objects of <c>capstan.dev/v1alpha1</c>: the URL parts of a kind, conversion between the
/// cluster's JSON and the resource model, and the API's errors as the <see cref="CapstanException"/>s an
/// <see cref="IResourceStore"/> throws.
/// </summary>
public static class CustomResources
{
    public const string Group = "capstan.dev";
    public const string Version = "v1alpha1";

    public static string Plural(string kind) => KindNames.Plural(kind);

    /// <summary>The custom object (a <see cref="JsonElement"/> from the client) as a JSON tree.</summary>
    public static JsonObject ToNode(object customObject) => customObject switch
    {
        JsonObject node => node,
        JsonElement element => JsonNode.Parse(element.GetRawText())!.AsObject(),
        _ => JsonNode.Parse(KubernetesJson.Serialize(customObject))!.AsObject(),
    };

    /// <summary>The resource model of a custom object; fields the model has no place for (finalizers, owner references) are dropped.</summary>
    public static Resource ToResource(JsonObject node) => ResourceSerializer.FromJson(node.ToJsonString());

    /// <summary>The body to create a resource with: what the user wrote, none of what the server sets.</summary>
    public static JsonObject ToCreateBody(Resource resource)
    {
        var node = ResourceSerializer.ToJsonNode(resource);
        node.Remove("status");
        if (node["metadata"] is JsonObject metadata)
        {
            foreach (var field in new[] { "uid", "resourceVersion", "generation", "creationTimestamp" })
            {
                metadata.Remove(field);
            }
        }

        return node;
    }

    public static string? DeletionTimestamp(JsonObject node) => node["metadata"]?["deletionTimestamp"]?.GetValue<string>();

    public static string ResourceVersionOf(JsonObject node) => node["metadata"]?["resourceVersion"]?.GetValue<string>() ?? "";

    /// <summary>An API error as the store's errors: 404 NotFound, 409 AlreadyExists or Conflict, 422 Invalid; others as they are.</summary>
    public static Exception Translate(HttpOperationException error, string what)
    {
        ArgumentNullException.ThrowIfNull(error);
        var message = StatusMessage(error) ?? error.Message;
        return error.Response.StatusCode switch
        {
            HttpStatusCode.NotFound => CapstanException.NotFound(message),
            HttpStatusCode.Conflict when StatusReason(error) == "AlreadyExists" => new CapstanException(ErrorCode.ResourceAlreadyExists, message),
            HttpStatusCode.Conflict => new CapstanException(ErrorCode.Conflict, message),
            HttpStatusCode.UnprocessableEntity or HttpStatusCode.BadRequest => CapstanException.Invalid($"{what}: {message}"),
            _ => new CapstanException(ErrorCode.Internal, $"{what}: the Kubernetes API answered {(int)error.Response.StatusCode}: {message}"),
        };
    }

    public static bool IsNotFound(HttpOperationException error) => error.Response.StatusCode == HttpStatusCode.NotFound;

    public static bool IsConflict(HttpOperationException error) => error.Response.StatusCode == HttpStatusCode.Conflict;

    /// <summary>
    /// Writes <paramref name="status"/> through the status subresource of the object read as <paramref name="raw"/>,
    /// checked on the resourceVersion read: a 409 when someone wrote the object since.
    /// </summary>
    public static Task ReplaceStatusAsync(IKubernetes client, JsonObject raw, string plural, JsonNode status, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(raw);
        var body = (JsonObject)raw.DeepClone();
        body["status"] = status;
        var metadata = raw["metadata"]!;
        return client.CustomObjects.ReplaceNamespacedCustomObjectStatusAsync(
            body, Group, Version, metadata["namespace"]!.GetValue<string>(), plural, metadata["name"]!.GetValue<string>(), cancellationToken: cancellationToken);
    }

    public static string? StatusReason(HttpOperationException error) => StatusField(error, "reason");

    private static string? StatusMessage(HttpOperationException error) => StatusField(error, "message");

    private static string? StatusField(HttpOperationException error, string field)
    {
        try
        {
            return JsonNode.Parse(error.Response.Content ?? "")?[field]?.GetValue<string>();
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
