using System.Diagnostics;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;

namespace Capstan.Cli.Tests.ControlPlane;

/// <summary>A one-line TrainJob run to success by a real control plane as a real child process.</summary>
internal static class HelloJob
{
    public static async Task RunAsync(IResourceStore resources, CancellationToken cancellationToken)
    {
        await resources.CreateAsync(ResourceLoader.Load("""
            apiVersion: capstan.dev/v1alpha1
            kind: TrainJob
            metadata:
              name: hello
            spec:
              command: ["/bin/sh", "-c"]
              args: ["echo loss=0.5"]
            """, "job.yaml").Single(), cancellationToken);
        var clock = Stopwatch.StartNew();
        while ((await resources.GetAsync<TrainJob>("default", "hello", cancellationToken)).Status?.Phase != TrainJobPhase.Succeeded)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), "the job did not succeed");
            await Task.Delay(100, cancellationToken);
        }
    }
}
