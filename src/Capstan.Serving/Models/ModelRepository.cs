using System.Collections.Concurrent;
using System.Collections.Immutable;
using Capstan.Serving.Inference;
using Capstan.Serving.Metrics;

namespace Capstan.Serving.Models;

/// <summary>
/// The models a server holds: several names, several versions each. Loading a version that is
/// already there swaps it atomically; the old session serves its in-flight requests to the end and
/// is disposed after the last one. A request without a version gets the default version: the one
/// most recently loaded, or the one set with <see cref="SetDefaultVersion"/> (an alias moving).
/// </summary>
public sealed class ModelRepository(ServingMetrics metrics) : IDisposable
{
    private readonly ConcurrentDictionary<string, ModelEntry> _models = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    public ServingMetrics Metrics { get; } = metrics;

    public IReadOnlyCollection<string> ModelNames => [.. _models.Keys];

    /// <summary>Loads (or replaces) a model version; it becomes the default version.</summary>
    public ModelMetadata Load(string name, string version, ModelSource source, ModelOptions options)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentException.ThrowIfNullOrWhiteSpace(version);
        var loaded = LoadedModel.Load(name, version, source, options, Metrics);
        LoadedModel? replaced;
        lock (_gate)
        {
            var entry = _models.GetOrAdd(name, _ => new ModelEntry());
            entry.State.Versions.TryGetValue(version, out replaced);
            entry.State = new ModelState(entry.State.Versions.SetItem(version, loaded), version);
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

            entry.State = entry.State with { DefaultVersion = version };
        }
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
                entry.State = new ModelState(versions, defaultVersion);
            }
        }

        removed.Release();
        return true;
    }

    /// <summary>The versions loaded for a model, empty when it is unknown.</summary>
    public IReadOnlyList<string> VersionsOf(string name) =>
        _models.TryGetValue(name, out var entry) ? [.. entry.State.Versions.Keys.Order(StringComparer.Ordinal)] : [];

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
            var wanted = string.IsNullOrEmpty(version) ? state.DefaultVersion : version;
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

    private sealed record ModelState(ImmutableDictionary<string, LoadedModel> Versions, string? DefaultVersion)
    {
        public static readonly ModelState Empty = new(ImmutableDictionary<string, LoadedModel>.Empty, null);
    }
}

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
