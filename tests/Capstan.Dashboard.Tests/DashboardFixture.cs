using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Capstan.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.Playwright;

[assembly: AssemblyFixture(typeof(Capstan.Dashboard.Tests.DashboardFixture))]

namespace Capstan.Dashboard.Tests;

/// <summary>
/// One real Capstan server on 127.0.0.1 (fresh home, control plane on) and one headless Debian
/// Chromium driven by Playwright, shared by the dashboard tests. Each test makes its own
/// experiment through the API, so tests do not see each other's runs.
/// </summary>
public sealed class DashboardFixture : IAsyncLifetime
{
    /// <summary>Where Debian's chromium package puts the browser; CAPSTAN_CHROMIUM overrides it.</summary>
    public static string ChromiumPath => Environment.GetEnvironmentVariable("CAPSTAN_CHROMIUM") is { Length: > 0 } path ? path : "/usr/bin/chromium";

    private static readonly string[] s_chromiumArgs =
    [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ];

    private WebApplication? _app;
    private IPlaywright? _playwright;
    private string? _missing;

    public string Home { get; } = Path.Combine(Path.GetTempPath(), "capstan-dashboard-tests-" + Guid.NewGuid().ToString("N"));

    public string BaseUrl { get; private set; } = "";

    public HttpClient Http { get; private set; } = null!;

    public IBrowser Browser => _browser ?? throw new InvalidOperationException("The browser did not start.");

    private IBrowser? _browser;

    /// <summary>The folder the tests save their screenshots in: TestResults/screenshots at the repository root.</summary>
    public string Screenshots { get; } = Path.Combine(RepositoryRoot(), "TestResults", "screenshots");

    public async ValueTask InitializeAsync()
    {
        _app = await CapstanServer.BuildAsync(new ServerOptions { Host = "127.0.0.1", Port = 0, Home = Home });
        await _app.StartAsync();
        BaseUrl = _app.Urls.Single();
        Http = new HttpClient { BaseAddress = new Uri(BaseUrl) };
        Directory.CreateDirectory(Screenshots);
        TestContext.Current.SendDiagnosticMessage($"Dashboard screenshots are saved in {Screenshots}");

        if (!File.Exists(ChromiumPath))
        {
            _missing = $"Chromium was not found at {ChromiumPath}: install Debian's chromium package (apt-get install -y chromium) or set CAPSTAN_CHROMIUM.";
            return;
        }

        _playwright = await Playwright.CreateAsync();
        // Playwright gives each launch a fresh temporary profile (user-data-dir) and removes it on close.
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = s_chromiumArgs,
        });
        Assertions.SetDefaultExpectTimeout(15_000);
    }

    /// <summary>Fails under CI when Chromium is missing (every test must run there); skips elsewhere.</summary>
    public void RequireBrowser()
    {
        if (_missing is null)
        {
            return;
        }

        if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
        {
            Assert.Fail(_missing);
        }

        Assert.Skip(_missing);
    }

    /// <summary>A fresh browser context and page that records console errors, failed requests and every URL it asked for.</summary>
    public async Task<DashboardPage> OpenAsync(string hash)
    {
        RequireBrowser();
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1400, Height = 900 } });
        context.SetDefaultTimeout(15_000);
        var page = await context.NewPageAsync();
        var dashboard = new DashboardPage(context, page, BaseUrl);
        page.Console += (_, message) =>
        {
            if (message.Type == "error")
            {
                dashboard.Errors.Add("console: " + message.Text);
            }
        };
        page.PageError += (_, error) => dashboard.Errors.Add("page error: " + error);
        page.Request += (_, request) => dashboard.Requests.Add(request.Url);
        await page.GotoAsync(BaseUrl + "/#" + hash);
        return dashboard;
    }

    public async ValueTask DisposeAsync()
    {
        if (_browser is not null)
        {
            await _browser.CloseAsync();
        }

        _playwright?.Dispose();
        Http?.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        try
        {
            Directory.Delete(Home, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp folder changes no result.
        }
    }

    // Seeding through the native API, as a training script or the CLI would.

    public async Task<string> CreateExperimentAsync(string name)
    {
        var body = await SendAsync(HttpMethod.Post, "/api/v1/experiments", new { name });
        return body!["experimentId"]!.GetValue<string>();
    }

    public async Task<string> CreateRunAsync(string experimentId, string name, long startTime, params (string Key, string Value)[] tags)
    {
        var body = await SendAsync(HttpMethod.Post, "/api/v1/runs", new
        {
            experimentId,
            runName = name,
            startTime,
            tags = tags.Select(t => new { key = t.Key, value = t.Value }),
        });
        return body!["info"]!["runId"]!.GetValue<string>();
    }

    public Task LogAsync(string runId, IEnumerable<(string Key, double Value, long Step)>? metrics = null, IEnumerable<(string Key, string Value)>? parameters = null) =>
        SendAsync(HttpMethod.Post, $"/api/v1/runs/{runId}/batch", new
        {
            metrics = (metrics ?? []).Select(m => new { key = m.Key, value = m.Value, timestamp = 1_700_000_000_000 + (m.Step * 1000), step = m.Step }),
            @params = (parameters ?? []).Select(p => new { key = p.Key, value = p.Value }),
        });

    public Task FinishAsync(string runId) => SendAsync(HttpMethod.Patch, $"/api/v1/runs/{runId}", new { status = "Finished", endTime = 1_700_000_600_000 });

    public async Task<JsonNode?> SendAsync(HttpMethod method, string path, object? body = null, string? contentType = null, byte[]? bytes = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (bytes is not null)
        {
            request.Content = new ByteArrayContent(bytes);
            request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(contentType ?? "application/octet-stream");
        }
        else if (body is string text)
        {
            request.Content = new StringContent(text, Encoding.UTF8, contentType ?? "application/json");
        }
        else if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        using var response = await Http.SendAsync(request);
        var answer = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{method} {path} answered {(int)response.StatusCode}: {answer}");
        return answer.Length == 0 ? null : JsonNode.Parse(answer);
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Capstan.slnx")))
            {
                return dir.FullName;
            }
        }

        return AppContext.BaseDirectory;
    }
}

/// <summary>A page under test, with what went wrong in it.</summary>
public sealed class DashboardPage(IBrowserContext context, IPage page, string baseUrl) : IAsyncDisposable
{
    public IPage Page { get; } = page;

    public List<string> Errors { get; } = [];

    public List<string> Requests { get; } = [];

    public Task GoAsync(string hash) => Page.GotoAsync(baseUrl + "/#" + hash);

    public async Task ScreenshotAsync(DashboardFixture fixture, string name)
    {
        var path = Path.Combine(fixture.Screenshots, name + ".png");
        await Page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        TestContext.Current.TestOutputHelper?.WriteLine($"screenshot: {path}");
    }

    /// <summary>How many pixels of the canvas are drawn at all (not transparent).</summary>
    public Task<int> InkedPixelsAsync(string canvasSelector) => Page.EvaluateAsync<int>(
        """
        selector => {
          const canvas = document.querySelector(selector);
          if (!canvas || !canvas.width || !canvas.height) return 0;
          const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
          let inked = 0;
          for (let i = 3; i < data.length; i += 4) if (data[i] > 0) inked++;
          return inked;
        }
        """, canvasSelector);

    /// <summary>How many pixels of the canvas have the colour (±40 per channel) of a series line, opaque enough to see.</summary>
    public Task<int> PixelsOfColourAsync(string canvasSelector, int red, int green, int blue) => Page.EvaluateAsync<int>(
        """
        ([selector, r, g, b]) => {
          const canvas = document.querySelector(selector);
          if (!canvas || !canvas.width || !canvas.height) return 0;
          const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
          let hits = 0;
          for (let i = 0; i < data.length; i += 4)
            if (data[i + 3] > 120 && Math.abs(data[i] - r) < 40 && Math.abs(data[i + 1] - g) < 40 && Math.abs(data[i + 2] - b) < 40) hits++;
          return hits;
        }
        """, new object[] { canvasSelector, red, green, blue });

    /// <summary>No script errors, no CSP violations, and nothing fetched from anywhere but the server.</summary>
    public void AssertHealthy()
    {
        Assert.Empty(Errors);
        Assert.All(Requests, url => Assert.StartsWith(baseUrl, url, StringComparison.Ordinal));
    }

    public ValueTask DisposeAsync() => context.DisposeAsync();
}
