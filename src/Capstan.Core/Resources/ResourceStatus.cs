namespace Capstan.Core.Resources;

/// <summary>What every kind's status carries: Kubernetes-style conditions and the generation they describe.</summary>
public class ResourceStatus
{
    public IList<ResourceCondition>? Conditions { get; set; }

    /// <summary>The <c>metadata.generation</c> of the spec this status was computed from.</summary>
    public long? ObservedGeneration { get; set; }

    /// <summary>A one-line account of the current state, for <c>capstan describe</c>.</summary>
    public string? Message { get; set; }

    /// <summary>
    /// Sets the condition <paramref name="type"/>; true when its status, reason or message changed. The transition time
    /// moves only with the status. A condition that never held is not added as False (not worth a line in describe)
    /// unless <paramref name="recordFalse"/>, for conditions such as Ready whose False a user needs to see.
    /// </summary>
    public bool SetCondition(string type, ConditionStatus value, string? reason, string? message, long? generation, DateTimeOffset now, bool recordFalse = false)
    {
        var conditions = Conditions ??= [];
        var existing = conditions.FirstOrDefault(c => c.Type == type);
        if (existing is null)
        {
            if (value == ConditionStatus.False && !recordFalse)
            {
                return false;
            }

            conditions.Add(new ResourceCondition { Type = type, Status = value, Reason = reason, Message = message, LastTransitionTime = now, ObservedGeneration = generation });
            return true;
        }

        if (existing.Status == value && existing.Reason == reason && existing.Message == message)
        {
            return false;
        }

        if (existing.Status != value)
        {
            existing.LastTransitionTime = now;
        }

        (existing.Status, existing.Reason, existing.Message, existing.ObservedGeneration) = (value, reason, message, generation);
        return true;
    }
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
