namespace Capstan.Tuning;

/// <summary>
/// CMA-ES (Hansen's (μ/μ_w, λ) strategy with cumulative step-size adaptation, rank-one and rank-μ updates) in the
/// unit cube of the space, starting from its centre with step size <c>sigma</c> (default 1/6 of each range, Optuna's
/// choice). Stateless: trials are taken in blocks of λ by number, each block one generation, and the strategy's state
/// is replayed from the finished generations on every call. A failed trial ranks last in its generation. Points
/// outside the cube are drawn again (up to ten times), then clipped. With <c>restart_strategy: ipop</c> the strategy
/// restarts with twice the population when its step size collapses.
/// </summary>
internal sealed class CmaEsSearch(AlgorithmContext context, double sigma0, int population, bool ipop) : Sampler(context)
{
    public static CmaEsSearch? Create(AlgorithmContext context, SettingsReader reader)
    {
        var n = context.Space.Count;
        var sigma = reader.Double("sigma", 1.0 / 6, s => s > 0 && s <= 1, "in (0, 1] (a fraction of each parameter's range)");
        var population = reader.Int("population_size", 4 + (int)Math.Floor(3 * Math.Log(n)), min: 2);
        var restart = reader.Choice("restart_strategy", "none", "none", "ipop");
        return new CmaEsSearch(context, sigma, population, restart == "ipop");
    }

    protected override Suggestion? SuggestNext(IReadOnlyList<Trial> history)
    {
        var index = history.Count;
        var state = Replay(history, index);
        var rng = Rng.For(Seed, 5, index);
        var x = state.Sample(rng);
        return new Suggestion(FromUnit(x));
    }

    /// <summary>The strategy as it stands for trial <paramref name="index"/>: every finished generation before it applied.</summary>
    private Strategy Replay(IReadOnlyList<Trial> history, int index)
    {
        var n = Dimensions.Count;
        var lambda = population;
        var state = new Strategy(n, lambda, sigma0, Center(n, null));
        var start = 0;
        var restarts = 0;
        while (start + state.Lambda <= index && start + state.Lambda <= history.Count)
        {
            var block = history.Skip(start).Take(state.Lambda).ToList();
            if (block.Any(t => t.State == TrialState.Running))
            {
                break;
            }

            var scored = block.Select(t => (Unit: ToUnit(t.Parameters), Loss: t.State == TrialState.Completed && t.Value is { } v && double.IsFinite(v) ? Loss(t) : double.PositiveInfinity)).ToList();
            start += state.Lambda;
            if (scored.Count(s => double.IsFinite(s.Loss)) >= 2)
            {
                state.Update(scored.OrderBy(s => s.Loss).Select(s => s.Unit).ToArray());
            }

            if (ipop && state.Converged)
            {
                restarts++;
                lambda *= 2;
                state = new Strategy(n, lambda, sigma0, Center(n, Rng.For(Seed, 6, restarts)));
            }
        }

        return state;
    }

    private static double[] Center(int n, Rng? rng)
    {
        var m = new double[n];
        for (var i = 0; i < n; i++)
        {
            m[i] = rng is null ? 0.5 : rng.Uniform(0.2, 0.8);
        }

        return m;
    }

    /// <summary>The evolution strategy's state: mean, step size, covariance and its eigendecomposition, evolution paths.</summary>
    internal sealed class Strategy
    {
        private readonly int _n;
        private readonly int _mu;
        private readonly double[] _weights;
        private readonly double _muEff;
        private readonly double _cSigma;
        private readonly double _dSigma;
        private readonly double _cc;
        private readonly double _c1;
        private readonly double _cMu;
        private readonly double _chiN;
        private readonly double[] _mean;
        private readonly double[,] _c;
        private readonly double[] _pSigma;
        private readonly double[] _pc;
        private double[,] _b;
        private double[] _d;
        private double _sigma;
        private int _generation;

        public Strategy(int n, int lambda, double sigma, double[] mean)
        {
            _n = n;
            Lambda = lambda;
            _mu = lambda / 2;
            _weights = Enumerable.Range(1, _mu).Select(i => Math.Log(_mu + 0.5) - Math.Log(i)).ToArray();
            var sum = _weights.Sum();
            for (var i = 0; i < _mu; i++)
            {
                _weights[i] /= sum;
            }

            _muEff = 1 / _weights.Sum(w => w * w);
            _cSigma = (_muEff + 2) / (n + _muEff + 5);
            _dSigma = 1 + (2 * Math.Max(0, Math.Sqrt((_muEff - 1) / (n + 1)) - 1)) + _cSigma;
            _cc = (4 + (_muEff / n)) / (n + 4 + (2 * _muEff / n));
            _c1 = 2 / (Math.Pow(n + 1.3, 2) + _muEff);
            _cMu = Math.Min(1 - _c1, 2 * (_muEff - 2 + (1 / _muEff)) / (Math.Pow(n + 2, 2) + _muEff));
            _chiN = Math.Sqrt(n) * (1 - (1.0 / (4 * n)) + (1.0 / (21.0 * n * n)));
            _mean = (double[])mean.Clone();
            _sigma = sigma;
            _c = new double[n, n];
            _b = new double[n, n];
            _d = new double[n];
            for (var i = 0; i < n; i++)
            {
                _c[i, i] = 1;
                _b[i, i] = 1;
                _d[i] = 1;
            }

            _pSigma = new double[n];
            _pc = new double[n];
        }

        public int Lambda { get; }

        public IReadOnlyList<double> Mean => _mean;

        public double Sigma => _sigma;

        /// <summary>True when the step size has collapsed below any useful resolution of the unit cube.</summary>
        public bool Converged => _sigma * _d.Max() < 1e-7;

        public double[] Sample(Rng rng)
        {
            var x = new double[_n];
            for (var attempt = 0; attempt < 10; attempt++)
            {
                var z = new double[_n];
                for (var i = 0; i < _n; i++)
                {
                    z[i] = rng.Normal() * _d[i];
                }

                var inside = true;
                for (var i = 0; i < _n; i++)
                {
                    var y = 0.0;
                    for (var j = 0; j < _n; j++)
                    {
                        y += _b[i, j] * z[j];
                    }

                    x[i] = _mean[i] + (_sigma * y);
                    inside &= x[i] is >= 0 and <= 1;
                }

                if (inside)
                {
                    return x;
                }
            }

            for (var i = 0; i < _n; i++)
            {
                x[i] = Math.Clamp(x[i], 0, 1);
            }

            return x;
        }

        /// <summary>One generation's update from its points, best first.</summary>
        public void Update(double[][] sortedPoints)
        {
            var n = _n;
            var mu = Math.Min(_mu, sortedPoints.Length);
            var ys = new double[mu][];
            var yw = new double[n];
            var wsum = _weights.Take(mu).Sum();
            for (var k = 0; k < mu; k++)
            {
                ys[k] = new double[n];
                for (var i = 0; i < n; i++)
                {
                    ys[k][i] = (sortedPoints[k][i] - _mean[i]) / _sigma;
                    yw[i] += _weights[k] / wsum * ys[k][i];
                }
            }

            for (var i = 0; i < n; i++)
            {
                _mean[i] += _sigma * yw[i];
            }

            // C^{-1/2} y_w = B D^{-1} B^T y_w
            var bty = new double[n];
            for (var j = 0; j < n; j++)
            {
                for (var i = 0; i < n; i++)
                {
                    bty[j] += _b[i, j] * yw[i];
                }

                bty[j] /= _d[j];
            }

            var normPs = 0.0;
            var cs = Math.Sqrt(_cSigma * (2 - _cSigma) * _muEff);
            for (var i = 0; i < n; i++)
            {
                var invSqrt = 0.0;
                for (var j = 0; j < n; j++)
                {
                    invSqrt += _b[i, j] * bty[j];
                }

                _pSigma[i] = ((1 - _cSigma) * _pSigma[i]) + (cs * invSqrt);
                normPs += _pSigma[i] * _pSigma[i];
            }

            normPs = Math.Sqrt(normPs);
            _generation++;
            var hSigma = normPs / Math.Sqrt(1 - Math.Pow(1 - _cSigma, 2 * _generation)) < (1.4 + (2.0 / (n + 1))) * _chiN ? 1.0 : 0.0;
            var ccFactor = Math.Sqrt(_cc * (2 - _cc) * _muEff);
            for (var i = 0; i < n; i++)
            {
                _pc[i] = ((1 - _cc) * _pc[i]) + (hSigma * ccFactor * yw[i]);
            }

            var deltaH = (1 - hSigma) * _cc * (2 - _cc);
            for (var i = 0; i < n; i++)
            {
                for (var j = 0; j < n; j++)
                {
                    var rankMu = 0.0;
                    for (var k = 0; k < mu; k++)
                    {
                        rankMu += _weights[k] / wsum * ys[k][i] * ys[k][j];
                    }

                    _c[i, j] = ((1 - _c1 - _cMu) * _c[i, j]) + (_c1 * ((_pc[i] * _pc[j]) + (deltaH * _c[i, j]))) + (_cMu * rankMu);
                }
            }

            _sigma *= Math.Exp(_cSigma / _dSigma * ((normPs / _chiN) - 1));
            _sigma = Math.Min(_sigma, 1.0);
            (_d, _b) = Eigen(_c);
            for (var i = 0; i < n; i++)
            {
                _d[i] = Math.Sqrt(Math.Max(_d[i], 1e-20));
            }
        }

        /// <summary>Eigenvalues and eigenvectors (columns) of a symmetric matrix, by cyclic Jacobi rotations.</summary>
        internal static (double[] Values, double[,] Vectors) Eigen(double[,] matrix)
        {
            var n = matrix.GetLength(0);
            var a = (double[,])matrix.Clone();
            var v = new double[n, n];
            for (var i = 0; i < n; i++)
            {
                v[i, i] = 1;
            }

            for (var sweep = 0; sweep < 100; sweep++)
            {
                var off = 0.0;
                for (var p = 0; p < n; p++)
                {
                    for (var q = p + 1; q < n; q++)
                    {
                        off += a[p, q] * a[p, q];
                    }
                }

                if (off < 1e-30)
                {
                    break;
                }

                for (var p = 0; p < n; p++)
                {
                    for (var q = p + 1; q < n; q++)
                    {
                        if (Math.Abs(a[p, q]) < 1e-300)
                        {
                            continue;
                        }

                        var theta = (a[q, q] - a[p, p]) / (2 * a[p, q]);
                        var t = Math.Sign(theta) / (Math.Abs(theta) + Math.Sqrt((theta * theta) + 1));
                        if (theta == 0)
                        {
                            t = 1;
                        }

                        var c = 1 / Math.Sqrt((t * t) + 1);
                        var s = t * c;
                        for (var k = 0; k < n; k++)
                        {
                            var akp = a[k, p];
                            var akq = a[k, q];
                            a[k, p] = (c * akp) - (s * akq);
                            a[k, q] = (s * akp) + (c * akq);
                        }

                        for (var k = 0; k < n; k++)
                        {
                            var apk = a[p, k];
                            var aqk = a[q, k];
                            a[p, k] = (c * apk) - (s * aqk);
                            a[q, k] = (s * apk) + (c * aqk);
                        }

                        for (var k = 0; k < n; k++)
                        {
                            var vkp = v[k, p];
                            var vkq = v[k, q];
                            v[k, p] = (c * vkp) - (s * vkq);
                            v[k, q] = (s * vkp) + (c * vkq);
                        }
                    }
                }
            }

            var values = new double[n];
            for (var i = 0; i < n; i++)
            {
                values[i] = a[i, i];
            }

            return (values, v);
        }
    }
}
