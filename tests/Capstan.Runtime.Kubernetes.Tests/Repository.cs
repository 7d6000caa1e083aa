namespace Capstan.Runtime.Kubernetes.Tests;

/// <summary>Paths in the checkout the tests run from: the examples, deploy/ and the committed CRDs.</summary>
internal static class Repository
{
    public static string Root { get; } = FindRoot();

    public static string Examples => Path.Combine(Root, "examples");

    public static string Deploy => Path.Combine(Root, "deploy", "kubernetes");

    public static string Fixtures => Path.Combine(Root, "tests", "Capstan.Runtime.Kubernetes.Tests", "Fixtures");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Capstan.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"no Capstan.slnx above {AppContext.BaseDirectory}: the tests run from a checkout");
    }
}
