using System.Net;

namespace Capstan.Server.Tests;

public sealed class HostingTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task Healthz_ProcessUp_Returns200Text()
    {
        using var response = await server.Http.GetAsync("/healthz");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Readyz_StoreOpen_Returns200Text()
    {
        using var response = await server.Http.GetAsync("/readyz");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("ready", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task BuildAsync_HostNotAnAddress_ThrowsNamingTheHost()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(
            () => CapstanServer.BuildAsync(new ServerOptions { Host = "not a host", Port = 0, Home = server.Home }));

        Assert.Contains("not a host", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BuildAsync_HomeIsAFile_ThrowsNamingThePath()
    {
        var file = Path.Combine(Path.GetTempPath(), $"capstan-not-a-folder-{Guid.NewGuid():N}");
        await File.WriteAllTextAsync(file, "x");
        try
        {
            var error = await Assert.ThrowsAsync<InvalidOperationException>(
                () => CapstanServer.BuildAsync(new ServerOptions { Port = 0, Home = file }));

            Assert.Contains(file, error.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }
}
