using System.Diagnostics;

namespace Capstan.Server.ControlPlane;

/// <summary>The control plane's own spans: one per reconcile pass (<c>reconcile TrainJob</c>, with the object's key and the result).</summary>
public static class ControlPlaneActivity
{
    public const string SourceName = "Capstan.ControlPlane";

    internal static readonly ActivitySource Source = new(SourceName, typeof(ControlPlaneActivity).Assembly.GetName().Version?.ToString());
}
