using Capstan.Tuning;

namespace Capstan.Bench;

/// <summary>
/// The tuning benchmark's functions (all minimised), term for term the same as bench/tuning/optuna_tpe.py so the
/// comparison with Optuna is over identical problems.
/// </summary>
public sealed record TuningFunction(string Name, SearchSpace Space, Func<ParameterAssignment, double> Evaluate, double Optimum)
{
    private static readonly double[,] s_hartmannA = { { 10, 3, 17, 3.5, 1.7, 8 }, { 0.05, 10, 17, 0.1, 8, 14 }, { 3, 3.5, 1.7, 10, 17, 8 }, { 17, 8, 0.05, 10, 0.1, 14 } };
    private static readonly double[,] s_hartmannP = { { 1312, 1696, 5569, 124, 8283, 5886 }, { 2329, 4135, 8307, 3736, 1004, 9991 }, { 2348, 1451, 3522, 2883, 3047, 6650 }, { 4047, 8828, 8732, 5743, 1091, 381 } };
    private static readonly double[] s_hartmannAlpha = [1.0, 1.2, 3.0, 3.2];

    public static IReadOnlyList<TuningFunction> All { get; } = [Branin(), Hartmann6(), Rosenbrock10(), Surrogate()];

    private static double X(ParameterAssignment a, string name) => a[name].Number!.Value;

    public static TuningFunction Branin() => new(
        "branin",
        SearchSpace.Create(ParameterSpec.Double("x1", -5, 10), ParameterSpec.Double("x2", 0, 15)),
        a =>
        {
            double x1 = X(a, "x1"), x2 = X(a, "x2");
            var b = 5.1 / (4 * Math.PI * Math.PI);
            var c = 5 / Math.PI;
            return Math.Pow(x2 - (b * x1 * x1) + (c * x1) - 6, 2) + (10 * (1 - (1 / (8 * Math.PI))) * Math.Cos(x1)) + 10;
        },
        0.397887);

    public static TuningFunction Hartmann6() => new(
        "hartmann6",
        SearchSpace.Create(Enumerable.Range(0, 6).Select(i => ParameterSpec.Double($"x{i}", 0, 1))),
        a =>
        {
            var total = 0.0;
            for (var i = 0; i < 4; i++)
            {
                var inner = 0.0;
                for (var j = 0; j < 6; j++)
                {
                    inner += s_hartmannA[i, j] * Math.Pow(X(a, $"x{j}") - (s_hartmannP[i, j] * 1e-4), 2);
                }

                total += s_hartmannAlpha[i] * Math.Exp(-inner);
            }

            return -total;
        },
        -3.32237);

    public static TuningFunction Rosenbrock10() => new(
        "rosenbrock10",
        SearchSpace.Create(Enumerable.Range(0, 10).Select(i => ParameterSpec.Double($"x{i}", -5, 10))),
        a =>
        {
            var sum = 0.0;
            for (var i = 0; i < 9; i++)
            {
                double xi = X(a, $"x{i}"), next = X(a, $"x{i + 1}");
                sum += (100 * Math.Pow(next - (xi * xi), 2)) + Math.Pow(1 - xi, 2);
            }

            return sum;
        },
        0);

    /// <summary>
    /// A train-a-model surrogate in closed form: the validation error of a boosted-tree model over learning rate
    /// (log), depth, tree count (log), subsample and booster (categorical). Learning rate and tree count trade off,
    /// depth has an optimum, subsample regularises, the booster offsets. Deterministic, so every seed sees the same
    /// landscape; minimum 0.08 at lr ≈ 0.0316, trees ≈ 501, depth 7, subsample 0.8, gbtree.
    /// </summary>
    public static TuningFunction Surrogate() => new(
        "surrogate",
        SearchSpace.Create(
            ParameterSpec.Double("learning_rate", 1e-4, 1.0, distribution: Distribution.LogUniform),
            ParameterSpec.Int("max_depth", 1, 12),
            ParameterSpec.Int("n_estimators", 10, 1000, distribution: Distribution.LogUniform),
            ParameterSpec.Double("subsample", 0.5, 1.0),
            ParameterSpec.Categorical("booster", "gbtree", "dart", "gblinear")),
        a =>
        {
            var lr = X(a, "learning_rate");
            var depth = X(a, "max_depth");
            var trees = X(a, "n_estimators");
            var subsample = X(a, "subsample");
            var booster = a["booster"].Text switch { "gbtree" => 0.0, "dart" => 0.01, _ => 0.06 };
            var fit = Math.Log10(lr) + Math.Log10(trees);
            var error = 0.08 + (0.02 * Math.Pow(fit - 1.2, 2)) + (0.015 * Math.Pow(Math.Log10(lr) + 1.5, 2));
            error += 0.004 * Math.Pow(depth - 7, 2) / (1 + (0.3 * Math.Abs(fit - 1.2)));
            error += (0.05 * Math.Pow(subsample - 0.8, 2)) + booster;
            return error;
        },
        0.08);
}
