using System.Collections.Concurrent;
using System.Collections.Immutable;
using Capstan.Serving.Inference;
using Capstan.Serving.Metrics;

namespace Capstan.Serving.Models;

/// <summary>
/// The models a server holds: several names, several versions each. Loading a version that is
/// already there swaps it atomically; the old session serves its in-flight requests to the end and
/// is disposed after the last one. A request without a version gets the default version: the one
/// most recently loaded, or the one set with <see cref="SetDefaultVersion"/> (an alias moving) —
/// or, with a traffic split (<see cref="SetTraffic"/>, a canary), one drawn per request by the split's weights.
/// </summary>
public sealed class ModelRepository(ServingMetrics metrics) : IDisposable
{
    private readonly ConcurrentDictionary<string, ModelEntry> _models = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    public ServingMetrics Metrics { get; } = metrics;

    public IReadOnlyCollection<string> ModelNames => [.. _models.Keys];

    /// <summary>Loads (or replaces) a model version; it becomes the default version unless <paramref name="makeDefault"/> is false.</summary>
    public ModelMetadata Load(string name, string version, ModelSource source, ModelOptions options, bool makeDefault = true)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentException.ThrowIfNullOrWhiteSpace(version);
        var loaded = LoadedModel.Load(name, version, source, options, Metrics);
        LoadedModel? replaced;
        lock (_gate)
        {
            var entry = _models.GetOrAdd(name, _ => new ModelEntry());
            entry.State.Versions.TryGetValue(version, out replaced);
            var state = entry.State;
            entry.State = makeDefault || state.DefaultVersion is null
                ? new ModelState(state.Versions.SetItem(version, loaded), version)
                : state with { Versions = state.Versions.SetItem(version, loaded) };
        }

        replaced?.Release();
        return loaded.Metadata;
    }

    /// <summary>Makes <paramref name="version"/> the one requests without a version get.</summary>
    public void SetDefaultVersion(string name, string version)
    {
        lock (_gate)
        {
            if (!_models.TryGetValue(name, out var entry) || !entry.State.Versions.ContainsKey(version))
            {
                throw InferenceException.NotFound($"Model '{name}' has no version {version} loaded.");
            }

            entry.State = entry.State with { DefaultVersion = version, Split = null };
        }
    }

    /// <summary>
    /// Splits requests without a version between loaded versions by weight (percent), drawn per request: a canary.
    /// The first share's version becomes the default; an empty list or a single share ends the split.
    /// </summary>
    public void SetTraffic(string name, IReadOnlyList<TrafficShare> shares)
    {
        ArgumentNullException.ThrowIfNull(shares);
        var weighted = shares.Where(s => s.Percent > 0).ToList();
        if (weighted.Count == 0)
        {
            throw new ArgumentException("A traffic split needs a share above 0 percent.", nameof(shares));
        }

        lock (_gate)
        {
            if (!_models.TryGetValue(name, out var entry))
            {
                throw InferenceException.NotFound($"Unknown model '{name}'.");
            }

            foreach (var share in weighted.Where(s => !entry.State.Versions.ContainsKey(s.Version)))
            {
                throw InferenceException.NotFound($"Model '{name}' has no version {share.Version} loaded.");
            }

            var cumulative = 0;
            ImmutableArray<(string Version, int Upper)>? split = weighted.Count == 1
                ? null
                : weighted.Select(s => (s.Version, Upper: cumulative += s.Percent)).ToImmutableArray();
            entry.State = entry.State with { DefaultVersion = weighted.MaxBy(s => s.Percent)!.Version, Split = split };
        }
    }

    /// <summary>The split set by <see cref="SetTraffic"/>, or the default version alone at 100 percent.</summary>
    public IReadOnlyList<TrafficShare> TrafficOf(string name)
    {
        if (!_models.TryGetValue(name, out var entry) || entry.State.DefaultVersion is not { } defaultVersion)
        {
            return [];
        }

        if (entry.State.Split is not { } split)
        {
            return [new TrafficShare(defaultVersion, 100)];
        }

        var total = split[^1].Upper;
        var shares = new List<TrafficShare>(split.Length);
        var previous = 0;
        foreach (var (version, upper) in split)
        {
            shares.Add(new TrafficShare(version, (int)Math.Round(100.0 * (upper - previous) / total)));
            previous = upper;
        }

        return shares;
    }

    /// <summary>Unloads a version; in-flight requests on it still finish.</summary>
    public bool Unload(string name, string version)
    {
        LoadedModel? removed;
        lock (_gate)
        {
            if (!_models.TryGetValue(name, out var entry) || !entry.State.Versions.TryGetValue(version, out removed))
            {
                return false;
            }

            var versions = entry.State.Versions.Remove(version);
            if (versions.IsEmpty)
            {
                entry.State = ModelState.Empty;
                _models.TryRemove(name, out _);
            }
            else
            {
                var defaultVersion = entry.State.DefaultVersion == version
                    ? versions.Keys.OrderByDescending(v => long.TryParse(v, out var n) ? n : long.MinValue).First()
                    : entry.State.DefaultVersion;
                // A split over the version that left ends: what stays serves everything.
                entry.State = new ModelState(versions, defaultVersion, entry.State.Split is { } split && split.Any(s => s.Version == version) ? null : entry.State.Split);
            }
        }

        removed.Release();
        return true;
    }

    /// <summary>The versions loaded for a model, empty when it is unknown.</summary>
    public IReadOnlyList<string> VersionsOf(string name) =>
        _models.TryGetValue(name, out var entry) ? [.. entry.State.Versions.Keys.Order(StringComparer.Ordinal)] : [];

    /// <summary>Where the model's default version runs (<c>cpu</c> or <c>cuda</c>), for start-up lines and status.</summary>
    public string ExecutionProviderOf(string name)
    {
        using var lease = Acquire(name, null);
        return lease.Model.Metadata.ExecutionProvider;
    }

    /// <summary>Takes a reference on a model version for one request; dispose the lease when done.</summary>
    /// <exception cref="InferenceException">Unknown model or version (NotFound).</exception>
    public ModelLease Acquire(string name, string? version)
    {
        while (true)
        {
            if (!_models.TryGetValue(name, out var entry))
            {
                throw InferenceException.NotFound($"Unknown model '{name}'.");
            }

            // One snapshot of versions and default together, so a concurrent load or unload cannot pair them wrongly.
            var state = entry.State;
            var wanted = string.IsNullOrEmpty(version) ? state.Pick() : version;
            if (wanted is null || !state.Versions.TryGetValue(wanted, out var model))
            {
                throw InferenceException.NotFound($"Model '{name}' has no version {version} loaded.");
            }

            if (model.TryAcquire())
            {
                return new ModelLease(model);
            }

            // Swapped out between the lookup and the acquire: look again and get the new one.
        }
    }

    /// <summary>
    /// The statistics of every loaded version that matches, as Triton's statistics extension answers them: all models when
    /// <paramref name="name"/> is empty, all versions of it when <paramref name="version"/> is, ordered by name and version.
    /// A version unloaded meanwhile is left out.
    /// </summary>
    /// <exception cref="InferenceException">A named model or version that is not loaded (NotFound).</exception>
    public IReadOnlyList<(ModelMetadata Metadata, ModelStatistics Statistics)> StatisticsOf(string? name, string? version)
    {
        var found = new List<(ModelMetadata, ModelStatistics)>();
        if (string.IsNullOrEmpty(name))
        {
            foreach (var model in ModelNames.Order(StringComparer.Ordinal))
            {
                AddAllVersions(model, found);
            }
        }
        else if (!string.IsNullOrEmpty(version))
        {
            using var lease = Acquire(name, version);
            found.Add((lease.Model.Metadata, lease.Model.Statistics));
        }
        else
        {
            AddAllVersions(name, found);
            if (found.Count == 0)
            {
                throw InferenceException.NotFound($"Model '{name}' is not loaded.");
            }
        }

        return found;
    }

    private void AddAllVersions(string name, List<(ModelMetadata, ModelStatistics)> found)
    {
        foreach (var version in VersionsOf(name))
        {
            try
            {
                using var lease = Acquire(name, version);
                found.Add((lease.Model.Metadata, lease.Model.Statistics));
            }
            catch (InferenceException)
            {
                // Unloaded between the listing and the lease.
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var entry in _models.Values)
            {
                foreach (var model in entry.State.Versions.Values)
                {
                    model.Release();
                }
            }

            _models.Clear();
        }
    }

    private sealed class ModelEntry
    {
        public volatile ModelState State = ModelState.Empty;
    }

    /// <summary>The versions, the default, and an optional split as (version, cumulative weight) pairs.</summary>
    private sealed record ModelState(ImmutableDictionary<string, LoadedModel> Versions, string? DefaultVersion, ImmutableArray<(string Version, int Upper)>? Split = null)
    {
        public static readonly ModelState Empty = new(ImmutableDictionary<string, LoadedModel>.Empty, null);

        /// <summary>The version a request without one gets: the default, or a weighted draw over the split.</summary>
        public string? Pick()
        {
            if (Split is not { } split)
            {
                return DefaultVersion;
            }

            var draw = Random.Shared.Next(split[^1].Upper);
            foreach (var (version, upper) in split)
            {
                if (draw < upper)
                {
                    return version;
                }
            }

            return DefaultVersion;
        }
    }
}

/// <summary>One version's share of the requests that name no version.</summary>
public sealed record TrafficShare(string Version, int Percent);

/// <summary>A request's hold on one model version; the session stays alive until it is disposed.</summary>
public sealed class ModelLease(LoadedModel model) : IDisposable
{
    private int _released;

    public LoadedModel Model { get; } = model;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            Model.Release();
        }
    }
}
