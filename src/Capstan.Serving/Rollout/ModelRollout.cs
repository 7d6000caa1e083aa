using Capstan.Serving.Models;
using Capstan.Serving.Registry;

namespace Capstan.Serving.Rollout;

/// <summary>What one served model should be: its references, the canary's share and how it runs.</summary>
public sealed record ServingPlan
{
    /// <summary>The name in <c>/v2/models/{name}</c>.</summary>
    public required string ModelName { get; init; }

    /// <summary>The main version: a file, <c>models:/name/3</c> or <c>models:/name@alias</c>.</summary>
    public required string Model { get; init; }

    public string? Canary { get; init; }

    /// <summary>Share of the requests without a version that go to <see cref="Canary"/>, 0 to 100.</summary>
    public int CanaryTrafficPercent { get; init; }

    public ModelOptions Options { get; init; } = new();
}

/// <summary>One served version after a rollout.</summary>
public sealed record ServedVersion(string Tag, string Model, string Version, int Percent);

/// <summary>
/// Brings a <see cref="ModelRepository"/> to a <see cref="ServingPlan"/> without dropping a request: the new versions are
/// loaded next to the old ones, then the traffic split moves in one atomic step, then versions no longer in the plan are
/// unloaded (their in-flight requests finish first). A version already loaded with the same options is kept, not reloaded.
/// Rollouts run one at a time.
/// </summary>
public sealed class ModelRollout(ModelRepository repository, Func<string, string, CancellationToken, Task<ResolvedModel>> resolve) : IDisposable
{
    public const string DefaultTag = "default";
    public const string CanaryTag = "canary";

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<(string Name, string Version), ModelOptions> _loadedWith = [];

    public ModelRepository Repository { get; } = repository;

    /// <exception cref="InvalidOperationException">A model cannot be loaded; what was served before still is.</exception>
    public async Task<IReadOnlyList<ServedVersion>> ApplyAsync(ServingPlan plan, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (plan.CanaryTrafficPercent is < 0 or > 100)
        {
            throw new ArgumentOutOfRangeException(nameof(plan), plan.CanaryTrafficPercent, "The canary's traffic percent must be between 0 and 100.");
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var main = await resolve(plan.Model, plan.ModelName, cancellationToken).ConfigureAwait(false);
            var canary = plan.Canary is { Length: > 0 } reference ? await resolve(reference, plan.ModelName, cancellationToken).ConfigureAwait(false) : null;
            if (canary is not null && canary.Version == main.Version)
            {
                // Both references point at one version (an alias caught up): it serves everything.
                canary = null;
            }

            var served = new List<ServedVersion>();
            var canaryPercent = canary is null ? 0 : plan.CanaryTrafficPercent;
            served.Add(new ServedVersion(DefaultTag, plan.Model, main.Version, 100 - canaryPercent));
            if (canary is not null)
            {
                served.Add(new ServedVersion(CanaryTag, plan.Canary!, canary.Version, canaryPercent));
            }

            Load(plan.ModelName, main, plan.Options);
            if (canary is not null)
            {
                Load(plan.ModelName, canary, plan.Options);
            }

            var shares = served.Where(s => s.Percent > 0).Select(s => new TrafficShare(s.Version, s.Percent)).ToList();
            Repository.SetTraffic(plan.ModelName, shares);
            foreach (var version in Repository.VersionsOf(plan.ModelName).Except(served.Select(s => s.Version)))
            {
                Repository.Unload(plan.ModelName, version);
                _loadedWith.Remove((plan.ModelName, version));
            }

            return served;
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose() => _gate.Dispose();

    private void Load(string name, ResolvedModel model, ModelOptions options)
    {
        if (_loadedWith.TryGetValue((name, model.Version), out var current) && current == options && Repository.VersionsOf(name).Contains(model.Version))
        {
            return;
        }

        Repository.Load(name, model.Version, ModelSource.FromFile(model.OnnxPath), options, makeDefault: false);
        _loadedWith[(name, model.Version)] = options;
    }
}
