using System.Text;
using Capstan.Client;
using Capstan.Core;
using Capstan.Core.Registry;
using Capstan.Core.Tracking;

namespace Capstan.Cli.Tests;

public sealed class ClientServerTests
{
    [Fact]
    public async Task RunLogger_FiveThousandPointsThroughServer_AllInHistory()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await InProcessServer.StartAsync(ct);
        using var client = new CapstanClient(server.Url);
        var experiment = await client.CreateExperimentAsync(new NewExperiment("logger"), ct);
        var run = await client.CreateRunAsync(new NewRun(experiment.ExperimentId, "bulk"), ct);

        await using (var logger = new RunLogger(client, run.Info.RunId))
        {
            logger.LogParam("lr", "0.01");
            logger.SetTag("team", "vision");
            for (var step = 0; step < 5000; step++)
            {
                logger.LogMetric("loss", 1.0 / (step + 1), step);
            }
        }

        var history = await client.GetMetricHistoryAsync(run.Info.RunId, "loss", cancellationToken: ct);
        Assert.Equal(5000, history.Items.Count);
        Assert.Equal(Enumerable.Range(0, 5000).Select(i => (long)i), history.Items.Select(m => m.Step));
        var stored = await client.GetRunAsync(run.Info.RunId, ct);
        Assert.Contains(new Param("lr", "0.01"), stored.Data.Params);
        Assert.Contains(new Tag("team", "vision"), stored.Data.Tags);
    }

    [Fact]
    public async Task GetRun_UnknownId_ThrowsResourceDoesNotExist()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await InProcessServer.StartAsync(ct);
        using var client = new CapstanClient(server.Url);

        var error = await Assert.ThrowsAsync<CapstanException>(() => client.GetRunAsync("0123456789abcdef0123456789abcdef", ct));

        Assert.Equal(ErrorCode.ResourceDoesNotExist, error.Code);
    }

    [Fact]
    public async Task RunLogger_StoreRejectsParam_ErrorSurfacesOnFlush()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await InProcessServer.StartAsync(ct);
        using var client = new CapstanClient(server.Url);
        var experiment = await client.CreateExperimentAsync(new NewExperiment("params"), ct);
        var run = await client.CreateRunAsync(new NewRun(experiment.ExperimentId), ct);
        var logger = new RunLogger(client, run.Info.RunId);

        logger.LogParam("lr", "0.01");
        logger.LogParam("lr", "0.02");
        var error = await Assert.ThrowsAsync<CapstanException>(() => logger.FlushAsync(ct));
        await logger.DisposeAsync();

        Assert.Equal(ErrorCode.InvalidParameterValue, error.Code);
    }

    [Fact]
    public async Task Registry_NameWithSlashSpacesAndPunctuation_RoundTripsWithAlias()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await InProcessServer.StartAsync(ct);
        using var client = new CapstanClient(server.Url);
        const string name = "team/a: fraud model (v2)";

        await client.CreateRegisteredModelAsync(new NewRegisteredModel(name, "first"), ct);
        var version = await client.CreateModelVersionAsync(new NewModelVersion(name, "mlflow-artifacts:/1/abc/artifacts/model"), ct);
        await client.SetAliasAsync(name, "champion", version.Version, ct);

        var resolved = await client.GetModelVersionByAliasAsync(name, "champion", ct);
        Assert.Equal(version.Version, resolved.Version);
        var duplicate = await Assert.ThrowsAsync<CapstanException>(() => client.CreateRegisteredModelAsync(new NewRegisteredModel(name), ct));
        Assert.Equal(ErrorCode.ResourceAlreadyExists, duplicate.Code);
    }

    [Fact]
    public async Task Artifacts_PutListOpen_RoundTripThroughProxy()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await InProcessServer.StartAsync(ct);
        using var client = new CapstanClient(server.Url);
        var content = Encoding.UTF8.GetBytes("weights");

        using var source = new MemoryStream(content);
        await client.PutAsync("1/run/artifacts/model/model.bin", source, ct);
        Assert.True(source.CanRead, "the caller's stream stays open");
        var listing = await client.ListAsync("1/run/artifacts/model", ct);
        await using var read = await client.OpenReadAsync("1/run/artifacts/model/model.bin", ct);
        using var copy = new MemoryStream();
        await read.CopyToAsync(copy, ct);

        var file = Assert.Single(listing);
        Assert.Equal("1/run/artifacts/model/model.bin", file.Path);
        Assert.False(file.IsDir);
        Assert.Equal(content, copy.ToArray());
        var missing = await Assert.ThrowsAsync<CapstanException>(() => client.OpenReadAsync("1/run/artifacts/none", ct));
        Assert.Equal(ErrorCode.ResourceDoesNotExist, missing.Code);
    }

    [Fact]
    public async Task CliAgainstServer_CapstanUrlSet_ListsRunsFromServer()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await InProcessServer.StartAsync(ct);
        using var client = new CapstanClient(server.Url);
        var experiment = await client.CreateExperimentAsync(new NewExperiment("remote"), ct);
        var run = await client.CreateRunAsync(new NewRun(experiment.ExperimentId, "remote-run"), ct);

        var result = await CliHarness.RunAsync(new Dictionary<string, string?> { ["CAPSTAN_URL"] = server.Url.AbsoluteUri }, "runs", "list", "--experiment", "remote");

        Assert.Equal(ExitCodes.Ok, result.ExitCode);
        Assert.Contains(run.Info.RunId, result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cli_ServerUnreachable_ExitsUnavailable()
    {
        var result = await CliHarness.RunAsync(new Dictionary<string, string?> { ["CAPSTAN_URL"] = "http://127.0.0.1:1" }, "experiments", "list");

        Assert.Equal(ExitCodes.Unavailable, result.ExitCode);
        Assert.Contains("Cannot reach", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Server_PortAlreadyTaken_ExitsUnavailableWithOneLine()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
        using var home = new TempHome();

        var result = await CliHarness.RunAsync(home.Environment, "server", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture));

        Assert.Equal(ExitCodes.Unavailable, result.ExitCode);
        Assert.Contains($"Cannot listen on 127.0.0.1:{port}", result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Error, StringComparison.Ordinal);
    }
}
