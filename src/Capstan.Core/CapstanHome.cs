namespace Capstan.Core;

/// <summary>
/// Where the embedded defaults keep their state: <c>$CAPSTAN_HOME</c>, or <c>~/.capstan</c>.
/// The metadata store is one SQLite file and the artifacts one folder beneath it.
/// </summary>
public sealed record CapstanHome(string Root)
{
    public const string EnvironmentVariable = "CAPSTAN_HOME";

    public string DatabasePath => Path.Combine(Root, "capstan.db");

    public string ArtifactsPath => Path.Combine(Root, "artifacts");

    public static CapstanHome FromEnvironment()
    {
        var configured = Environment.GetEnvironmentVariable(EnvironmentVariable);
        var root = string.IsNullOrWhiteSpace(configured)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".capstan")
            : configured;
        return new CapstanHome(Path.GetFullPath(root));
    }

    public CapstanHome EnsureCreated()
    {
        Directory.CreateDirectory(Root);
        Directory.CreateDirectory(ArtifactsPath);
        return this;
    }
}
