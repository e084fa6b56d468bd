"""Benchmark: the project's `fit` against a plain `model.fit(x, y, batch_size=32)`.

Run from the repository root: `python -m bench.fit_speed [--epochs 5] [--output out.json]`.
Both sides train the same pretrain network (5 hidden x 100, he_normal, elu, Adam 1e-3,
5 softmax outputs) from the same initial weights, with validation after every epoch,
in one process and in alternating order (plain, project, plain, project, ...). The
reported times are medians of per-epoch wall times, leaving out each round's first epoch
(tracing) when there are several epochs. The goal is a project/plain ratio <= 0.6.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if __package__ in (None, ""):  # run as a file: make `stages` importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import keras
import numpy as np

from stages.core.models import build_dense_network
from stages.core.training import EpochTimer, compile_model, fit

DEFAULT_DATA = pathlib.Path("data/prepared/digits_0_4.npz")
GOAL = 0.6


def load_data(path: pathlib.Path, synthetic_size: int, seed: int) -> tuple[dict, str]:
    """Prepared digits 0-4 if `path` exists, else random images and labels of that shape."""
    if path.exists():
        with np.load(path) as archive:
            arrays = {
                name: archive[name]
                for name in ("x_train", "y_train", "x_validation", "y_validation")
            }
        return arrays, str(path)
    rng = np.random.default_rng(seed)
    validation_size = max(1, synthetic_size // 10)
    arrays = {
        "x_train": rng.integers(0, 256, size=(synthetic_size, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 5, size=synthetic_size).astype(np.uint8),
        "x_validation": rng.integers(0, 256, size=(validation_size, 28, 28), dtype=np.uint8),
        "y_validation": rng.integers(0, 5, size=validation_size).astype(np.uint8),
    }
    return arrays, f"synthetic random ({synthetic_size} train, {validation_size} validation)"


def pretrain_network(initial_weights: list[np.ndarray] | None = None) -> keras.Model:
    model = build_dense_network(
        n_hidden=5,
        n_neurons=100,
        n_outputs=5,
        activation="elu",
        kernel_initializer="he_normal",
        name="pretrain",
    )
    if initial_weights is not None:
        model.set_weights(initial_weights)
    return model


def run_plain(model: keras.Model, arrays: dict, epochs: int, batch_size: int) -> tuple:
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    timer = EpochTimer()
    history = model.fit(
        arrays["x_train"],
        arrays["y_train"],
        batch_size=batch_size,
        epochs=epochs,
        validation_data=(arrays["x_validation"], arrays["y_validation"]),
        callbacks=[timer],
        verbose=0,
    )
    return timer.durations, float(history.history["val_accuracy"][-1])


def run_project(
    model: keras.Model, arrays: dict, epochs: int, batch_size: int, run_dir: pathlib.Path
) -> tuple:
    compile_model(model, keras.optimizers.Adam(1e-3))
    timer = EpochTimer()
    result = fit(
        model,
        (arrays["x_train"], arrays["y_train"]),
        (arrays["x_validation"], arrays["y_validation"]),
        epochs=epochs,
        batch_size=batch_size,
        patience=None,
        run_dir=run_dir,
        extra_callbacks=[timer],
    )
    return timer.durations, float(result.history["val_accuracy"][-1])


def steady_median(rounds: list[list[float]]) -> float:
    """Median epoch time, leaving out each round's first epoch when it has several."""
    durations = [value for round_ in rounds for value in (round_[1:] or round_)]
    return statistics.median(durations)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="epochs per run (default 5)")
    parser.add_argument("--rounds", type=int, default=2, help="plain/project pairs (default 2)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--data", type=pathlib.Path, default=DEFAULT_DATA)
    parser.add_argument("--synthetic-size", type=int, default=28_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output", type=pathlib.Path, help="write the results as JSON here")
    arguments = parser.parse_args(argv)
    if arguments.epochs < 1 or arguments.rounds < 1:
        parser.error(
            f"--epochs and --rounds must be >= 1, got {arguments.epochs}, {arguments.rounds}"
        )

    arrays, data_description = load_data(arguments.data, arguments.synthetic_size, arguments.seed)
    keras.utils.set_random_seed(arguments.seed)
    initial_weights = pretrain_network().get_weights()
    timings: dict[str, list[list[float]]] = {"plain": [], "project": []}
    accuracies: dict[str, list[float]] = {"plain": [], "project": []}
    with tempfile.TemporaryDirectory() as scratch:
        for round_index in range(arguments.rounds):
            for method in ("plain", "project"):
                model = pretrain_network(initial_weights)
                if method == "plain":
                    durations, accuracy = run_plain(
                        model, arrays, arguments.epochs, arguments.batch_size
                    )
                else:
                    run_dir = pathlib.Path(scratch) / f"round_{round_index}"
                    durations, accuracy = run_project(
                        model, arrays, arguments.epochs, arguments.batch_size, run_dir
                    )
                timings[method].append(durations)
                accuracies[method].append(accuracy)
                rounded = ", ".join(f"{value:.2f}" for value in durations)
                print(
                    f"round {round_index + 1} {method:7s} epochs [{rounded}] s, "
                    f"final val_accuracy {accuracy:.4f}",
                    flush=True,
                )

    plain_seconds = steady_median(timings["plain"])
    project_seconds = steady_median(timings["project"])
    results = {
        "ratio": project_seconds / plain_seconds,
        "goal": GOAL,
        "plain_seconds_per_epoch": plain_seconds,
        "project_seconds_per_epoch": project_seconds,
        "plain_val_accuracy": accuracies["plain"],
        "project_val_accuracy": accuracies["project"],
        "epoch_seconds": timings,
        "epochs": arguments.epochs,
        "rounds": arguments.rounds,
        "batch_size": arguments.batch_size,
        "train_size": len(arrays["x_train"]),
        "validation_size": len(arrays["x_validation"]),
        "data": data_description,
        "cpu_count": os.cpu_count(),
        "keras": keras.__version__,
    }
    if arguments.output is not None:
        arguments.output.parent.mkdir(parents=True, exist_ok=True)
        arguments.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(
        f"fit speed ratio project/plain = {results['ratio']:.3f} (goal <= {GOAL}): "
        f"{project_seconds:.2f} s vs {plain_seconds:.2f} s per epoch, "
        f"val_accuracy {np.mean(accuracies['project']):.4f} vs "
        f"{np.mean(accuracies['plain']):.4f}, data: {data_description}"
    )
    return results


if __name__ == "__main__":
    main()
