"""Optimizers and learning-rate schedules of Géron ch. 11, built from plain parameters."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import keras

from stages.core.names import OPTIMIZERS, SCHEDULES, check_choice


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_positive(argument: str, value: object) -> None:
    if not _is_number(value) or value <= 0:
        raise ValueError(f"{argument} must be a positive number, got {value!r}")


def _check_unit_interval(argument: str, value: object) -> None:
    if not _is_number(value) or not 0 <= value < 1:
        raise ValueError(f"{argument} must be a number in [0, 1), got {value!r}")


def build_learning_rate(
    learning_rate: float,
    schedule: str = "none",
    *,
    decay_steps: int = 10000,
    decay_rate: float = 0.1,
    boundaries: Sequence[int] | None = None,
    values: Sequence[float] | None = None,
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """Return a constant rate or a schedule; `step` counts optimizer updates (batches).

    - none, plateau: `learning_rate` (plateau needs `schedule_callbacks`).
    - exponential: `learning_rate * decay_rate ** (step / decay_steps)`.
    - power: `learning_rate / (1 + step / decay_steps)` (InverseTimeDecay with
      decay_rate 1, i.e. power scheduling with c = 1; `decay_rate` is not used).
    - piecewise: `values[i]` while `step` is in the i-th interval of `boundaries`;
      `values` are absolute rates, `len(values) == len(boundaries) + 1`, and
      `learning_rate` is only validated.
    """
    _check_positive("learning_rate", learning_rate)
    check_choice("schedule", schedule, SCHEDULES)
    if schedule in ("none", "plateau"):
        return float(learning_rate)
    if schedule in ("exponential", "power"):
        if isinstance(decay_steps, bool) or not isinstance(decay_steps, int) or decay_steps < 1:
            raise ValueError(f"decay_steps must be a positive int, got {decay_steps!r}")
        if schedule == "power":
            return keras.optimizers.schedules.InverseTimeDecay(
                learning_rate, decay_steps=decay_steps, decay_rate=1.0
            )
        _check_positive("decay_rate", decay_rate)
        return keras.optimizers.schedules.ExponentialDecay(
            learning_rate, decay_steps=decay_steps, decay_rate=decay_rate
        )
    if not boundaries or values is None or len(values) != len(boundaries) + 1:
        raise ValueError(
            "piecewise schedule needs boundaries (non-empty) and values with "
            f"len(values) == len(boundaries) + 1, got boundaries={boundaries!r}, values={values!r}"
        )
    if any(later <= earlier for earlier, later in itertools.pairwise(boundaries)):
        raise ValueError(f"boundaries must be strictly increasing, got {boundaries!r}")
    for value in values:
        _check_positive("values", value)
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        [int(boundary) for boundary in boundaries], [float(value) for value in values]
    )


def build_optimizer(
    name: str,
    learning_rate: float,
    *,
    momentum: float = 0.9,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    schedule: str = "none",
    decay_steps: int = 10000,
    decay_rate: float = 0.1,
    boundaries: Sequence[int] | None = None,
    values: Sequence[float] | None = None,
) -> keras.optimizers.Optimizer:
    """Build one of OPTIMIZERS with a learning rate from `build_learning_rate`.

    sgd: plain SGD; momentum: SGD(momentum); nesterov: SGD(momentum, nesterov=True);
    adagrad; rmsprop: RMSprop(rho=0.9, momentum=0); adam / nadam: (beta_1, beta_2).
    `momentum`, `beta_1` and `beta_2` are validated even where unused. At most one of
    `clipnorm` / `clipvalue` may be given.
    """
    check_choice("optimizer", name, OPTIMIZERS)
    _check_positive("learning_rate", learning_rate)
    _check_unit_interval("momentum", momentum)
    _check_unit_interval("beta_1", beta_1)
    _check_unit_interval("beta_2", beta_2)
    if clipnorm is not None:
        _check_positive("clipnorm", clipnorm)
    if clipvalue is not None:
        _check_positive("clipvalue", clipvalue)
    if clipnorm is not None and clipvalue is not None:
        raise ValueError(
            f"clipnorm and clipvalue are exclusive, got clipnorm={clipnorm!r}, "
            f"clipvalue={clipvalue!r}"
        )
    rate = build_learning_rate(
        learning_rate,
        schedule,
        decay_steps=decay_steps,
        decay_rate=decay_rate,
        boundaries=boundaries,
        values=values,
    )
    clipping = {"clipnorm": clipnorm, "clipvalue": clipvalue}
    if name == "sgd":
        return keras.optimizers.SGD(rate, **clipping)
    if name in ("momentum", "nesterov"):
        return keras.optimizers.SGD(
            rate, momentum=momentum, nesterov=name == "nesterov", **clipping
        )
    if name == "adagrad":
        return keras.optimizers.Adagrad(rate, **clipping)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(rate, rho=0.9, momentum=0.0, **clipping)
    if name == "adam":
        return keras.optimizers.Adam(rate, beta_1=beta_1, beta_2=beta_2, **clipping)
    return keras.optimizers.Nadam(rate, beta_1=beta_1, beta_2=beta_2, **clipping)


def schedule_callbacks(
    schedule: str,
    *,
    monitor: str = "val_loss",
    factor: float = 0.5,
    patience: int = 5,
    min_learning_rate: float = 0.0,
) -> list[keras.callbacks.Callback]:
    """Callbacks a schedule needs: `[ReduceLROnPlateau]` for plateau, else `[]`.

    Performance scheduling multiplies the rate by `factor` after `patience` epochs
    without improvement of `monitor`. `ReduceLROnPlateau` keeps its own counters, so a
    resumed run restarts them (the reduced rate itself is restored with the optimizer).
    """
    check_choice("schedule", schedule, SCHEDULES)
    if schedule != "plateau":
        return []
    if not _is_number(factor) or not 0 < factor < 1:
        raise ValueError(f"factor must be a number in (0, 1), got {factor!r}")
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
        raise ValueError(f"patience must be an int >= 0, got {patience!r}")
    return [
        keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, factor=factor, patience=patience, min_lr=min_learning_rate
        )
    ]
