namespace Capstan.Core.Resources;

/// <summary>What every kind's status carries: Kubernetes-style conditions and the generation they describe.</summary>
public class ResourceStatus
{
    public IList<ResourceCondition>? Conditions { get; set; }

    /// <summary>The <c>metadata.generation</c> of the spec this status was computed from.</summary>
    public long? ObservedGeneration { get; set; }

    /// <summary>A one-line account of the current state, for <c>capstan describe</c>.</summary>
    public string? Message { get; set; }
}

/// <summary>One observation about a resource, as Kubernetes' <c>metav1.Condition</c> spells it.</summary>
public sealed class ResourceCondition
{
    public string Type { get; set; } = "";

    public ConditionStatus Status { get; set; } = ConditionStatus.Unknown;

    public string? Reason { get; set; }

    public string? Message { get; set; }

    public DateTimeOffset? LastTransitionTime { get; set; }

    public long? ObservedGeneration { get; set; }
}

public enum ConditionStatus
{
    True,
    False,
    Unknown,
}
