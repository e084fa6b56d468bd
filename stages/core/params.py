"""Load and validate ``params.yaml``.

Every stage calls :func:`load_params` before doing any work. The whole file is
checked against :data:`SCHEMA`: types, ranges and names. A bad value, a missing
key or an unknown key raises :class:`ParamsError` with one line that names the
key, for example ``prepare.digits_5_9.per_class must be a positive integer, got 0``.
The same check runs whether the value was typed into the file or set with
``dvc exp run -S key=value``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from stages.core.acquisition import IDX_FILES
from stages.core.names import ACTIVATIONS, INITIALIZERS, OPTIMIZERS, SCHEDULES, TUNERS

PARAMS_PATH = Path("params.yaml")

Check = Callable[[Any, str], Any]
"""A check takes a value and its dotted key; it returns the value or raises ParamsError."""


class ParamsError(ValueError):
    """A parameter is missing, unknown, of the wrong type or out of range."""


def _fail(key: str, expected: str, value: Any) -> ParamsError:
    return ParamsError(f"{key} must be {expected}, got {value!r}")


def integer(minimum: int | None = None, maximum: int | None = None) -> Check:
    """An integer in [minimum, maximum] (booleans are refused)."""
    if minimum == 1 and maximum is None:
        expected = "a positive integer"
    elif minimum == 0 and maximum is None:
        expected = "a non-negative integer"
    elif minimum is not None and maximum is not None:
        expected = f"an integer between {minimum} and {maximum}"
    elif minimum is not None:
        expected = f"an integer of at least {minimum}"
    else:
        expected = "an integer"

    def check(value: Any, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(key, expected, value)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise _fail(key, expected, value)
        return value

    return check


def number(
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
) -> Check:
    """A finite real number within the given bounds (integers are accepted)."""
    if minimum == 0 and exclusive_minimum and maximum is None:
        expected = "a positive number"
    elif minimum == 0 and maximum is None:
        expected = "a non-negative number"
    else:
        low = "" if minimum is None else ("(" if exclusive_minimum else "[") + f"{minimum}"
        high = "" if maximum is None else f"{maximum}" + (")" if exclusive_maximum else "]")
        expected = f"a number in {low or '(-inf'}, {high or 'inf)'}"

    def check(value: Any, key: str) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise _fail(key, expected, value)
        if minimum is not None and (value <= minimum if exclusive_minimum else value < minimum):
            raise _fail(key, expected, value)
        if maximum is not None and (value >= maximum if exclusive_maximum else value > maximum):
            raise _fail(key, expected, value)
        return value

    return check


def boolean() -> Check:
    """true or false."""

    def check(value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise _fail(key, "true or false", value)
        return value

    return check


def string(pattern: str | None = None, description: str = "a string") -> Check:
    """A string, optionally matching a regular expression."""

    def check(value: Any, key: str) -> str:
        if not isinstance(value, str) or (pattern and not re.fullmatch(pattern, value)):
            raise _fail(key, description, value)
        return value

    return check


def choice(*options: str) -> Check:
    """One of a fixed set of names."""
    expected = "one of " + ", ".join(options)

    def check(value: Any, key: str) -> str:
        if value not in options:
            raise _fail(key, expected, value)
        return value

    return check


def optional(inner: Check) -> Check:
    """``null`` or a value accepted by ``inner``."""

    def check(value: Any, key: str) -> Any:
        return None if value is None else inner(value, key)

    return check


def list_of(item: Check, *, min_length: int = 0, length: int | None = None) -> Check:
    """A list whose items all pass ``item``."""

    def check(value: Any, key: str) -> list:
        if not isinstance(value, list):
            raise _fail(key, "a list", value)
        if length is not None and len(value) != length:
            raise _fail(key, f"a list of {length} items", value)
        if len(value) < min_length:
            raise _fail(key, f"a list of at least {min_length} items", value)
        return [item(element, f"{key}[{index}]") for index, element in enumerate(value)]

    return check


def mapping_of(key_check: Check, value_check: Check) -> Check:
    """A mapping with free keys, each key and value checked."""

    def check(value: Any, key: str) -> dict:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise _fail(key, "a mapping", value)
        return {
            key_check(name, f"{key} key"): value_check(item, f"{key}.{name}")
            for name, item in value.items()
        }

    return check


class Defaulted:
    """A key that may be left out of ``params.yaml``; it then takes ``value``."""

    def __init__(self, check: Check, value: Any) -> None:
        self.check, self.value = check, value

    def __call__(self, value: Any, key: str) -> Any:
        return self.check(value, key)


def defaulted(check: Check, value: Any) -> Defaulted:
    """``check`` for a key that may be omitted, with ``value`` as its default."""
    return Defaulted(check, value)


def section(schema: Mapping[str, Any]) -> Check:
    """A nested schema usable where a check is expected (inside lists or mappings)."""

    def check(value: Any, key: str) -> dict:
        return validate(schema, value, key)

    return check


def interval(inner: Check, *, with_step: bool = False) -> Check:
    """A ``{min: .., max: ..}`` mapping (and ``step`` if asked) with min <= max."""
    schema = {"min": inner, "max": inner} | ({"step": inner} if with_step else {})

    def check(value: Any, key: str) -> dict:
        checked = validate(schema, value, key)
        if checked["min"] > checked["max"]:
            raise ParamsError(
                f"{key}.min must not exceed {key}.max, got {checked['min']} > {checked['max']}"
            )
        return checked

    return check


def validate(schema: Mapping[str, Any], values: Any, prefix: str = "") -> dict:
    """Check ``values`` against a nested ``schema`` of checks; return the checked copy."""
    where = prefix or "params.yaml"
    if not isinstance(values, Mapping):
        raise ParamsError(f"{where} must be a mapping of keys to values, got {values!r}")
    unknown = sorted(set(values) - set(schema))
    if unknown:
        name = f"{prefix}.{unknown[0]}" if prefix else str(unknown[0])
        raise ParamsError(
            f"{name} is not a known parameter (known keys here: {', '.join(schema)}); "
            "fix its spelling or remove it"
        )
    checked = {}
    for name, rule in schema.items():
        key = f"{prefix}.{name}" if prefix else name
        if name not in values and isinstance(rule, Defaulted):
            checked[name] = rule.value
            continue
        if name not in values:
            raise ParamsError(f"{key} is missing from params.yaml; add it (see the README)")
        value = values[name]
        checked[name] = (
            validate(rule, value, key) if isinstance(rule, Mapping) else rule(value, key)
        )
    return checked


SHA256 = string(r"[0-9a-f]{64}", "a SHA-256 in 64 lowercase hexadecimal digits")

POSITIVE = number(0, exclusive_minimum=True)
FRACTION = number(0, 1, exclusive_maximum=True)  # [0, 1)
PROBABILITY = number(0, 1, exclusive_minimum=True)  # (0, 1]
NAME = string(r"[a-z][a-z0-9_]*", "a name of lowercase letters, digits and '_'")

MODEL = {
    "n_hidden": integer(1, 100),
    "n_neurons": integer(1, 100_000),
    "activation": choice(*ACTIVATIONS),
    "kernel_initializer": choice(*INITIALIZERS),
    "batch_norm": defaulted(boolean(), False),
    "dropout_rate": defaulted(FRACTION, 0.0),
    "l1": defaulted(number(0), 0.0),
    "l2": defaulted(number(0), 0.0),
    "max_norm": defaulted(optional(POSITIVE), None),
}
OPTIMIZER = {
    "name": choice(*OPTIMIZERS),
    "learning_rate": POSITIVE,
    "momentum": defaulted(FRACTION, 0.9),
    "beta_1": defaulted(FRACTION, 0.9),
    "beta_2": defaulted(FRACTION, 0.999),
    "clipnorm": defaulted(optional(POSITIVE), None),
    "clipvalue": defaulted(optional(POSITIVE), None),
    "schedule": defaulted(choice(*SCHEDULES), "none"),
    "decay_steps": defaulted(integer(1), 10_000),
    "decay_rate": defaulted(POSITIVE, 0.1),
    "boundaries": defaulted(list_of(integer(1)), []),
    "values": defaulted(list_of(POSITIVE), []),
    "plateau_factor": defaulted(number(0, 1, exclusive_minimum=True, exclusive_maximum=True), 0.5),
    "plateau_patience": defaulted(integer(0), 5),
}
EARLY_STOPPING = {
    "epochs": integer(1, 100_000),
    "patience": optional(integer(1)),  # null: no early stopping
    "monitor": defaulted(choice("val_accuracy", "val_loss"), "val_accuracy"),
}

SCHEMA: dict[str, Any] = {
    "base": {"seed": integer(0, 2**32 - 1)},
    "acquire": {
        "source_dir": string(),
        "mirrors": list_of(string(r"(https?|file)://.+/", "a URL ending with /")),
        "dataset": {
            "name": string(r"[A-Za-z0-9_.-]+", "a name of letters, digits, '_', '.' or '-'"),
            "checksums": mapping_of(choice(*IDX_FILES), SHA256),
            "class_names": list_of(string(r".+", "a non-empty string"), length=10),
        },
    },
    "prepare": {
        "validation_size": integer(1),
        "digits_5_9": {"per_class": integer(1), "validation_per_class": integer(1)},
        "pairs": {"split1_size": integer(1), "split2_per_class": integer(1)},
    },
    "pretrain": {
        "model": MODEL,
        "optimizer": OPTIMIZER,
        "training": {**EARLY_STOPPING, "batch_size": integer(1)},
    },
    "tune": {
        "tuner": choice(*TUNERS),
        "max_trials": integer(1),
        "max_epochs": integer(1),
        "hyperband_factor": integer(2),
        "time_limit_minutes": POSITIVE,
        "trial_patience": integer(1),
        "kernel_initializer": choice(*INITIALIZERS),
        "space": {
            "n_hidden": interval(integer(1, 100)),
            "n_neurons": interval(integer(1, 100_000), with_step=True),
            "activation": list_of(choice(*ACTIVATIONS), min_length=1),
            "learning_rate": interval(POSITIVE),
            "batch_size": list_of(integer(1), min_length=1),
            "optimizer": list_of(choice(*OPTIMIZERS), min_length=1),
            "beta_1": interval(FRACTION),
            "beta_2": list_of(FRACTION, min_length=1),
        },
        "final": EARLY_STOPPING,
    },
    "regularize": {
        "base": choice("tune", "pretrain"),
        "threshold": PROBABILITY,
        "training": EARLY_STOPPING,
        "variants": mapping_of(NAME, section({"batch_norm": boolean(), "dropout_rate": FRACTION})),
    },
}


def load_params(path: Path = PARAMS_PATH) -> dict:
    """Read ``path`` and validate it against :data:`SCHEMA`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError(f"{path} not found; run from the project's root folder") from None
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ParamsError(f"{path} is not valid YAML{where}; fix the file") from None
    return validate(SCHEMA, values)
