using Capstan.Cli.Hosting;

namespace Capstan.Cli.Tests.Kubernetes;

public sealed class OperatorCommandTests
{
    [Fact]
    public async Task Operator_MetricsAddressThatIsNotIpAndPort_IsAUsageErrorThatSaysWhatItWants()
    {
        using var home = new TempHome();
        var result = await CliHarness.RunAsync(home.Environment, "operator", "--metrics-address", "metrics:8080");
        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.Contains("--metrics-address 'metrics:8080' is not IP:PORT", result.Error, StringComparison.Ordinal);
    }
}
