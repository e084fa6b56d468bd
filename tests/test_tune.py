"""Stage ``tune`` (exercise 8.2) on a tiny synthetic split: tuners, time limit, resumption,
failures and, marked slow, a distributed search with a chief and a worker process."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml
from conftest import PROJECT_ROOT

from stages import tune
from stages.core import tuning
from stages.core.data import save_npz
from stages.core.params import MODEL, OPTIMIZER, SCHEMA, validate

TINY_SPACE = {
    "n_hidden": {"min": 1, "max": 2},
    "n_neurons": {"min": 8, "max": 16, "step": 8},
    "activation": ["elu", "relu"],
    "learning_rate": {"min": 0.003, "max": 0.01},
    "batch_size": [16, 32],
    "optimizer": ["adam", "nadam"],
    "beta_1": {"min": 0.85, "max": 0.95},
    "beta_2": [0.99, 0.999],
}


def tiny_params(**changes) -> dict:
    """The shipped ``tune`` section, validated, shrunk to a search of seconds."""
    values = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text(encoding="utf-8"))["tune"]
    params = validate(SCHEMA["tune"], values, "tune")
    params.update(max_trials=2, max_epochs=2, trial_patience=1, time_limit_minutes=10)
    params["space"] = {name: TINY_SPACE[name] for name in params["space"]}
    params["final"] = {"epochs": 2, "patience": 1}
    params.update(changes)
    return validate(SCHEMA["tune"], params, "tune")


def write_split(path: Path) -> Path:
    """Random 28x28 images of 5 classes, each class with its own bright row (learnable)."""
    arrays = {}
    for seed, (name, count) in enumerate((("train", 200), ("validation", 50), ("test", 50))):
        rng = np.random.default_rng(seed)
        labels = (np.arange(count) % 5).astype(np.uint8)
        images = rng.integers(0, 60, size=(count, 28, 28), dtype=np.uint8)
        images[np.arange(count), 4 * labels + 2, :] = 255
        arrays[f"x_{name}"], arrays[f"y_{name}"] = images, labels
    arrays["class_names"] = np.array(list("01234"))
    save_npz(path, arrays)
    return path


@pytest.fixture
def split_path(tmp_path: Path) -> Path:
    return write_split(tmp_path / "digits_0_4.npz")


def run_stage(params: dict, tmp_path: Path, split_path: Path, search_dir: Path | None = None):
    return tune.run(
        params,
        seed=3,
        data_path=split_path,
        model_path=tmp_path / "models" / "tune.keras",
        hyperparameters_path=tmp_path / "models" / "tune_hyperparameters.json",
        trials_path=tmp_path / "metrics" / "plots" / "trials.csv",
        live_dir=tmp_path / "metrics",
        search_dir=search_dir or tmp_path / "search",
        verbose=0,
    )


def read_trials_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def trial_files(search_dir: Path) -> dict[str, dict]:
    """The trials Keras Tuner recorded on disk, by directory name."""
    return {
        path.parent.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((search_dir / tune.PROJECT_NAME).glob("trial_*/trial.json"))
    }


def has_bayesian_dependencies() -> bool:
    try:
        import scipy.optimize  # noqa: F401
        import sklearn.gaussian_process  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("kind", ["random", "hyperband", "bayesian"])
def test_run_searches_retrains_and_writes_outputs(
    kind: str, tmp_path: Path, split_path: Path
) -> None:
    params = tiny_params(tuner=kind)
    if kind == "bayesian" and not has_bayesian_dependencies():
        with pytest.raises(ValueError, match="scikit-learn"):
            run_stage(params, tmp_path, split_path)
        return
    metrics = run_stage(params, tmp_path, split_path)

    completed = [
        name
        for name, trial in trial_files(tmp_path / "search").items()
        if trial["status"] == "COMPLETED"
    ]
    assert metrics["trials"] == len(completed) == 2  # max_trials 2; Hyperband(2, 3): 2
    assert set(metrics) >= {
        "val",
        "test",
        "trials",
        "best_trial_score",
        "search_seconds",
        "best_epoch",
        "epochs",
        "seconds_per_epoch",
    }
    assert set(metrics["test"]) == set(metrics["val"]) == {"accuracy", "precision"}
    assert metrics["test"]["accuracy"] > 0.5  # easy classes; chance is 0.2
    assert 1 <= metrics["best_epoch"] <= metrics["epochs"] <= 2
    assert metrics["time_limit_reached"] is False

    rows = read_trials_csv(tmp_path / "metrics" / "plots" / "trials.csv")
    assert len(rows) == metrics["trials"]
    assert {"trial", "score", "status", *tuning.HYPERPARAMETERS} <= set(rows[0])
    assert [row["status"] for row in rows] == ["COMPLETED"] * len(rows)
    assert metrics["best_trial_score"] == max(float(row["score"]) for row in rows)
    assert all(0 <= float(row["score"]) <= 1 for row in rows)

    chosen = json.loads((tmp_path / "models" / "tune_hyperparameters.json").read_text())
    assert set(chosen) == {"model", "optimizer", "batch_size"}
    assert validate(MODEL, chosen["model"], "model") == chosen["model"]  # every key, no other
    assert validate(OPTIMIZER, chosen["optimizer"], "optimizer") == chosen["optimizer"]
    assert set(chosen["model"]) == set(MODEL) and set(chosen["optimizer"]) == set(OPTIMIZER)
    assert chosen["batch_size"] in TINY_SPACE["batch_size"]
    assert chosen["optimizer"]["name"] in TINY_SPACE["optimizer"]
    best = max(rows, key=lambda row: float(row["score"]))
    assert chosen["model"]["n_neurons"] == int(best["n_neurons"])
    assert chosen["optimizer"]["learning_rate"] == pytest.approx(float(best["learning_rate"]))

    model = keras.models.load_model(tmp_path / "models" / "tune.keras", safe_mode=True)
    assert model.output_shape == (None, 5)
    hidden = [layer for layer in model.layers if layer.name.startswith("hidden_")]
    assert len(hidden) == chosen["model"]["n_hidden"]
    assert {layer.units for layer in hidden} == {chosen["model"]["n_neurons"]}
    curve = tmp_path / "metrics" / "plots" / "metrics" / "eval" / "accuracy.tsv"
    assert len(curve.read_text().strip().splitlines()) == 1 + metrics["epochs"]


def test_time_limit_stops_the_search_and_a_rerun_resumes_it(
    tmp_path: Path, split_path: Path
) -> None:
    search_dir = tmp_path / "search"
    # The clock starts with the first trial: with a limit of microseconds, only it runs.
    limited = run_stage(
        tiny_params(tuner="random", max_trials=3, time_limit_minutes=1e-6),
        tmp_path,
        split_path,
        search_dir,
    )
    assert limited["trials"] == 1
    assert limited["time_limit_reached"] is True
    (first,) = (search_dir / tune.PROJECT_NAME).glob("trial_*/trial.json")
    stamp, recorded = first.stat().st_mtime_ns, first.read_text()

    resumed = run_stage(tiny_params(tuner="random", max_trials=3), tmp_path, split_path, search_dir)
    assert resumed["trials"] == 3
    assert resumed["time_limit_reached"] is False
    assert first.stat().st_mtime_ns == stamp and first.read_text() == recorded  # not rerun
    assert len(read_trials_csv(tmp_path / "metrics" / "plots" / "trials.csv")) == 3

    trials_before = trial_files(search_dir)
    again = run_stage(tiny_params(tuner="random", max_trials=3), tmp_path, split_path, search_dir)
    assert again["trials"] == 3
    assert trial_files(search_dir) == trials_before  # a finished search runs no trial
    assert again["search_seconds"] < 2
    assert again["best_trial_score"] == resumed["best_trial_score"]


def test_no_completed_trial_is_a_one_line_error(
    tmp_path: Path, split_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self, hp, model, *args, **kwargs):
        raise RuntimeError("broken backend")

    monkeypatch.setattr(tuning.SpaceHyperModel, "fit", broken)
    with pytest.raises(ValueError, match="no Keras Tuner trial completed") as raised:
        run_stage(tiny_params(tuner="random"), tmp_path, split_path)
    assert "broken backend" in str(raised.value)
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "models" / "tune.keras").exists()
    assert not (tmp_path / "metrics" / "plots" / "trials.csv").exists()


def test_unknown_tuner_kind_is_refused() -> None:
    hypermodel = tuning.build_hypermodel(TINY_SPACE, "he_normal", n_outputs=5)
    with pytest.raises(ValueError, match="tuner kind"):
        tuning.make_tuner(
            "grid",
            hypermodel,
            directory="unused",
            project_name="unused",
            seed=0,
            max_trials=1,
            max_epochs=1,
            hyperband_factor=3,
            time_limit_seconds=1,
        )


def test_roles_follow_keras_tuner_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert not tuning.is_distributed() and not tuning.is_worker()
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    assert tuning.is_distributed() and not tuning.is_worker()
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
    assert tuning.is_distributed() and tuning.is_worker()


DRIVER = """
import json, sys
from pathlib import Path
from stages import tune
params, out = json.loads(sys.argv[1]), Path(sys.argv[2])
metrics = tune.run(params, seed=3, data_path=Path(sys.argv[3]),
                   model_path=out / "tune.keras", hyperparameters_path=out / "hp.json",
                   trials_path=out / "trials.csv", live_dir=out / "live",
                   search_dir=Path(sys.argv[4]), verbose=0)
print("RESULT", json.dumps(metrics))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_distributed_search_chief_and_worker(tmp_path: Path, split_path: Path) -> None:
    params = tiny_params(tuner="random", max_trials=3)
    search_dir = tmp_path / "search"
    port = str(free_port())
    processes = {}
    for role in ("chief", "tuner0"):
        env = {
            **os.environ,
            "KERASTUNER_TUNER_ID": role,
            "KERASTUNER_ORACLE_IP": "127.0.0.1",
            "KERASTUNER_ORACLE_PORT": port,
            "PYTHONPATH": str(PROJECT_ROOT),
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        arguments = [json.dumps(params), str(tmp_path / role), str(split_path), str(search_dir)]
        processes[role] = subprocess.Popen(
            [sys.executable, "-c", DRIVER, *arguments],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    outputs = {}
    try:
        for role, process in processes.items():
            outputs[role], _ = process.communicate(timeout=180)
    finally:
        for process in processes.values():
            process.kill()
    for role, process in processes.items():
        assert process.returncode == 0, f"{role} failed:\n{outputs[role][-3000:]}"

    def result(role: str):
        lines = [line for line in outputs[role].splitlines() if line.startswith("RESULT ")]
        assert lines, outputs[role][-3000:]
        return json.loads(lines[-1].removeprefix("RESULT "))

    assert result("tuner0") is None  # the worker only runs trials ...
    assert not (tmp_path / "tuner0").exists()  # ... and writes none of the outputs
    chief = result("chief")
    # The chief only serves its oracle, so every trial it recorded ran on the worker.
    assert chief["trials"] == 3
    recorded = trial_files(search_dir)
    assert [trial["status"] for trial in recorded.values()] == ["COMPLETED"] * 3
    assert (search_dir / tune.PROJECT_NAME / "tuner0.json").exists()
    assert len(read_trials_csv(tmp_path / "chief" / "trials.csv")) == 3
    assert keras.models.load_model(tmp_path / "chief" / "tune.keras").output_shape == (None, 5)
