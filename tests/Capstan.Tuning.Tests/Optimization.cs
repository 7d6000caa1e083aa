using Capstan.Tuning;

namespace Capstan.Tuning.Tests;

/// <summary>Runs an algorithm against a function for a number of trials, one suggestion at a time.</summary>
internal static class Optimization
{
    public static List<Trial> Run(ISearchAlgorithm algorithm, Func<ParameterAssignment, double[]> evaluate, int trials)
    {
        var history = new List<Trial>();
        for (var i = 0; i < trials; i++)
        {
            var a = algorithm.Suggest(history, 1).Suggestions[0].Parameters;
            history.Add(new Trial(i, a, TrialState.Completed, evaluate(a)));
        }

        return history;
    }

    public static double Best(string name, SearchSpace space, Func<ParameterAssignment, double> f, int trials, int seed, IReadOnlyList<AlgorithmSetting>? settings = null) =>
        Run(SearchAlgorithms.Create(name, space, [Objective.Minimize("y")], settings, seed), a => [f(a)], trials).Min(t => t.Value!.Value);

    public static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[(v.Length / 2) - 1] + v[v.Length / 2]) / 2;
    }

    public static double X(this ParameterAssignment a, string name) => a[name].Number!.Value;

    public static SearchSpace Box(int dimensions, double min, double max) =>
        SearchSpace.Create(Enumerable.Range(0, dimensions).Select(i => ParameterSpec.Double($"x{i}", min, max)));

    public static double Sphere(ParameterAssignment a, double center = 0) => a.Values.Sum(v => (v.Number!.Value - center) * (v.Number!.Value - center));
}
