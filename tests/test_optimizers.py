"""Tests for optimizer and learning-rate schedule construction."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from stages.core.optimizers import (
    OPTIMIZERS,
    SCHEDULES,
    build_learning_rate,
    build_optimizer,
    schedule_callbacks,
)

SCHEDULE_ARGUMENTS = {"boundaries": [10, 20], "values": [0.1, 0.01, 0.001], "decay_steps": 5}


def one_step(optimizer: keras.optimizers.Optimizer) -> np.ndarray:
    """Apply one gradient step to a small variable and return its new value."""
    variable = keras.Variable(np.array([1.0, -2.0], dtype="float32"))
    optimizer.apply_gradients([(keras.ops.convert_to_tensor([0.5, -0.5]), variable)])
    assert int(optimizer.iterations) == 1
    return np.asarray(variable)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_builds_and_steps(name: str) -> None:
    value = one_step(build_optimizer(name, 0.01))
    assert value[0] < 1.0
    assert value[1] > -2.0


def test_optimizer_variants() -> None:
    momentum = build_optimizer("momentum", 0.01, momentum=0.8)
    nesterov = build_optimizer("nesterov", 0.01)
    assert isinstance(momentum, keras.optimizers.SGD)
    assert momentum.momentum == pytest.approx(0.8)
    assert momentum.nesterov is False
    assert nesterov.nesterov is True
    assert build_optimizer("sgd", 0.01).momentum == 0.0
    rmsprop = build_optimizer("rmsprop", 0.01, beta_1=0.5)
    assert rmsprop.rho == pytest.approx(0.9)
    assert rmsprop.momentum == 0.0
    adam = build_optimizer("adam", 0.01, beta_1=0.8, beta_2=0.99, clipnorm=1.0)
    assert (adam.beta_1, adam.beta_2, adam.clipnorm) == (0.8, 0.99, 1.0)
    assert isinstance(build_optimizer("nadam", 0.01), keras.optimizers.Nadam)
    assert build_optimizer("adagrad", 0.01, clipvalue=0.5).clipvalue == 0.5


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_every_schedule_builds_and_steps(schedule: str) -> None:
    optimizer = build_optimizer("sgd", 0.1, schedule=schedule, **SCHEDULE_ARGUMENTS)
    value = one_step(optimizer)
    assert value[0] < 1.0


def test_schedule_values() -> None:
    exponential = build_learning_rate(0.1, "exponential", decay_steps=10, decay_rate=0.1)
    assert float(exponential(10)) == pytest.approx(0.01)
    power = build_learning_rate(0.1, "power", decay_steps=10)
    assert float(power(10)) == pytest.approx(0.05)
    assert float(power(30)) == pytest.approx(0.025)
    piecewise = build_learning_rate(0.1, "piecewise", **SCHEDULE_ARGUMENTS)
    assert [float(piecewise(step)) for step in (0, 15, 25)] == pytest.approx([0.1, 0.01, 0.001])
    assert build_learning_rate(0.1, "none") == 0.1
    assert build_learning_rate(0.1, "plateau") == 0.1


def test_schedule_callbacks() -> None:
    (callback,) = schedule_callbacks("plateau", factor=0.5, patience=3)
    assert isinstance(callback, keras.callbacks.ReduceLROnPlateau)
    assert (callback.factor, callback.patience, callback.monitor) == (0.5, 3, "val_loss")
    for schedule in ("none", "exponential", "power", "piecewise"):
        assert schedule_callbacks(schedule) == []


@pytest.mark.parametrize(
    ("name", "learning_rate", "arguments", "message"),
    [
        ("adamw", 0.01, {}, "optimizer must be one of adagrad, adam, .*got 'adamw'"),
        ("adam", -0.1, {}, "^learning_rate must be a positive number, got -0.1$"),
        ("adam", 0.0, {}, "learning_rate .*got 0.0"),
        ("adam", 0.01, {"schedule": "cosine"}, "schedule must be one of .*got 'cosine'"),
        ("adam", 0.01, {"beta_1": 1.0}, "beta_1 .*got 1.0"),
        ("adam", 0.01, {"beta_2": -0.5}, "beta_2 .*got -0.5"),
        ("momentum", 0.01, {"momentum": 1.5}, "momentum .*got 1.5"),
        ("adam", 0.01, {"clipnorm": 0.0}, "clipnorm .*got 0.0"),
        ("adam", 0.01, {"clipvalue": -1.0}, "clipvalue .*got -1.0"),
        ("adam", 0.01, {"clipnorm": 1.0, "clipvalue": 1.0}, "clipnorm and clipvalue"),
        ("adam", 0.01, {"schedule": "exponential", "decay_steps": 0}, "decay_steps .*got 0"),
        ("adam", 0.01, {"schedule": "exponential", "decay_rate": 0.0}, "decay_rate .*got 0.0"),
        (
            "adam",
            0.01,
            {"schedule": "piecewise", "boundaries": [10], "values": [0.1]},
            "piecewise schedule needs boundaries",
        ),
        (
            "adam",
            0.01,
            {"schedule": "piecewise", "boundaries": [10, 5], "values": [0.1, 0.2, 0.3]},
            "boundaries must be strictly increasing",
        ),
    ],
)
def test_invalid_choices_raise_value_error_naming_the_argument(
    name: str, learning_rate: float, arguments: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_optimizer(name, learning_rate, **arguments)


def test_schedule_callbacks_rejects_unknown_schedule() -> None:
    with pytest.raises(ValueError, match="schedule must be one of"):
        schedule_callbacks("sometimes")
