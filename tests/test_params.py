"""params.yaml: the shipped file is valid; every kind of mistake gets a one-line error."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from conftest import PROJECT_ROOT

from stages.core.params import ParamsError, load_params


@pytest.fixture
def defaults() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())


def load_with(tmp_path: Path, values: dict) -> dict:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(values))
    return load_params(path)


def with_change(values: dict, dotted_key: str, value) -> dict:
    changed = copy.deepcopy(values)
    *parents, last = dotted_key.split(".")
    target = changed
    for parent in parents:
        target = target[parent]
    target[last] = value
    return changed


def test_shipped_params_are_valid() -> None:
    params = load_params(PROJECT_ROOT / "params.yaml")
    assert params["prepare"]["digits_5_9"]["per_class"] == 100
    assert params["base"]["seed"] == 42


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "prepare.digits_5_9.per_class",
            0,
            "prepare.digits_5_9.per_class must be a positive integer, got 0",
        ),
        (
            "prepare.digits_5_9.per_class",
            2.5,
            "prepare.digits_5_9.per_class must be a positive integer, got 2.5",
        ),
        (
            "prepare.pairs.split2_per_class",
            True,
            "prepare.pairs.split2_per_class must be a positive integer, got True",
        ),
        (
            "prepare.validation_size",
            "5000",
            "prepare.validation_size must be a positive integer, got '5000'",
        ),
        ("base.seed", -1, "base.seed must be an integer between 0 and 4294967295, got -1"),
        (
            "acquire.dataset.class_names",
            ["a", "b"],
            "acquire.dataset.class_names must be a list of 10 items, got ['a', 'b']",
        ),
        (
            "acquire.dataset.checksums",
            {"train-images-idx3-ubyte": "abc"},
            "acquire.dataset.checksums.train-images-idx3-ubyte must be a SHA-256",
        ),
        (
            "acquire.dataset.checksums",
            {"images.bin": "0" * 64},
            "acquire.dataset.checksums key must be one of train-images-idx3-ubyte",
        ),
        (
            "acquire.mirrors",
            ["ftp://example.org/"],
            "acquire.mirrors[0] must be a URL ending with /",
        ),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, defaults: dict, key: str, value, message: str):
    with pytest.raises(ParamsError) as error:
        load_with(tmp_path, with_change(defaults, key, value))
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_unknown_key_is_an_error(tmp_path: Path, defaults: dict) -> None:
    with pytest.raises(ParamsError, match=r"^prepare\.digits_5_9\.per_klass is not a known param"):
        load_with(tmp_path, with_change(defaults, "prepare.digits_5_9.per_klass", 3))


def test_unknown_section_is_an_error(tmp_path: Path, defaults: dict) -> None:
    with pytest.raises(ParamsError, match=r"^pretrian is not a known parameter"):
        load_with(tmp_path, {**defaults, "pretrian": {}})


def test_missing_key_is_an_error(tmp_path: Path, defaults: dict) -> None:
    del defaults["prepare"]["pairs"]["split1_size"]
    with pytest.raises(ParamsError, match=r"^prepare\.pairs\.split1_size is missing"):
        load_with(tmp_path, defaults)


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("base: [seed: 1\n")
    with pytest.raises(ParamsError, match=r"params\.yaml is not valid YAML"):
        load_params(path)
