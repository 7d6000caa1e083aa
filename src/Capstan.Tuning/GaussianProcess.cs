namespace Capstan.Tuning;

/// <summary>
/// Gaussian-process regression with an ARD Matern 5/2 kernel on standardised targets. Length scales, signal
/// variance and noise are fitted by maximising the log marginal likelihood (Nelder–Mead in log space from a few
/// fixed starts, bounded), then the posterior mean and variance are available at any point.
/// </summary>
internal sealed class GaussianProcess
{
    private readonly double[][] _x;
    private readonly double _yMean;
    private readonly double _yStd;
    private double[] _lengths = [];
    private double _signal;
    private double _noise;
    private double[,] _chol = new double[0, 0];
    private double[] _alpha = [];

    public GaussianProcess(double[][] x, double[] y)
    {
        _x = x;
        _yMean = y.Average();
        var variance = y.Sum(v => (v - _yMean) * (v - _yMean)) / Math.Max(1, y.Length - 1);
        _yStd = variance > 1e-24 ? Math.Sqrt(variance) : 1;
        Targets = y.Select(v => (v - _yMean) / _yStd).ToArray();
    }

    private double[] Targets { get; }

    public IReadOnlyList<double> LengthScales => _lengths;

    public double LogMarginalLikelihood { get; private set; }

    /// <summary>Fits the hyperparameters and factorises the kernel matrix.</summary>
    public GaussianProcess Fit()
    {
        var d = _x[0].Length;
        var starts = new[] { -1.0, 0.0, -2.0 }.Select(l =>
        {
            var s = new double[d + 2];
            Array.Fill(s, l, 0, d);
            s[d] = 0;
            s[d + 1] = Math.Log(1e-3);
            return s;
        });
        double[]? best = null;
        var bestValue = double.PositiveInfinity;
        foreach (var start in starts)
        {
            var (theta, value) = NelderMead(Negative, start, 0.5, 40 * (d + 2));
            if (value < bestValue)
            {
                bestValue = value;
                best = theta;
            }
        }

        Apply(Clamp(best!));
        LogMarginalLikelihood = -bestValue;
        return this;
    }

    /// <summary>Posterior mean and standard deviation in the original units.</summary>
    public (double Mean, double Std) Predict(double[] point)
    {
        var n = _x.Length;
        var k = new double[n];
        for (var i = 0; i < n; i++)
        {
            k[i] = Kernel(_x[i], point, _lengths, _signal);
        }

        var mean = 0.0;
        for (var i = 0; i < n; i++)
        {
            mean += k[i] * _alpha[i];
        }

        var v = ForwardSubstitute(_chol, k);
        var variance = _signal - v.Sum(x => x * x);
        return ((mean * _yStd) + _yMean, Math.Sqrt(Math.Max(variance, 1e-12)) * _yStd);
    }

    private double Negative(double[] theta)
    {
        theta = Clamp(theta);
        var d = _x[0].Length;
        var lengths = theta[..d].Select(Math.Exp).ToArray();
        var signal = Math.Exp(theta[d]);
        var noise = Math.Exp(theta[d + 1]);
        var chol = Cholesky(KernelMatrix(lengths, signal, noise));
        if (chol is null)
        {
            return 1e10;
        }

        var alpha = Solve(chol, Targets);
        var fit = 0.0;
        for (var i = 0; i < Targets.Length; i++)
        {
            fit += Targets[i] * alpha[i];
        }

        var logDet = 0.0;
        for (var i = 0; i < Targets.Length; i++)
        {
            logDet += Math.Log(chol[i, i]);
        }

        // Weak log-normal priors keep the length scales and signal away from degenerate fits on few points.
        var prior = 0.0;
        for (var i = 0; i < d; i++)
        {
            prior += 0.5 * Math.Pow((theta[i] + 1) / 1.5, 2);
        }

        prior += 0.5 * Math.Pow(theta[d] / 2, 2);
        return (0.5 * fit) + logDet + (0.5 * Targets.Length * Math.Log(2 * Math.PI)) + prior;
    }

    private void Apply(double[] theta)
    {
        var d = _x[0].Length;
        _lengths = theta[..d].Select(Math.Exp).ToArray();
        _signal = Math.Exp(theta[d]);
        _noise = Math.Exp(theta[d + 1]);
        var jitter = 0.0;
        double[,]? chol = null;
        while (chol is null)
        {
            chol = Cholesky(KernelMatrix(_lengths, _signal, _noise + jitter));
            jitter = jitter == 0 ? 1e-8 : jitter * 10;
        }

        _chol = chol;
        _alpha = Solve(chol, Targets);
    }

    private static double[] Clamp(double[] theta)
    {
        var d = theta.Length - 2;
        var c = (double[])theta.Clone();
        for (var i = 0; i < d; i++)
        {
            c[i] = Math.Clamp(c[i], Math.Log(0.01), Math.Log(20));
        }

        c[d] = Math.Clamp(c[d], Math.Log(0.05), Math.Log(20));
        c[d + 1] = Math.Clamp(c[d + 1], Math.Log(1e-6), Math.Log(0.5));
        return c;
    }

    private double[,] KernelMatrix(double[] lengths, double signal, double noise)
    {
        var n = _x.Length;
        var k = new double[n, n];
        for (var i = 0; i < n; i++)
        {
            for (var j = 0; j <= i; j++)
            {
                var v = Kernel(_x[i], _x[j], lengths, signal);
                k[i, j] = v;
                k[j, i] = v;
            }

            k[i, i] += noise;
        }

        return k;
    }

    /// <summary>Matern 5/2: σ² (1 + √5 r + 5r²/3) exp(−√5 r), r the length-scaled distance.</summary>
    internal static double Kernel(double[] a, double[] b, double[] lengths, double signal)
    {
        var r2 = 0.0;
        for (var i = 0; i < a.Length; i++)
        {
            var t = (a[i] - b[i]) / lengths[i];
            r2 += t * t;
        }

        var r = Math.Sqrt(5 * r2);
        return signal * (1 + r + (r * r / 3)) * Math.Exp(-r);
    }

    private static double[,]? Cholesky(double[,] a)
    {
        var n = a.GetLength(0);
        var l = new double[n, n];
        for (var i = 0; i < n; i++)
        {
            for (var j = 0; j <= i; j++)
            {
                var sum = a[i, j];
                for (var k = 0; k < j; k++)
                {
                    sum -= l[i, k] * l[j, k];
                }

                if (i == j)
                {
                    if (sum <= 0)
                    {
                        return null;
                    }

                    l[i, i] = Math.Sqrt(sum);
                }
                else
                {
                    l[i, j] = sum / l[j, j];
                }
            }
        }

        return l;
    }

    private static double[] ForwardSubstitute(double[,] l, double[] b)
    {
        var n = b.Length;
        var y = new double[n];
        for (var i = 0; i < n; i++)
        {
            var sum = b[i];
            for (var k = 0; k < i; k++)
            {
                sum -= l[i, k] * y[k];
            }

            y[i] = sum / l[i, i];
        }

        return y;
    }

    private static double[] Solve(double[,] l, double[] b)
    {
        var y = ForwardSubstitute(l, b);
        var n = b.Length;
        var x = new double[n];
        for (var i = n - 1; i >= 0; i--)
        {
            var sum = y[i];
            for (var k = i + 1; k < n; k++)
            {
                sum -= l[k, i] * x[k];
            }

            x[i] = sum / l[i, i];
        }

        return x;
    }

    /// <summary>Nelder–Mead simplex minimisation from a start point with an initial step per coordinate.</summary>
    internal static (double[] Point, double Value) NelderMead(Func<double[], double> f, double[] start, double step, int maxEvaluations)
    {
        var n = start.Length;
        var simplex = new double[n + 1][];
        var values = new double[n + 1];
        simplex[0] = (double[])start.Clone();
        for (var i = 0; i < n; i++)
        {
            simplex[i + 1] = (double[])start.Clone();
            simplex[i + 1][i] += step;
        }

        for (var i = 0; i <= n; i++)
        {
            values[i] = f(simplex[i]);
        }

        var evaluations = n + 1;
        while (evaluations < maxEvaluations)
        {
            var order = Enumerable.Range(0, n + 1).OrderBy(i => values[i]).ToArray();
            simplex = order.Select(i => simplex[i]).ToArray();
            values = order.Select(i => values[i]).ToArray();
            if (Math.Abs(values[n] - values[0]) < 1e-7)
            {
                break;
            }

            var centroid = new double[n];
            for (var i = 0; i < n; i++)
            {
                for (var j = 0; j < n; j++)
                {
                    centroid[j] += simplex[i][j] / n;
                }
            }

            double[] Along(double t) => centroid.Select((c, j) => c + (t * (simplex[n][j] - c))).ToArray();
            var reflected = Along(-1);
            var fr = f(reflected);
            evaluations++;
            if (fr < values[0])
            {
                var expanded = Along(-2);
                var fe = f(expanded);
                evaluations++;
                (simplex[n], values[n]) = fe < fr ? (expanded, fe) : (reflected, fr);
            }
            else if (fr < values[n - 1])
            {
                (simplex[n], values[n]) = (reflected, fr);
            }
            else
            {
                var contracted = fr < values[n] ? Along(-0.5) : Along(0.5);
                var fc = f(contracted);
                evaluations++;
                if (fc < Math.Min(fr, values[n]))
                {
                    (simplex[n], values[n]) = (contracted, fc);
                }
                else
                {
                    for (var i = 1; i <= n; i++)
                    {
                        simplex[i] = simplex[i].Select((x, j) => simplex[0][j] + (0.5 * (x - simplex[0][j]))).ToArray();
                        values[i] = f(simplex[i]);
                        evaluations++;
                    }
                }
            }
        }

        var best = Enumerable.Range(0, n + 1).MinBy(i => values[i]);
        return (simplex[best], values[best]);
    }
}
