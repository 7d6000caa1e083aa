"""Optuna's TPE on the tuning benchmark's functions, for `dotnet run --project bench/Capstan.Bench -- tuning`.

Prints one JSON object: {function: [[best after 50 trials, best after 100 trials] per seed]} plus seconds.
The functions mirror bench/Capstan.Bench/TuningFunctions.cs term for term; keep the two in step.
Run with Debian's interpreter (/usr/bin/python3), which sees python3-optuna.
"""
import json
import math
import sys
import time

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)

HARTMANN_A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
HARTMANN_P = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
              [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]
HARTMANN_ALPHA = [1.0, 1.2, 3.0, 3.2]
BOOSTER = {"gbtree": 0.0, "dart": 0.01, "gblinear": 0.06}


def branin(t):
    x1 = t.suggest_float("x1", -5, 10)
    x2 = t.suggest_float("x2", 0, 15)
    b = 5.1 / (4 * math.pi ** 2)
    c = 5 / math.pi
    return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10


def hartmann6(t):
    x = [t.suggest_float(f"x{i}", 0, 1) for i in range(6)]
    total = 0.0
    for i in range(4):
        inner = sum(HARTMANN_A[i][j] * (x[j] - HARTMANN_P[i][j] * 1e-4) ** 2 for j in range(6))
        total += HARTMANN_ALPHA[i] * math.exp(-inner)
    return -total


def rosenbrock10(t):
    x = [t.suggest_float(f"x{i}", -5, 10) for i in range(10)]
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(9))


def surrogate(t):
    lr = t.suggest_float("learning_rate", 1e-4, 1.0, log=True)
    depth = t.suggest_int("max_depth", 1, 12)
    trees = t.suggest_int("n_estimators", 10, 1000, log=True)
    subsample = t.suggest_float("subsample", 0.5, 1.0)
    booster = t.suggest_categorical("booster", ["gbtree", "dart", "gblinear"])
    # Validation error of a boosted-tree model, closed form: learning rate and tree count trade off (their product
    # sets the fit), depth has an optimum that rises with the data, subsample regularises, the booster offsets it.
    fit = math.log10(lr) + math.log10(trees)
    error = 0.08 + 0.02 * (fit - 1.2) ** 2 + 0.015 * (math.log10(lr) + 1.5) ** 2
    error += 0.004 * (depth - 7) ** 2 / (1 + 0.3 * abs(fit - 1.2))
    error += 0.05 * (subsample - 0.8) ** 2 + BOOSTER[booster]
    return error


FUNCTIONS = {"branin": branin, "hartmann6": hartmann6, "rosenbrock10": rosenbrock10, "surrogate": surrogate}


def main():
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    trials = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    names = sys.argv[3].split(",") if len(sys.argv) > 3 else list(FUNCTIONS)
    started = time.time()
    result = {}
    for name in names:
        rows = []
        for seed in range(seeds):
            study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
            study.optimize(FUNCTIONS[name], n_trials=trials)
            values = [tr.value for tr in study.trials]
            rows.append([min(values[:50]), min(values[:trials])])
        result[name] = rows
    print(json.dumps({"optuna": optuna.__version__, "seconds": time.time() - started, "results": result}))


if __name__ == "__main__":
    main()
