"""Tests for the shared fit helper: early stopping, checkpoints, DVCLive, resumption."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import csv
import pathlib

import keras
import numpy as np
import pytest

from stages.core.training import (
    CHECKPOINT_FILE,
    _truncate_metric_files,
    classification_scores,
    compile_model,
    evaluate_classifier,
    fit,
)

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, size=(64, 28, 28), dtype=np.uint8)
LABELS = RNG.integers(0, 4, size=64).astype(np.uint8)
# Same images, other labels: fitting the training labels makes this validation loss rise.
WRONG_LABELS = ((LABELS + 1 + RNG.integers(0, 3, size=64)) % 4).astype(np.uint8)


def tiny_model(seed: int = 1, learning_rate: float = 0.01) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(28, 28))
    tensor = keras.layers.Rescaling(1 / 255)(inputs)
    tensor = keras.layers.Flatten()(tensor)
    tensor = keras.layers.Dense(16, activation="relu")(tensor)
    outputs = keras.layers.Dense(4, activation="softmax")(tensor)
    model = keras.Model(inputs, outputs)
    return compile_model(model, keras.optimizers.Adam(learning_rate), steps_per_execution=4)


class EpochRecorder(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.begun: list[int] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.begun.append(epoch)


class Interrupt(keras.callbacks.Callback):
    """Raises at the end of epoch index `epoch`, before that epoch's backup is written."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if epoch == self.epoch:
            raise RuntimeError("simulated kill")


def read_tsv(path: pathlib.Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_fit_counts_updates_checkpoints_and_reports(tmp_path) -> None:
    model = tiny_model()
    result = fit(
        model,
        (IMAGES, LABELS),
        (IMAGES, LABELS),
        epochs=3,
        batch_size=10,
        patience=None,
        run_dir=tmp_path / "run",
    )
    assert int(model.optimizer.iterations) == 3 * 7  # ceil(64 / 10) batches per epoch
    assert result.epochs_run == 3
    assert result.resumed_from_epoch == 0
    assert result.stopped_early is False
    assert set(result.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert result.best_epoch == int(np.argmin(result.history["val_loss"])) + 1
    assert result.seconds_per_epoch > 0
    assert not (tmp_path / "run" / "backup").exists()
    checkpoint = keras.models.load_model(tmp_path / "run" / CHECKPOINT_FILE, safe_mode=True)
    np.testing.assert_allclose(
        checkpoint.predict(IMAGES, verbose=0), model.predict(IMAGES, verbose=0), rtol=1e-6
    )


def test_batch_size_one_and_seeded_shuffle(tmp_path) -> None:
    runs = {}
    for name, seed in (("first", 5), ("again", 5), ("other", 6)):
        model = tiny_model()
        fit(
            model,
            (IMAGES[:12], LABELS[:12]),
            (IMAGES[:12], LABELS[:12]),
            epochs=1,
            batch_size=1,
            patience=None,
            run_dir=tmp_path / name,
            seed=seed,
        )
        assert int(model.optimizer.iterations) == 12
        runs[name] = model.get_weights()[0]
    np.testing.assert_array_equal(runs["first"], runs["again"])
    assert not np.array_equal(runs["first"], runs["other"])


def test_early_stopping_restores_best_weights(tmp_path) -> None:
    model = tiny_model(learning_rate=0.02)
    result = fit(
        model,
        (IMAGES, LABELS),
        (IMAGES, WRONG_LABELS),
        epochs=20,
        batch_size=8,
        patience=2,
        run_dir=tmp_path / "run",
    )
    validation_loss = result.history["val_loss"]
    assert result.stopped_early is True
    assert result.epochs_run == result.best_epoch + 2 < 20
    assert validation_loss[result.best_epoch - 1] == min(validation_loss)
    assert min(validation_loss) < validation_loss[-1]
    restored_loss = model.evaluate(IMAGES, WRONG_LABELS, batch_size=64, verbose=0)[0]
    assert restored_loss == pytest.approx(min(validation_loss), rel=1e-4)


def test_dvclive_writes_one_row_per_epoch_and_no_summary(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no DVC repository around: DVCLive writes only live_dir
    live_dir = tmp_path / "live"
    fit(
        tiny_model(),
        (IMAGES, LABELS),
        (IMAGES, LABELS),
        epochs=2,
        batch_size=16,
        patience=None,
        run_dir=tmp_path / "run",
        live_dir=live_dir,
    )
    metrics = live_dir / "plots" / "metrics"
    for name in ("train/loss", "train/accuracy", "eval/loss", "eval/accuracy"):
        rows = read_tsv(metrics / f"{name}.tsv")
        assert [row["step"] for row in rows] == ["0", "1"]
    assert not (live_dir / "metrics.json").exists()
    assert not list(tmp_path.rglob("dvc.yaml"))


def test_interrupted_run_resumes_after_last_finished_epoch(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    arguments = {
        "train": (IMAGES, LABELS),
        "validation": (IMAGES, WRONG_LABELS),
        "epochs": 6,
        "batch_size": 8,
        "patience": 2,
    }
    reference = tiny_model()
    expected = fit(reference, run_dir=tmp_path / "reference", **arguments)
    assert expected.best_epoch == 1  # so the best weights predate the interruption

    run_dir, live_dir = tmp_path / "run", tmp_path / "live"
    first = EpochRecorder()
    with pytest.raises(RuntimeError, match="simulated kill"):
        fit(
            tiny_model(),
            run_dir=run_dir,
            live_dir=live_dir,
            extra_callbacks=[first, Interrupt(epoch=1)],
            **arguments,
        )
    assert first.begun == [0, 1]
    assert (run_dir / "backup").is_dir()

    second = EpochRecorder()
    model = tiny_model(seed=99)  # other initial weights: the backup must override them
    result = fit(model, run_dir=run_dir, live_dir=live_dir, extra_callbacks=[second], **arguments)
    assert second.begun[0] == 1  # epoch 2 (1-based) runs again, epoch 1 does not
    assert second.begun == list(range(1, expected.epochs_run))
    assert result.resumed_from_epoch == 1
    assert result.epochs_run == expected.epochs_run
    assert result.best_epoch == expected.best_epoch
    assert result.history == expected.history  # same batches, same state: bit-identical
    for resumed, uninterrupted in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(resumed, uninterrupted)
    assert not (run_dir / "backup").exists()
    steps = [row["step"] for row in read_tsv(live_dir / "plots/metrics/eval/loss.tsv")]
    assert steps == [str(step) for step in range(expected.epochs_run)]


def test_rows_of_epochs_without_backup_are_dropped_on_resume(tmp_path) -> None:
    # A kill between DVCLive's row and the backup leaves a row the resumed run rewrites.
    tsv = tmp_path / "metrics" / "eval" / "loss.tsv"
    tsv.parent.mkdir(parents=True)
    tsv.write_text("step\tloss\n0\t1.5\n1\t1.25\n2\t1.0\n", encoding="utf-8")
    _truncate_metric_files(tmp_path / "metrics", 2)
    assert read_tsv(tsv) == [{"step": "0", "loss": "1.5"}, {"step": "1", "loss": "1.25"}]


def test_fit_rejects_bad_arguments(tmp_path) -> None:
    data = (IMAGES, LABELS)
    uncompiled = keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Flatten()])
    with pytest.raises(ValueError, match="model must be compiled"):
        fit(uncompiled, data, data, epochs=1, batch_size=8, patience=None, run_dir=tmp_path)
    model = tiny_model()
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        fit(model, data, data, epochs=1, batch_size=0, patience=None, run_dir=tmp_path)
    with pytest.raises(ValueError, match="epochs must be an int >= 1, got 0"):
        fit(model, data, data, epochs=0, batch_size=8, patience=None, run_dir=tmp_path)
    with pytest.raises(ValueError, match="patience must be an int >= 0, got -1"):
        fit(model, data, data, epochs=1, batch_size=8, patience=-1, run_dir=tmp_path)
    with pytest.raises(ValueError, match="validation must be two non-empty arrays"):
        fit(model, data, (IMAGES, LABELS[:3]), epochs=1, batch_size=8, patience=1, run_dir=tmp_path)
    with pytest.raises(ValueError, match="steps_per_execution must be an int >= 1, got 0"):
        compile_model(model, "adam", steps_per_execution=0)


def test_classification_scores_by_hand() -> None:
    labels = np.array([0, 0, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 0])
    scores = classification_scores(labels, predicted)
    # class 0: 1 of 2 predictions right; class 1: 2 of 3; class 2: never predicted -> 0
    assert scores["accuracy"] == pytest.approx(3 / 5)
    assert scores["precision"] == pytest.approx((1 / 2 + 2 / 3 + 0) / 3)
    # class 3 is predicted but absent from labels: out of the mean, still an error
    scores = classification_scores(np.array([0, 1]), np.array([0, 3]))
    assert scores == pytest.approx({"accuracy": 0.5, "precision": 0.5})


def test_evaluate_classifier_uses_argmax_of_the_model_outputs() -> None:
    identity = keras.Sequential(
        [
            keras.Input(shape=(3,)),
            keras.layers.Dense(3, use_bias=False, kernel_initializer="identity"),
        ]
    )
    scores = np.array(
        [[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.3, 0.3, 0.4]],
        dtype="float32",
    )
    labels = np.array([0, 1, 2, 2, 2])  # predicted: 0, 1, 1, 0, 2
    result = evaluate_classifier(identity, scores, labels)
    assert result["accuracy"] == pytest.approx(3 / 5)
    assert result["precision"] == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)
