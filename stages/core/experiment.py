"""Glue between ``params.yaml`` sections and the builders: one place, every stage."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from stages.core.models import build_dense_network
from stages.core.optimizers import build_optimizer, schedule_callbacks
from stages.core.training import FitResult, compile_model, evaluate_classifier, fit

RUNS_DIR = Path("runs")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow, and ask TensorFlow for deterministic kernels."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def fingerprint(*configuration: object) -> str:
    """Twelve hexadecimal digits that change whenever ``configuration`` changes."""
    text = json.dumps(configuration, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def run_directory(stage: str, *configuration: object) -> Path:
    """``runs/<stage>/<fingerprint>``: where an interrupted run of this exact
    configuration left its backup, so that a changed parameter never resumes a stale run."""
    return RUNS_DIR / stage / fingerprint(*configuration)


def build_model(model_params: dict, n_outputs: int, name: str | None = None) -> keras.Model:
    """A dense network from a ``model`` section of ``params.yaml``."""
    return build_dense_network(
        n_hidden=model_params["n_hidden"],
        n_neurons=model_params["n_neurons"],
        n_outputs=n_outputs,
        activation=model_params["activation"],
        kernel_initializer=model_params["kernel_initializer"],
        batch_norm=model_params.get("batch_norm", False),
        dropout_rate=model_params.get("dropout_rate", 0.0),
        l1=model_params.get("l1", 0.0),
        l2=model_params.get("l2", 0.0),
        max_norm=model_params.get("max_norm"),
        name=name,
    )


def build_optimizer_from(optimizer_params: dict) -> tuple[keras.optimizers.Optimizer, list]:
    """An optimizer and the callbacks its schedule needs, from an ``optimizer`` section."""
    options = dict(optimizer_params)
    name, learning_rate = options.pop("name"), options.pop("learning_rate")
    factor, patience = options.pop("plateau_factor", 0.5), options.pop("plateau_patience", 5)
    optimizer = build_optimizer(name, learning_rate, **options)
    callbacks = schedule_callbacks(
        options.get("schedule", "none"), factor=factor, patience=patience
    )
    return optimizer, callbacks


def train_classifier(
    model: keras.Model,
    optimizer_params: dict,
    split: dict[str, np.ndarray],
    *,
    epochs: int,
    batch_size: int,
    patience: int | None,
    run_dir: Path,
    live_dir: Path | None,
    seed: int,
    monitor: str = "val_accuracy",
) -> tuple[FitResult, dict]:
    """Compile, fit with early stopping on the split's validation part, and score.

    Early stopping watches ``monitor`` (``val_accuracy`` or ``val_loss``) and restores
    the weights of its best epoch.

    Returns the fit's result and the metrics every classification stage reports:
    ``train``/``val``/``test`` accuracy and macro precision, ``best_epoch``, ``epochs``,
    ``seconds_per_epoch`` and ``train_val_gap`` (train minus validation accuracy at the
    best epoch).
    """
    optimizer, callbacks = build_optimizer_from(optimizer_params)
    compile_model(model, optimizer)
    result = fit(
        model,
        (split["x_train"], split["y_train"]),
        (split["x_validation"], split["y_validation"]),
        epochs=epochs,
        batch_size=batch_size,
        patience=patience,
        run_dir=run_dir,
        live_dir=live_dir,
        extra_callbacks=callbacks,
        seed=seed,
        monitor=monitor,
    )
    best = result.best_epoch - 1
    metrics = {
        "test": evaluate_classifier(model, split["x_test"], split["y_test"]),
        "val": evaluate_classifier(model, split["x_validation"], split["y_validation"]),
        "best_epoch": result.best_epoch,
        "epochs": result.epochs_run,
        "seconds_per_epoch": round(result.seconds_per_epoch, 4),
        "train_val_gap": round(
            result.history["accuracy"][best] - result.history["val_accuracy"][best], 6
        ),
    }
    return result, metrics


def epochs_to_reach(values: list[float], threshold: float) -> int | None:
    """The first (1-based) epoch whose value is at least ``threshold``; None if never."""
    return next((epoch for epoch, value in enumerate(values, start=1) if value >= threshold), None)
