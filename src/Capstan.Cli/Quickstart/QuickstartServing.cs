using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Capstan.Serving.Hosting;
using Capstan.Serving.Models;
using Capstan.Serving.Registry;
using Capstan.Serving.Rollout;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;

namespace Capstan.Cli.Quickstart;

/// <summary>
/// The quickstart's serving step: the inference server, in this process on a free loopback port, serves the model the
/// training step registered; a few Iris rows (one per species) go to it as Open Inference Protocol v2 REST requests,
/// built from the model's own v2 metadata, and the answers are shown in a table. Then the server stops.
/// </summary>
public static class QuickstartServing
{
    /// <summary>Rows of the bundled data sent for prediction: the first of each species.</summary>
    public static readonly int[] SampleRows = [0, 50, 100];

    public sealed record Prediction(IReadOnlyList<double> Features, string Expected, string Predicted, double Probability);

    /// <summary>Serves <paramref name="modelReference"/> (e.g. <c>models:/iris-classifier@champion</c>) and shows its predictions; null when it cannot.</summary>
    public static async Task<IReadOnlyList<Prediction>?> RunAsync(QuickstartSession session, string modelReference, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        var context = session.Context;
        var resolver = new ModelResolver(session.Plane.Metadata, session.Plane.Artifacts, Path.Combine(session.Home.Root, "serving-cache"));
        using var repository = ServingServer.CreateRepository();
        using var rollout = new ModelRollout(repository, (reference, name, ct) => resolver.ResolveAsync(reference, name, ct));
        var name = QuickstartCommand.ModelName;
        IReadOnlyList<ServedVersion> served;
        try
        {
            served = await rollout.ApplyAsync(new ServingPlan { ModelName = name, Model = modelReference }, cancellationToken);
        }
        catch (Exception ex) when (ex is InvalidOperationException or Core.CapstanException)
        {
            CommandAction.Fail(context, $"Cannot serve {modelReference}: {ex.Message}");
            return null;
        }

        var app = ServingServer.Build(new ServingOptions { Host = "127.0.0.1", Port = 0, GrpcPort = -1, LogLevel = Microsoft.Extensions.Logging.LogLevel.Warning }, repository);
        await using (app)
        {
            await app.StartAsync(cancellationToken);
            try
            {
                var url = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
                context.Error.MarkupLineInterpolated($"Serving [bold]{name}[/] version {served[0].Version} ({ExecutionProviderChoice.Describe(repository.ExecutionProviderOf(name))}) on [link]{url}[/]");
                using var http = new HttpClient { BaseAddress = url };
                var predictions = await PredictAsync(http, name, cancellationToken);
                Show(context, predictions, url, name);
                return predictions;
            }
            finally
            {
                await app.StopAsync(CancellationToken.None);
            }
        }
    }

    /// <summary>One v2 infer request with the sample rows, its inputs named and shaped as the model's metadata says.</summary>
    public static async Task<IReadOnlyList<Prediction>> PredictAsync(HttpClient http, string model, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(http);
        var (columns, rows) = ReadRows();
        var samples = SampleRows.Select(i => rows[i]).ToList();
        var metadata = JsonDocument.Parse(await http.GetStringAsync($"/v2/models/{model}", cancellationToken)).RootElement;
        var inputs = new JsonArray();
        var features = columns[..^1];
        foreach (var input in metadata.GetProperty("inputs").EnumerateArray())
        {
            var inputName = input.GetProperty("name").GetString()!;
            var column = Array.IndexOf(features, inputName);
            var data = column >= 0
                ? new JsonArray([.. samples.Select(r => JsonValue.Create(r.Features[column]))])
                : new JsonArray([.. samples.SelectMany(r => r.Features).Select(v => JsonValue.Create(v))]);
            var width = column >= 0 ? 1 : features.Length;
            inputs.Add(new JsonObject
            {
                ["name"] = inputName,
                ["shape"] = new JsonArray(samples.Count, width),
                ["datatype"] = input.GetProperty("datatype").GetString(),
                ["data"] = data,
            });
        }

        using var response = await http.PostAsJsonAsync($"/v2/models/{model}/infer", new JsonObject { ["id"] = "quickstart", ["inputs"] = inputs }, cancellationToken);
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"The server answered {(int)response.StatusCode}: {body}");
        }

        var outputs = JsonDocument.Parse(body).RootElement.GetProperty("outputs").EnumerateArray().ToDictionary(o => o.GetProperty("name").GetString()!, o => o.Clone());
        var labels = outputs.TryGetValue("label", out var label) ? label.GetProperty("data").EnumerateArray().Select(e => e.ToString()).ToList() : [];
        var probabilities = outputs.TryGetValue("probabilities", out var scores) ? scores.GetProperty("data").EnumerateArray().Select(e => e.GetDouble()).ToList() : [];
        var classes = probabilities.Count / Math.Max(1, samples.Count);
        return [.. samples.Select((row, i) => new Prediction(
            row.Features,
            row.Species,
            i < labels.Count ? labels[i] : "?",
            classes > 0 ? probabilities.Skip(i * classes).Take(classes).Max() : double.NaN))];
    }

    private static void Show(CliContext context, IReadOnlyList<Prediction> predictions, Uri url, string model)
    {
        var table = new Table().Title($"[bold]Predictions[/] (POST {Markup.Escape(url.ToString())}v2/models/{Markup.Escape(model)}/infer)")
            .AddColumns("sepal length", "sepal width", "petal length", "petal width", "actual", "predicted", "probability");
        foreach (var p in predictions)
        {
            var verdict = p.Predicted == p.Expected ? "green" : "red";
            table.AddRow(
                [.. p.Features.Select(v => v.ToString("0.0", CultureInfo.InvariantCulture)),
                Markup.Escape(p.Expected),
                $"[{verdict}]{Markup.Escape(p.Predicted)}[/]",
                p.Probability.ToString("P1", CultureInfo.InvariantCulture)]);
        }

        context.Out.Write(table);
        context.Out.WriteLine();
    }

    private sealed record Row(double[] Features, string Species);

    private static (string[] Columns, List<Row> Rows) ReadRows()
    {
        var lines = System.Text.Encoding.UTF8.GetString(IrisData.ReadCsv()).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var columns = lines[0].Split(',');
        var rows = lines.Skip(1).Select(line => line.Split(','))
            .Select(cells => new Row([.. cells[..^1].Select(c => double.Parse(c, CultureInfo.InvariantCulture))], cells[^1]))
            .ToList();
        return (columns, rows);
    }
}
