using System.Net;
using System.Text;
using System.Text.Json;

namespace Capstan.Server.Tests;

public sealed class MlflowTrackingTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid():N}";

    [Fact]
    public async Task Experiments_CreateThenGetByName_ReturnsMlflowExperiment()
    {
        var name = Unique("exp");
        var created = await server.MlflowAsync("experiments/create", $$"""{"name":"{{name}}","tags":[{"key":"team","value":"vision"}]}""");
        var id = created.GetProperty("experiment_id");
        Assert.Equal(JsonValueKind.String, id.ValueKind);

        var reply = await server.GetAsync($"/api/2.0/mlflow/experiments/get-by-name?experiment_name={name}");
        Assert.Equal(HttpStatusCode.OK, reply.Status);
        Assert.Equal("application/json", reply.ContentType);
        var experiment = reply.Body.GetProperty("experiment");
        Assert.Equal(id.GetString(), experiment.GetProperty("experiment_id").GetString());
        Assert.Equal(name, experiment.GetProperty("name").GetString());
        Assert.Equal("active", experiment.GetProperty("lifecycle_stage").GetString());
        Assert.Equal(JsonValueKind.Number, experiment.GetProperty("creation_time").ValueKind);
        Assert.Equal(JsonValueKind.Number, experiment.GetProperty("last_update_time").ValueKind);
        Assert.False(string.IsNullOrEmpty(experiment.GetProperty("artifact_location").GetString()));
        var tag = Assert.Single(experiment.GetProperty("tags").EnumerateArray());
        Assert.Equal("team", tag.GetProperty("key").GetString());
        Assert.Equal("vision", tag.GetProperty("value").GetString());

        var byId = await server.GetAsync($"/api/2.0/mlflow/experiments/get?experiment_id={id.GetString()}");
        Assert.Equal(name, byId.Body.GetProperty("experiment").GetProperty("name").GetString());
    }

    [Fact]
    public async Task Experiments_UpdateDeleteRestoreAndSearch_FollowLifecycle()
    {
        var id = await server.CreateExperimentAsync(Unique("life"));
        var renamed = Unique("renamed");
        await server.MlflowAsync("experiments/update", $$"""{"experiment_id":"{{id}}","new_name":"{{renamed}}"}""");
        await server.MlflowAsync("experiments/set-experiment-tag", $$"""{"experiment_id":"{{id}}","key":"k","value":"v"}""");
        await server.MlflowAsync("experiments/delete", $$"""{"experiment_id":"{{id}}"}""");

        var deleted = await server.GetAsync($"/api/2.0/mlflow/experiments/get?experiment_id={id}");
        Assert.Equal("deleted", deleted.Body.GetProperty("experiment").GetProperty("lifecycle_stage").GetString());
        Assert.Equal(renamed, deleted.Body.GetProperty("experiment").GetProperty("name").GetString());

        var activeSearch = await server.MlflowAsync("experiments/search", $$"""{"filter":"name = '{{renamed}}'","max_results":10}""");
        Assert.False(activeSearch.TryGetProperty("experiments", out _), activeSearch.ToString());

        var deletedSearch = await server.GetAsync($"/api/2.0/mlflow/experiments/search?filter=name%20%3D%20'{renamed}'&view_type=DELETED_ONLY&max_results=10");
        Assert.Equal(HttpStatusCode.OK, deletedSearch.Status);
        Assert.Equal(id, Assert.Single(deletedSearch.Body.GetProperty("experiments").EnumerateArray()).GetProperty("experiment_id").GetString());

        await server.MlflowAsync("experiments/restore", $$"""{"experiment_id":"{{id}}"}""");
        var restored = await server.MlflowAsync("experiments/search", $$"""{"filter":"name = '{{renamed}}'"}""");
        var experiment = Assert.Single(restored.GetProperty("experiments").EnumerateArray());
        Assert.Equal("active", experiment.GetProperty("lifecycle_stage").GetString());
        Assert.Contains(experiment.GetProperty("tags").EnumerateArray(), t => t.GetProperty("key").GetString() == "k");
    }

    [Fact]
    public async Task Runs_LogBatchThenGet_ReturnsEveryFieldWithMlflowNamesAndTypes()
    {
        var experimentId = await server.CreateExperimentAsync(Unique("fields"));
        var created = await server.MlflowAsync("runs/create", $$"""
            {"experiment_id":"{{experimentId}}","run_name":"resnet","user_id":"ada","start_time":1700000000000,
             "tags":[{"key":"source","value":"test"}]}
            """);
        var createdInfo = created.GetProperty("run").GetProperty("info");
        var runId = createdInfo.GetProperty("run_id").GetString()!;
        Assert.Equal("RUNNING", createdInfo.GetProperty("status").GetString());

        await server.MlflowAsync("runs/log-batch", $$"""
            {"run_id":"{{runId}}",
             "metrics":[{"key":"acc","value":0.5,"timestamp":1700000000100,"step":0},
                        {"key":"acc","value":0.95,"timestamp":"1700000000200","step":"1"}],
             "params":[{"key":"lr","value":"0.01"}],
             "tags":[{"key":"team","value":"vision-core"}]}
            """);
        await server.MlflowAsync("runs/log-inputs", $$$"""
            {"run_id":"{{{runId}}}","datasets":[{"tags":[{"key":"mlflow.data.context","value":"training"}],
             "dataset":{"name":"iris","digest":"abc123","source_type":"local","source":"{\"uri\":\"iris.csv\"}","schema":"{}","profile":"{\"rows\":150}"}}]}
            """);
        var updated = await server.MlflowAsync("runs/update", $$"""{"run_id":"{{runId}}","status":"FINISHED","end_time":1700000001000}""");
        Assert.Equal("FINISHED", updated.GetProperty("run_info").GetProperty("status").GetString());

        var reply = await server.GetAsync($"/api/2.0/mlflow/runs/get?run_id={runId}");
        Assert.Equal(HttpStatusCode.OK, reply.Status);
        var run = reply.Body.GetProperty("run");
        var info = run.GetProperty("info");
        Assert.Equal(runId, info.GetProperty("run_id").GetString());
        Assert.Equal(runId, info.GetProperty("run_uuid").GetString());
        Assert.Equal(experimentId, info.GetProperty("experiment_id").GetString());
        Assert.Equal("resnet", info.GetProperty("run_name").GetString());
        Assert.Equal("ada", info.GetProperty("user_id").GetString());
        Assert.Equal("FINISHED", info.GetProperty("status").GetString());
        Assert.Equal(1700000000000, info.GetProperty("start_time").GetInt64());
        Assert.Equal(1700000001000, info.GetProperty("end_time").GetInt64());
        Assert.Equal($"mlflow-artifacts:/{experimentId}/{runId}/artifacts", info.GetProperty("artifact_uri").GetString());
        Assert.Equal("active", info.GetProperty("lifecycle_stage").GetString());

        var data = run.GetProperty("data");
        var metric = Assert.Single(data.GetProperty("metrics").EnumerateArray());
        Assert.Equal("acc", metric.GetProperty("key").GetString());
        Assert.Equal(JsonValueKind.Number, metric.GetProperty("value").ValueKind);
        Assert.Equal(0.95, metric.GetProperty("value").GetDouble());
        Assert.Equal(JsonValueKind.Number, metric.GetProperty("timestamp").ValueKind);
        Assert.Equal(1700000000200, metric.GetProperty("timestamp").GetInt64());
        Assert.Equal(1, metric.GetProperty("step").GetInt64());
        var param = Assert.Single(data.GetProperty("params").EnumerateArray());
        Assert.Equal("lr", param.GetProperty("key").GetString());
        Assert.Equal("0.01", param.GetProperty("value").GetString());
        var tags = data.GetProperty("tags").EnumerateArray().ToDictionary(t => t.GetProperty("key").GetString()!, t => t.GetProperty("value").GetString());
        Assert.Equal("vision-core", tags["team"]);
        Assert.Equal("test", tags["source"]);

        var input = Assert.Single(run.GetProperty("inputs").GetProperty("dataset_inputs").EnumerateArray());
        Assert.Equal("training", Assert.Single(input.GetProperty("tags").EnumerateArray()).GetProperty("value").GetString());
        var dataset = input.GetProperty("dataset");
        Assert.Equal("iris", dataset.GetProperty("name").GetString());
        Assert.Equal("abc123", dataset.GetProperty("digest").GetString());
        Assert.Equal("local", dataset.GetProperty("source_type").GetString());
        Assert.Equal("{\"uri\":\"iris.csv\"}", dataset.GetProperty("source").GetString());
        Assert.Equal("{\"rows\":150}", dataset.GetProperty("profile").GetString());
    }

    [Fact]
    public async Task Runs_SearchWithMlflowFilter_ReturnsOnlyMatchingRunsInOrderWithPageTokens()
    {
        var experimentId = await server.CreateExperimentAsync(Unique("search"));
        async Task<string> RunAsync(string name, double acc, string lr, string team, string status)
        {
            var runId = await server.CreateRunAsync(experimentId, name);
            await server.MlflowAsync("runs/log-batch", $$"""
                {"run_id":"{{runId}}","metrics":[{"key":"acc","value":{{acc}},"timestamp":1,"step":0}],
                 "params":[{"key":"lr","value":"{{lr}}"}],"tags":[{"key":"team","value":"{{team}}"}]}
                """);
            await server.MlflowAsync("runs/update", $$"""{"run_id":"{{runId}}","status":"{{status}}","end_time":2}""");
            return runId;
        }

        var best = await RunAsync("best", 0.97, "0.01", "vision-core", "FINISHED");
        var good = await RunAsync("good", 0.93, "0.01", "vision-edge", "FINISHED");
        await RunAsync("wrong-lr", 0.99, "0.1", "vision-core", "FINISHED");
        await RunAsync("wrong-team", 0.98, "0.01", "nlp", "FINISHED");
        await RunAsync("failed", 0.96, "0.01", "vision-core", "FAILED");
        await RunAsync("low", 0.5, "0.01", "vision-core", "FINISHED");

        const string Filter = "metrics.acc > 0.9 and params.lr = '0.01' and tags.team LIKE 'vision%' and attributes.status = 'FINISHED'";
        var all = await server.MlflowAsync("runs/search", JsonSerializer.Serialize(new
        {
            experiment_ids = new[] { experimentId },
            filter = Filter,
            order_by = new[] { "metrics.acc DESC" },
        }));
        var ids = all.GetProperty("runs").EnumerateArray().Select(r => r.GetProperty("info").GetProperty("run_id").GetString()).ToList();
        Assert.Equal([best, good], ids);
        Assert.False(all.TryGetProperty("next_page_token", out _));

        var first = await server.MlflowAsync("runs/search", JsonSerializer.Serialize(new
        {
            experiment_ids = new[] { experimentId },
            filter = Filter,
            order_by = new[] { "metrics.acc ASC" },
            max_results = 1,
        }));
        Assert.Equal(good, Assert.Single(first.GetProperty("runs").EnumerateArray()).GetProperty("info").GetProperty("run_id").GetString());
        var token = first.GetProperty("next_page_token").GetString();
        Assert.False(string.IsNullOrEmpty(token));

        var second = await server.MlflowAsync("runs/search", JsonSerializer.Serialize(new
        {
            experiment_ids = new[] { experimentId },
            filter = Filter,
            order_by = new[] { "metrics.acc ASC" },
            max_results = 1,
            page_token = token,
        }));
        Assert.Equal(best, Assert.Single(second.GetProperty("runs").EnumerateArray()).GetProperty("info").GetProperty("run_id").GetString());
    }

    [Fact]
    public async Task MetricHistory_AfterLoggingSeveralSteps_ReturnsEveryPointInStepOrder()
    {
        var runId = await server.CreateRunAsync(await server.CreateExperimentAsync(Unique("history")));
        for (var step = 2; step >= 0; step--)
        {
            await server.MlflowAsync("runs/log-metric", $$"""{"run_id":"{{runId}}","key":"loss","value":{{1.0 / (step + 1)}},"timestamp":{{1700000000000 + step}},"step":{{step}}}""");
        }

        var reply = await server.GetAsync($"/api/2.0/mlflow/metrics/get-history?run_id={runId}&metric_key=loss");
        Assert.Equal(HttpStatusCode.OK, reply.Status);
        var points = reply.Body.GetProperty("metrics").EnumerateArray().ToList();
        Assert.Equal([0L, 1L, 2L], points.Select(p => p.GetProperty("step").GetInt64()));
        Assert.All(points, p => Assert.Equal("loss", p.GetProperty("key").GetString()));
        Assert.Equal(1.0, points[0].GetProperty("value").GetDouble());
    }

    [Fact]
    public async Task LogBatch_NonFiniteValues_RoundTripAsProtobufStrings()
    {
        var runId = await server.CreateRunAsync(await server.CreateExperimentAsync(Unique("nan")));
        await server.MlflowAsync("runs/log-batch", $$"""
            {"run_id":"{{runId}}","metrics":[{"key":"loss","value":"NaN","timestamp":1,"step":0},
                                             {"key":"loss","value":"Infinity","timestamp":2,"step":1},
                                             {"key":"loss","value":"2.5","timestamp":3.0,"step":2}]}
            """);

        var history = await server.GetAsync($"/api/2.0/mlflow/metrics/get-history?run_id={runId}&metric_key=loss");

        var values = history.Body.GetProperty("metrics").EnumerateArray().Select(m => m.GetProperty("value")).ToList();
        Assert.Equal("NaN", values[0].GetString());
        Assert.Equal("Infinity", values[1].GetString());
        Assert.Equal(2.5, values[2].GetDouble());
    }

    [Fact]
    public async Task LogParameter_ReloggedWithDifferentValue_Returns400InvalidParameterValue()
    {
        var runId = await server.CreateRunAsync(await server.CreateExperimentAsync(Unique("param")));
        await server.MlflowAsync("runs/log-parameter", $$"""{"run_id":"{{runId}}","key":"lr","value":"0.01"}""");
        await server.MlflowAsync("runs/log-parameter", $$"""{"run_id":"{{runId}}","key":"lr","value":"0.01"}""");

        var reply = await server.PostAsync("/api/2.0/mlflow/runs/log-parameter", $$"""{"run_id":"{{runId}}","key":"lr","value":"0.1"}""");

        Assert.Equal(HttpStatusCode.BadRequest, reply.Status);
        Assert.Equal("INVALID_PARAMETER_VALUE", reply.ErrorCode);
        Assert.Contains("lr", reply.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetRun_UnknownRunId_Returns404ResourceDoesNotExist()
    {
        var reply = await server.GetAsync("/api/2.0/mlflow/runs/get?run_id=0123456789abcdef0123456789abcdef");

        Assert.Equal(HttpStatusCode.NotFound, reply.Status);
        Assert.Equal("RESOURCE_DOES_NOT_EXIST", reply.ErrorCode);
        Assert.False(string.IsNullOrEmpty(reply.Message));
    }

    [Fact]
    public async Task GetRun_MissingRunId_Returns400NamingTheParameter()
    {
        var reply = await server.GetAsync("/api/2.0/mlflow/runs/get");

        Assert.Equal(HttpStatusCode.BadRequest, reply.Status);
        Assert.Equal("INVALID_PARAMETER_VALUE", reply.ErrorCode);
        Assert.Contains("'run_id'", reply.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LogBatch_MalformedJson_Returns400WithErrorCode()
    {
        var reply = await server.PostAsync("/api/2.0/mlflow/runs/log-batch", """{"run_id": "abc", "metrics": [""");

        Assert.Equal(HttpStatusCode.BadRequest, reply.Status);
        Assert.Equal("BAD_REQUEST", reply.ErrorCode);
        Assert.Contains("Malformed JSON", reply.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LogBatch_WrongFieldType_Returns400NamingTheField()
    {
        var runId = await server.CreateRunAsync(await server.CreateExperimentAsync(Unique("type")));

        var reply = await server.PostAsync("/api/2.0/mlflow/runs/log-batch", $$"""{"run_id":"{{runId}}","metrics":[{"key":"acc","value":true,"timestamp":1}]}""");

        Assert.Equal(HttpStatusCode.BadRequest, reply.Status);
        Assert.Equal("INVALID_PARAMETER_VALUE", reply.ErrorCode);
        Assert.Contains("metrics[0].value", reply.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LogBatch_OverTheMetricLimit_Returns400NamingTheLimitAndLogsNothing()
    {
        var runId = await server.CreateRunAsync(await server.CreateExperimentAsync(Unique("limit")));
        var body = new StringBuilder($$"""{"run_id":"{{runId}}","metrics":[""");
        for (var i = 0; i < 1001; i++)
        {
            body.Append(i == 0 ? string.Empty : ",").Append($$"""{"key":"m","value":{{i}},"timestamp":1,"step":{{i}}}""");
        }

        var reply = await server.PostAsync("/api/2.0/mlflow/runs/log-batch", body.Append("]}").ToString());

        Assert.Equal(HttpStatusCode.BadRequest, reply.Status);
        Assert.Equal("INVALID_PARAMETER_VALUE", reply.ErrorCode);
        Assert.Contains("1000", reply.Message, StringComparison.Ordinal);
        var run = await server.GetAsync($"/api/2.0/mlflow/runs/get?run_id={runId}");
        Assert.False(run.Body.GetProperty("run").GetProperty("data").TryGetProperty("metrics", out _));
    }

    [Fact]
    public async Task LogBatch_OverTheParamLimit_Returns400NamingTheLimit()
    {
        var runId = await server.CreateRunAsync(await server.CreateExperimentAsync(Unique("plimit")));
        var parameters = string.Join(",", Enumerable.Range(0, 101).Select(i => $$"""{"key":"p{{i}}","value":"v"}"""));

        var reply = await server.PostAsync("/api/2.0/mlflow/runs/log-batch", $$"""{"run_id":"{{runId}}","params":[{{parameters}}]}""");

        Assert.Equal(HttpStatusCode.BadRequest, reply.Status);
        Assert.Equal("INVALID_PARAMETER_VALUE", reply.ErrorCode);
        Assert.Contains("100 params", reply.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LogBatch_ConcurrentClientsOnOneRun_KeepsEveryPoint()
    {
        var runId = await server.CreateRunAsync(await server.CreateExperimentAsync(Unique("concurrent")));
        const int Clients = 4;
        const int Batches = 5;
        const int BatchSize = 1000;

        await Task.WhenAll(Enumerable.Range(0, Clients).Select(async client =>
        {
            for (var batch = 0; batch < Batches; batch++)
            {
                var first = ((client * Batches) + batch) * BatchSize;
                var metrics = string.Join(",", Enumerable.Range(first, BatchSize).Select(step => $$"""{"key":"loss","value":{{step}},"timestamp":{{step}},"step":{{step}}}"""));
                await server.MlflowAsync("runs/log-batch", $$"""{"run_id":"{{runId}}","metrics":[{{metrics}}]}""");
            }
        }));

        var history = await server.GetAsync($"/api/2.0/mlflow/metrics/get-history?run_id={runId}&metric_key=loss");
        var steps = history.Body.GetProperty("metrics").EnumerateArray().Select(m => m.GetProperty("step").GetInt64()).ToList();
        Assert.Equal(Enumerable.Range(0, Clients * Batches * BatchSize).Select(i => (long)i), steps);
        var latest = Assert.Single((await server.GetAsync($"/api/2.0/mlflow/runs/get?run_id={runId}")).Body.GetProperty("run").GetProperty("data").GetProperty("metrics").EnumerateArray());
        Assert.Equal((Clients * Batches * BatchSize) - 1, latest.GetProperty("step").GetInt64());
    }

    [Fact]
    public async Task LogMetric_MissingTimestamp_Returns400NamingTheField()
    {
        var runId = await server.CreateRunAsync(await server.CreateExperimentAsync(Unique("ts")));

        var reply = await server.PostAsync("/api/2.0/mlflow/runs/log-metric", $$"""{"run_id":"{{runId}}","key":"acc","value":1}""");

        Assert.Equal(HttpStatusCode.BadRequest, reply.Status);
        Assert.Equal("INVALID_PARAMETER_VALUE", reply.ErrorCode);
        Assert.Contains("'timestamp'", reply.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownEndpoint_Returns404EndpointNotFound()
    {
        var reply = await server.PostAsync("/api/2.0/mlflow/runs/does-not-exist", "{}");

        Assert.Equal(HttpStatusCode.NotFound, reply.Status);
        Assert.Equal("ENDPOINT_NOT_FOUND", reply.ErrorCode);
    }

    [Fact]
    public async Task AjaxApiPrefix_ServesTheSameApi()
    {
        var name = Unique("ajax");
        var id = await server.CreateExperimentAsync(name);

        var reply = await server.GetAsync($"/ajax-api/2.0/mlflow/experiments/get-by-name?experiment_name={name}");

        Assert.Equal(HttpStatusCode.OK, reply.Status);
        Assert.Equal(id, reply.Body.GetProperty("experiment").GetProperty("experiment_id").GetString());
    }

    [Fact]
    public async Task Runs_DeleteTagDeleteAndRestore_ChangeWhatGetReturns()
    {
        var runId = await server.CreateRunAsync(await server.CreateExperimentAsync(Unique("del")));
        await server.MlflowAsync("runs/set-tag", $$"""{"run_id":"{{runId}}","key":"note","value":"x"}""");
        await server.MlflowAsync("runs/delete-tag", $$"""{"run_id":"{{runId}}","key":"note"}""");
        await server.MlflowAsync("runs/delete", $$"""{"run_id":"{{runId}}"}""");

        var deleted = await server.GetAsync($"/api/2.0/mlflow/runs/get?run_uuid={runId}");
        Assert.Equal("deleted", deleted.Body.GetProperty("run").GetProperty("info").GetProperty("lifecycle_stage").GetString());
        var tags = deleted.Body.GetProperty("run").GetProperty("data").TryGetProperty("tags", out var t) ? t.EnumerateArray().ToList() : [];
        Assert.DoesNotContain(tags, tag => tag.GetProperty("key").GetString() == "note");

        await server.MlflowAsync("runs/restore", $$"""{"run_id":"{{runId}}"}""");
        var restored = await server.GetAsync($"/api/2.0/mlflow/runs/get?run_id={runId}");
        Assert.Equal("active", restored.Body.GetProperty("run").GetProperty("info").GetProperty("lifecycle_stage").GetString());
    }
}
