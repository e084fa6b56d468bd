"""Stage ``tune`` (exercise 8.2): a Keras Tuner search, then the best network retrained.

The search trains on the digits 0-4 train split and scores each trial by its best
``val_accuracy`` on the validation split. Its files live in ``runs/tune/<fingerprint>``
of the ``tune`` parameters and seed: the same parameters resume an interrupted search, a
changed one starts a new search. Distributed search: start this same command on several
processes with Keras Tuner's environment variables (see ``stages.core.tuning``); only the
chief retrains and writes the stage's outputs, workers only run trials.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from stages.core.cli import exit_on_error
from stages.core.data import load_npz, write_json
from stages.core.params import load_params

DATA_PATH = Path("data/prepared/digits_0_4.npz")
MODEL_PATH = Path("models/tune.keras")
HYPERPARAMETERS_PATH = Path("models/tune_hyperparameters.json")
LIVE_DIR = Path("metrics/tune")
TRIALS_PATH = LIVE_DIR / "plots" / "trials.csv"
METRICS_PATH = LIVE_DIR / "metrics.json"
PROJECT_NAME = "search"
SEARCH_INDEPENDENT = ("final", "time_limit_minutes")


def write_trials(path: Path, rows: list[dict]) -> None:
    """A CSV with a header row and one row per trial (columns: the union of the rows' keys)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def run(
    params: dict,
    seed: int,
    data_path: Path = DATA_PATH,
    model_path: Path = MODEL_PATH,
    hyperparameters_path: Path = HYPERPARAMETERS_PATH,
    trials_path: Path = TRIALS_PATH,
    live_dir: Path | None = LIVE_DIR,
    search_dir: Path | None = None,
    verbose: int = 1,
) -> dict | None:
    """Search, retrain the best configuration, write the model, its configuration and the
    trials table; return the metrics. A distributed search's worker returns None after
    its trials and writes nothing."""
    import keras

    from stages.core import tuning
    from stages.core.experiment import build_model, fingerprint, run_directory, train_classifier

    split = load_npz(data_path)
    n_outputs = len(split["class_names"])
    # Retraining and the time limit do not change what a search finds: leave them out of
    # the fingerprint, so that raising the limit resumes the same search.
    searched = {key: value for key, value in params.items() if key not in SEARCH_INDEPENDENT}
    search_dir = Path(search_dir or run_directory("tune", searched, seed))
    tuner = tuning.make_tuner(
        params["tuner"],
        tuning.build_hypermodel(params["space"], params["kernel_initializer"], n_outputs, seed),
        directory=search_dir,
        project_name=PROJECT_NAME,
        seed=seed,
        max_trials=params["max_trials"],
        max_epochs=params["max_epochs"],
        hyperband_factor=params["hyperband_factor"],
        time_limit_seconds=params["time_limit_minutes"] * 60,
    )
    start = time.perf_counter()
    tuning.search(
        tuner,
        split["x_train"],
        split["y_train"],
        validation_data=(split["x_validation"], split["y_validation"]),
        validation_batch_size=1024,
        epochs=params["max_epochs"],
        callbacks=[
            keras.callbacks.EarlyStopping(tuning.OBJECTIVE, patience=params["trial_patience"])
        ],
        verbose=verbose,
    )
    search_seconds = time.perf_counter() - start
    if tuning.is_worker():
        return None

    rows = tuning.trials_table(tuner)
    chosen = tuning.configuration(tuning.best_values(tuner), params["kernel_initializer"])
    keras.utils.set_random_seed(seed)  # the same network whether the search resumed or not
    model = build_model(chosen["model"], n_outputs=n_outputs, name="tune")
    final = params["final"]
    _, metrics = train_classifier(
        model,
        chosen["optimizer"],
        split,
        epochs=final["epochs"],
        batch_size=chosen["batch_size"],
        patience=final["patience"],
        monitor=final["monitor"],
        run_dir=search_dir / f"final-{fingerprint(final, seed)}",
        live_dir=live_dir,
        seed=seed,
    )
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model.save(model_path)
    write_json(hyperparameters_path, chosen)
    write_trials(trials_path, rows)
    metrics.update(
        {
            "trials": len(rows),
            "best_trial_score": max(row["score"] for row in rows),
            "search_seconds": round(search_seconds, 3),
            "time_limit_reached": bool(getattr(tuner.oracle, "time_limit_reached", False)),
        }
    )
    return metrics


@exit_on_error
def main() -> None:
    params = load_params()
    from stages.core.experiment import seed_everything

    seed = params["base"]["seed"]
    seed_everything(seed)
    metrics = run(params["tune"], seed)
    if metrics is not None:  # a worker of a distributed search writes nothing
        write_json(METRICS_PATH, metrics)


if __name__ == "__main__":
    main()
