"""Train a scikit-learn classifier and log it through the MLflow client, unchanged, into Capstan.

Inside a TrainJob, Capstan sets MLFLOW_TRACKING_URI, MLFLOW_RUN_ID and MLFLOW_EXPERIMENT_ID, so
`mlflow.start_run()` continues the job's run. Outside one, point it at a server:

    ./capstan server &
    MLFLOW_TRACKING_URI=http://127.0.0.1:5000 python examples/train_mlflow.py --data examples/data/iris.csv

It also prints name=value lines, which the TrainJob stdout collector records as metrics too.
Needs: pip install mlflow scikit-learn pandas
"""

import argparse
import hashlib

import mlflow
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="examples/data/iris.csv")
    parser.add_argument("--label", default="species")
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    args = parser.parse_args()

    frame = pd.read_csv(args.data)
    features = frame.drop(columns=[args.label])
    labels = frame[args.label]
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=args.test_fraction, random_state=args.seed, stratify=labels
    )

    # MLFLOW_TRACKING_URI and MLFLOW_RUN_ID come from the environment; start_run() resumes the job's run.
    with mlflow.start_run():
        with open(args.data, "rb") as file:
            digest = hashlib.sha256(file.read()).hexdigest()
        dataset = mlflow.data.from_pandas(frame, source=args.data, name="iris", targets=args.label, digest=digest[:32])
        mlflow.log_input(dataset, context="training")
        mlflow.log_params(
            {"algorithm": "random_forest", "trees": args.trees, "seed": args.seed, "test_fraction": args.test_fraction}
        )

        model = RandomForestClassifier(n_estimators=args.trees, random_state=args.seed, warm_start=True)
        for step, trees in enumerate(range(10, args.trees + 1, 10), start=1):
            model.set_params(n_estimators=trees)
            model.fit(x_train, y_train)
            mlflow.log_metric("accuracy", accuracy_score(y_test, model.predict(x_test)), step=trees)

        accuracy = accuracy_score(y_test, model.predict(x_test))
        loss = log_loss(y_test, model.predict_proba(x_test), labels=model.classes_)
        mlflow.log_metrics({"test_accuracy": accuracy, "test_log_loss": loss})
        mlflow.sklearn.log_model(model, name="model", input_example=x_test.head(3))

    # Katib-style lines for the TrainJob stdout collector.
    print(f"test_accuracy={accuracy}")
    print(f"test_log_loss={loss}")


if __name__ == "__main__":
    main()
