namespace Capstan.Runtime.Kubernetes.Tests.Validation;

/// <summary>Programs some tests need: under CI (CI=true) a missing one fails the test, elsewhere it skips it, saying how to install it.</summary>
internal static class Tools
{
    public static string? Find(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(dir => Path.Combine(dir, program))
            .FirstOrDefault(File.Exists);

    public static void Require(string? missing)
    {
        if (missing is null)
        {
            return;
        }

        if (Environment.GetEnvironmentVariable("CI") == "true")
        {
            Assert.Fail($"{missing} (.ci/run installs it)");
        }

        Assert.Skip(missing);
    }
}
