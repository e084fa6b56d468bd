"""The fit helper shared by every training stage: fast input, checkpoints, resumption, DVCLive.

Files under `run_dir` (created if missing):
    checkpoint.keras   full model (with optimizer) saved at the end of every epoch
    backup/            `BackupAndRestore` state plus this module's `run_state.json` and
                       `best_weights.npz`; present only while a run is unfinished,
                       deleted by `BackupAndRestore` when `fit` ends normally.
Files under `live_dir` (when given): `plots/metrics/{train,eval}/<metric>.tsv`, one row
per epoch, step = 0-based epoch. DVCLive's own `metrics.json` summary is deleted when the
fit ends (it holds last-epoch values, not the restored best ones), and no `dvc.yaml`,
report or DVC experiment is written; the caller writes its own metrics file.
"""

from __future__ import annotations

import csv
import json
import math
import os
import pathlib
import shutil
import statistics
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

DEFAULT_STEPS_PER_EXECUTION = 32
BACKUP_DIRECTORY = "backup"
CHECKPOINT_FILE = "checkpoint.keras"
_STATE_FILE = "run_state.json"
_BEST_WEIGHTS_FILE = "best_weights.npz"
_MAXIMISED_METRIC_WORDS = ("acc", "precision", "recall", "auc")


@dataclass(frozen=True)
class FitResult:
    """Outcome of `fit`; `history` covers every epoch of the run, including resumed ones."""

    history: dict[str, list[float]]
    best_epoch: int  # 1-based epoch with the best monitored value
    epochs_run: int  # epochs completed in total, before and after any resume
    seconds_per_epoch: float  # median wall time of the epochs run by this call (0.0: none)
    resumed_from_epoch: int  # epochs already completed when this call started (0: fresh)
    stopped_early: bool


def compile_model(
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer | str,
    *,
    loss: str | keras.losses.Loss = "sparse_categorical_crossentropy",
    metrics: Sequence[str | keras.metrics.Metric] = ("accuracy",),
    steps_per_execution: int = DEFAULT_STEPS_PER_EXECUTION,
    jit_compile: bool | str = "auto",
) -> keras.Model:
    """Compile `model` in place (keyword arguments only) and return it.

    `steps_per_execution` batches run per compiled call, which removes most of the
    per-batch Python overhead of small models; the updates are the same as with 1.
    Batch-level callbacks then fire only every `steps_per_execution` batches.
    """
    if isinstance(steps_per_execution, bool) or not isinstance(steps_per_execution, int):
        raise ValueError(f"steps_per_execution must be an int >= 1, got {steps_per_execution!r}")
    if steps_per_execution < 1:
        raise ValueError(f"steps_per_execution must be an int >= 1, got {steps_per_execution!r}")
    model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=list(metrics),
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
    )
    return model


def monitor_mode(monitor: str) -> str:
    """'max' for accuracy-like metric names (acc, precision, recall, auc), else 'min'."""
    return "max" if any(word in monitor for word in _MAXIMISED_METRIC_WORDS) else "min"


class _ShuffledBatches(keras.callbacks.Callback):
    """Reshuffles a permutation variable at each epoch start, from (seed, epoch) only.

    The training dataset slices this permutation, so epoch `k` always sees the same
    batches, whether or not the run was resumed before it.
    """

    def __init__(self, size: int, seed: int) -> None:
        super().__init__()
        self.size = size
        self.seed = seed
        self.order = tf.Variable(tf.range(size, dtype=tf.int64), trainable=False)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.order.assign(
            tf.random.experimental.stateless_shuffle(
                tf.range(self.size, dtype=tf.int64), seed=[self.seed, epoch]
            )
        )


def _training_dataset(
    images: np.ndarray, labels: np.ndarray, batch_size: int, shuffler: _ShuffledBatches
) -> tf.data.Dataset:
    """Batches gathered by index from in-memory tensors: no per-example pipeline work."""
    size = len(images)
    image_tensor = tf.constant(images)
    label_tensor = tf.constant(labels)
    order = shuffler.order

    def gather(step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        start = step * batch_size
        indices = order[start : tf.minimum(start + batch_size, size)]
        return tf.gather(image_tensor, indices), tf.gather(label_tensor, indices)

    steps = math.ceil(size / batch_size)
    return (
        tf.data.Dataset.range(steps)
        .map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def _validation_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int) -> tf.data.Dataset:
    return (
        tf.data.Dataset.from_tensor_slices((images, labels))
        .batch(batch_size)
        .cache()
        .prefetch(tf.data.AUTOTUNE)
    )


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of each epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.durations: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.durations.append(time.perf_counter() - self._start)


class _ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping whose counters and best weights can be carried over a resume."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pending_state: dict | None = None
        self.pending_weights: list[np.ndarray] | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        if self.pending_state is not None:
            self.best = self.pending_state["best"]
            self.best_epoch = self.pending_state["best_epoch"]
            self.wait = self.pending_state["wait"]
            self.best_weights = self.pending_weights

    def state(self) -> dict:
        best = None if self.best is None else float(self.best)
        return {"best": best, "best_epoch": int(self.best_epoch), "wait": int(self.wait)}


class _RunBackup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore that also saves the history and early-stopping state.

    Runs last among the callbacks, so the weights it saves include the effects of every
    other callback for that epoch (e.g. a learning rate reduced on plateau).
    """

    def __init__(
        self,
        backup_dir: pathlib.Path,
        history: dict[str, list[float]],
        early_stopping: _ResumableEarlyStopping | None,
    ) -> None:
        super().__init__(backup_dir=str(backup_dir))
        self.directory = backup_dir
        self.history = history
        self.early_stopping = early_stopping

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(float(value))
        self.directory.mkdir(parents=True, exist_ok=True)
        state = {"epoch": epoch + 1, "history": self.history, "early_stopping": None}
        if self.early_stopping is not None:
            state["early_stopping"] = self.early_stopping.state()
            if self.early_stopping.best_weights is not None:
                _write_atomically(
                    self.directory / _BEST_WEIGHTS_FILE,
                    lambda path: np.savez(path, *self.early_stopping.best_weights),
                )
        _write_atomically(
            self.directory / _STATE_FILE,
            lambda path: path.write_text(json.dumps(state), encoding="utf-8"),
        )
        super().on_epoch_end(epoch, logs)


def _write_atomically(path: pathlib.Path, write) -> None:
    temporary = path.with_name(path.stem + ".tmp" + path.suffix)
    write(temporary)
    os.replace(temporary, path)


def completed_epochs(run_dir: pathlib.Path) -> int:
    """Epochs already completed by an unfinished run in `run_dir` (0 if none)."""
    metadata = pathlib.Path(run_dir) / BACKUP_DIRECTORY / "training_metadata.json"
    if not metadata.exists():
        return 0
    return int(json.loads(metadata.read_text(encoding="utf-8"))["epoch"])


def _load_state(backup_dir: pathlib.Path, epochs_done: int) -> tuple[dict, list | None]:
    """History and early-stopping state saved for `epochs_done`; empty if unusable."""
    empty = {"history": {}, "early_stopping": None}
    state_path = backup_dir / _STATE_FILE
    if epochs_done == 0 or not state_path.exists():
        if epochs_done:
            warnings.warn(f"{state_path} missing: history restarts at the resume", stacklevel=3)
        return empty, None
    state = json.loads(state_path.read_text(encoding="utf-8"))
    if state["epoch"] != epochs_done:
        # Killed between writing our state and the Keras backup: keep the valid prefix.
        warnings.warn(
            f"{state_path} is for epoch {state['epoch']}, backup for {epochs_done}: "
            "early stopping restarts its patience count",
            stacklevel=3,
        )
        history = {name: values[:epochs_done] for name, values in state["history"].items()}
        return {"history": history, "early_stopping": None}, None
    weights_path = backup_dir / _BEST_WEIGHTS_FILE
    weights = None
    if state["early_stopping"] is not None and weights_path.exists():
        with np.load(weights_path) as archive:
            weights = [archive[f"arr_{index}"] for index in range(len(archive.files))]
    return state, weights


def _truncate_metric_files(metrics_dir: pathlib.Path, steps: int) -> None:
    """Drop DVCLive rows with step >= `steps` (epochs whose backup was never written)."""
    for tsv in metrics_dir.rglob("*.tsv"):
        with tsv.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle, delimiter="\t"))
        if not rows or "step" not in rows[0]:
            continue
        step_column = rows[0].index("step")
        kept = [rows[0]] + [row for row in rows[1:] if int(row[step_column]) < steps]
        with tsv.open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, delimiter="\t", lineterminator=os.linesep).writerows(kept)


def _check_arrays(name: str, arrays: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = arrays
    if len(images) == 0 or len(images) != len(labels):
        raise ValueError(
            f"{name} must be two non-empty arrays of equal length, "
            f"got {len(images)} images and {len(labels)} labels"
        )


def _check_count(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def fit(
    model: keras.Model,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    *,
    epochs: int,
    batch_size: int,
    patience: int | None,
    run_dir: pathlib.Path,
    live_dir: pathlib.Path | None = None,
    extra_callbacks: Sequence[keras.callbacks.Callback] | None = None,
    seed: int = 0,
    monitor: str = "val_loss",
    validation_batch_size: int = 1024,
    verbose: int = 0,
) -> FitResult:
    """Train a compiled `model`, resuming an unfinished run found in `run_dir`.

    Batches are gathered by index from in-memory tensors in an order that depends only on
    `(seed, epoch)`. With `patience`, `EarlyStopping(monitor, patience,
    restore_best_weights=True)` stops the run and restores the best weights at the end
    (also when all epochs ran). Without it the last weights are kept; `best_epoch` is
    still reported. Checkpoints and resumption are described in the module docstring.

    Resumption: if a previous call with this `run_dir` was interrupted, training continues
    after the last completed epoch with its weights, optimizer state (including a learning
    rate reduced on plateau), history and early-stopping state (best value, best weights,
    patience count). Limits: other callbacks' internal counters (e.g. ReduceLROnPlateau's
    patience) restart; the dropout random state is not restored, so a resumed run with
    dropout differs from an uninterrupted one; an epoch interrupted midway is rerun from
    its start; the model, compile and fit arguments must be the same as before.
    """
    if not model.compiled:
        raise ValueError("model must be compiled before fit (see compile_model), got uncompiled")
    _check_count("epochs", epochs, 1)
    _check_count("batch_size", batch_size, 1)
    _check_count("validation_batch_size", validation_batch_size, 1)
    if patience is not None:
        _check_count("patience", patience, 0)
    _check_arrays("train", train)
    _check_arrays("validation", validation)

    run_dir = pathlib.Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    backup_dir = run_dir / BACKUP_DIRECTORY
    resumed_from = completed_epochs(run_dir)
    state, best_weights = _load_state(backup_dir, resumed_from)
    history: dict[str, list[float]] = state["history"]
    mode = monitor_mode(monitor)

    shuffler = _ShuffledBatches(len(train[0]), seed)
    timer = EpochTimer()
    callbacks: list[keras.callbacks.Callback] = [shuffler, timer]
    early_stopping = None
    if patience is not None:
        early_stopping = _ResumableEarlyStopping(
            monitor=monitor, mode=mode, patience=patience, restore_best_weights=True
        )
        if state["early_stopping"] is not None:
            early_stopping.pending_state = state["early_stopping"]
            early_stopping.pending_weights = best_weights
        callbacks.append(early_stopping)
    callbacks.append(keras.callbacks.ModelCheckpoint(str(run_dir / CHECKPOINT_FILE)))
    callbacks.extend(extra_callbacks or [])
    live = None
    if live_dir is not None:
        from dvclive import Live
        from dvclive.keras import DVCLiveCallback

        live = Live(
            dir=str(live_dir),
            resume=resumed_from > 0,
            report=None,
            save_dvc_exp=False,
            dvcyaml=None,
        )
        if resumed_from > 0:
            _truncate_metric_files(pathlib.Path(live.plots_dir) / "metrics", resumed_from)
            live.step = resumed_from
        callbacks.append(DVCLiveCallback(live=live))  # ends `live` in on_train_end
    callbacks.append(_RunBackup(backup_dir, history, early_stopping))

    model._initial_epoch = None  # Keras keeps the value BackupAndRestore set in a past fit.
    try:
        model.fit(
            _training_dataset(train[0], train[1], batch_size, shuffler),
            validation_data=_validation_dataset(*validation, validation_batch_size),
            epochs=epochs,
            initial_epoch=resumed_from,
            callbacks=callbacks,
            shuffle=False,
            verbose=verbose,
        )
    finally:
        model._initial_epoch = None
    if live is not None:
        pathlib.Path(live.metrics_file).unlink(missing_ok=True)
    shutil.rmtree(backup_dir, ignore_errors=True)

    if monitor not in history:
        raise ValueError(f"monitor must be one of {', '.join(history)}; got {monitor!r}")
    values = np.asarray(history[monitor])
    best_index = int(np.argmax(values) if mode == "max" else np.argmin(values))
    if early_stopping is not None and early_stopping.best is not None:
        best_index = int(early_stopping.best_epoch)
    return FitResult(
        history=history,
        best_epoch=best_index + 1,
        epochs_run=len(values),
        seconds_per_epoch=statistics.median(timer.durations) if timer.durations else 0.0,
        resumed_from_epoch=resumed_from,
        stopped_early=early_stopping is not None and early_stopping.stopped_epoch > 0,
    )


def classification_scores(labels: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Accuracy and macro precision of predicted class ids against true labels.

    Macro precision is the mean, over the classes present in `labels`, of
    TP / (TP + FP); a class that is never predicted counts 0. A class that is predicted
    but absent from `labels` is left out of the mean (its predictions still lower the
    accuracy and are nobody's false positives).
    """
    labels = np.asarray(labels).ravel()
    predicted = np.asarray(predicted).ravel()
    if labels.size == 0 or labels.shape != predicted.shape:
        raise ValueError(
            "labels and predicted must be non-empty and the same length, "
            f"got {labels.size} and {predicted.size}"
        )
    precisions = []
    for label in np.unique(labels):
        predicted_as_label = predicted == label
        count = int(predicted_as_label.sum())
        true_positives = int((predicted_as_label & (labels == label)).sum())
        precisions.append(true_positives / count if count else 0.0)
    return {
        "accuracy": float(np.mean(labels == predicted)),
        "precision": float(np.mean(precisions)),
    }


def evaluate_classifier(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> dict:
    """`{"accuracy", "precision"}` of `model` (argmax of its outputs; one sigmoid output
    is thresholded at 0.5), see `classification_scores`."""
    outputs = model.predict(images, batch_size=1024, verbose=0)
    if outputs.ndim == 2 and outputs.shape[1] == 1:
        predicted = (outputs[:, 0] > 0.5).astype(np.int64)
    else:
        predicted = np.argmax(outputs, axis=-1)
    return classification_scores(labels, predicted)
