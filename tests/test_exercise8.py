"""Exercise 8's stages on a tiny synthetic split: pretrain, regularize and its summary."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml
from conftest import PROJECT_ROOT

from stages import pretrain, regularize, regularize_summary
from stages.core.data import save_npz
from stages.core.idx import DataError
from stages.core.params import ParamsError, validate

TINY_MODEL = {
    "n_hidden": 2,
    "n_neurons": 16,
    "activation": "elu",
    "kernel_initializer": "he_normal",
}


def learnable_split(count: int, classes: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    """Noise images with a bright class-specific row, so a tiny network can learn them."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(count) % classes).astype(np.uint8)
    images = rng.integers(0, 60, size=(count, 28, 28), dtype=np.uint8)
    images[np.arange(count), 4 * labels + 2, :] = 255
    return {"x": images, "y": labels}


@pytest.fixture
def split_path(tmp_path: Path) -> Path:
    parts = {
        name: learnable_split(count, seed=index)
        for index, (name, count) in enumerate((("train", 200), ("validation", 50), ("test", 50)))
    }
    arrays = {}
    for name, part in parts.items():
        arrays[f"x_{name}"], arrays[f"y_{name}"] = part["x"], part["y"]
    arrays["class_names"] = np.array(list("01234"))
    save_npz(tmp_path / "digits_0_4.npz", arrays)
    return tmp_path / "digits_0_4.npz"


def shipped(section: str) -> dict:
    """A section of the shipped params.yaml, validated (defaults filled in)."""
    from stages.core.params import SCHEMA

    values = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())[section]
    return validate(SCHEMA[section], values, section)


def tiny_pretrain_params() -> dict:
    params = shipped("pretrain")
    params["model"].update(TINY_MODEL)
    params["training"].update({"epochs": 3, "batch_size": 16, "patience": 2})
    return params


def test_pretrain_trains_saves_and_reports(tmp_path: Path, split_path: Path) -> None:
    params = tiny_pretrain_params()
    model_path = tmp_path / "models" / "pretrain.keras"
    metrics = pretrain.run(
        params,
        seed=1,
        data_path=split_path,
        model_path=model_path,
        live_dir=tmp_path / "live",
        run_dir=tmp_path / "run",
    )
    assert set(metrics) >= {"test", "val", "best_epoch", "epochs", "seconds_per_epoch"}
    assert 1 <= metrics["best_epoch"] <= metrics["epochs"] <= 3
    assert metrics["test"]["accuracy"] > 0.5  # the classes are easy; chance is 0.2
    assert 0 <= metrics["test"]["precision"] <= 1
    model = keras.models.load_model(model_path, safe_mode=True)
    assert model.output_shape == (None, 5)
    assert [layer.name for layer in model.layers if layer.name.startswith("hidden_")] == [
        "hidden_1",
        "hidden_2",
    ]
    rows = (tmp_path / "live" / "plots" / "metrics" / "eval" / "accuracy.tsv").read_text()
    assert len(rows.strip().splitlines()) == 1 + metrics["epochs"]
    configuration = pretrain.configuration(params)
    assert configuration["batch_size"] == 16 and configuration["model"]["n_neurons"] == 16


def regularize_params() -> dict:
    params = shipped("regularize")
    params["training"].update({"epochs": 3, "patience": 2})
    return params


def test_regularize_variant_adds_batchnorm_and_dropout(tmp_path: Path, split_path: Path) -> None:
    base = pretrain.configuration(tiny_pretrain_params())
    params = regularize_params()
    params["threshold"] = 0.3
    model_path = tmp_path / "bd.keras"
    metrics = regularize.run(
        "batchnorm_dropout",
        params,
        seed=2,
        base=base,
        data_path=split_path,
        model_path=model_path,
        live_dir=tmp_path / "live",
        run_dir=tmp_path / "run",
    )
    model = keras.models.load_model(model_path, safe_mode=True)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("BatchNormalization") == 2 and kinds.count("Dropout") == 2
    assert kinds.index("BatchNormalization") < kinds.index("Activation")
    curve = [
        float(line.split("\t")[1])
        for line in (tmp_path / "live" / "plots" / "metrics" / "eval" / "accuracy.tsv")
        .read_text()
        .strip()
        .splitlines()[1:]
    ]
    reached = next((epoch for epoch, value in enumerate(curve, 1) if value >= 0.3), None)
    assert metrics["epochs_to_val_accuracy"] == reached
    assert {"train_val_gap", "test", "seconds_per_epoch", "best_epoch"} <= set(metrics)


def test_regularize_unknown_variant_names_the_key(split_path: Path) -> None:
    base = pretrain.configuration(tiny_pretrain_params())
    with pytest.raises(ParamsError, match=r"^regularize\.variants has no variant 'batchnrom'"):
        regularize.run("batchnrom", regularize_params(), seed=0, base=base, data_path=split_path)


def test_regularize_needs_its_base_configuration(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match=r"tune_hyperparameters\.json not found: run the tune"):
        regularize.base_configuration({"base": "tune"}, models_dir=tmp_path)


def variant_metrics(accuracy: float, reached: int | None, seconds: float, gap: float) -> dict:
    return {
        "test": {"accuracy": accuracy, "precision": accuracy},
        "epochs_to_val_accuracy": reached,
        "seconds_to_val_accuracy": None if reached is None else reached * seconds,
        "train_val_gap": gap,
        "best_epoch": 5,
        "seconds_per_epoch": seconds,
    }


def test_summary_answers_each_question() -> None:
    summary = regularize_summary.summarize(
        {
            "plain": variant_metrics(0.990, 6, 1.0, 0.008),
            "batchnorm": variant_metrics(0.994, 3, 2.5, 0.004),
            "dropout": variant_metrics(0.992, None, 1.1, -0.002),
        }
    )
    assert summary["converged_first_in_epochs"] == {
        "variant": "batchnorm",
        "epochs_to_val_accuracy": 3,
    }
    assert summary["converged_first_in_seconds"] == {
        "variant": "plain",
        "seconds_to_val_accuracy": 6.0,
    }
    assert summary["overfits_least"] == {"variant": "dropout", "train_val_gap": -0.002}
    assert summary["tests_best"] == {"variant": "batchnorm", "test_accuracy": 0.994}


def test_summary_reads_every_declared_variant(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "metrics.json").write_text(json.dumps(variant_metrics(0.9, 2, 1, 0.01)))
    with pytest.raises(DataError, match=r"batchnorm/metrics\.json not found; run: dvc repro"):
        regularize_summary.run({"variants": {"plain": {}, "batchnorm": {}}}, metrics_dir=tmp_path)


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("pretrain", "model.activation", "relux", "pretrain.model.activation must be one of elu"),
        (
            "pretrain",
            "optimizer.learning_rate",
            -0.1,
            "pretrain.optimizer.learning_rate must be a positive number, got -0.1",
        ),
        (
            "regularize",
            "variants.dropout.dropout_rate",
            1.0,
            "regularize.variants.dropout.dropout_rate must be a number in [0, 1), got 1.0",
        ),
        ("pretrain", "optimizer.name", "adamw", "pretrain.optimizer.name must be one of adagrad"),
        ("pretrain", "optimizer.schedule", "cosine", "pretrain.optimizer.schedule must be one of"),
        ("regularize", "base", "scratch", "regularize.base must be one of tune, pretrain"),
        (
            "tune",
            "space.learning_rate",
            {"min": 0.1, "max": 0.01},
            "tune.space.learning_rate.min must not exceed tune.space.learning_rate.max",
        ),
    ],
)
def test_invalid_training_choices_are_rejected(section, key, value, message) -> None:
    from stages.core.params import SCHEMA

    values = copy.deepcopy(yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())[section])
    *parents, last = key.split(".")
    target = values
    for parent in parents:
        target = target[parent]
    target[last] = value
    with pytest.raises(ParamsError) as error:
        validate(SCHEMA[section], values, section)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)
