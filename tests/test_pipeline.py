"""``dvc repro`` end to end in a temporary copy of the repository, on synthetic data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import PROJECT_ROOT, SyntheticData, make_synthetic, shared_mnist_dir, write_folder

from stages import acquire as acquire_stage
from stages import prepare as prepare_stage

PREPARED = ("digits_0_4", "digits_5_9", "pairs", "digits_0_9")


def dvc(repo: Path, *arguments: str, environ: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dvc", *arguments],
        cwd=repo,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )


def copy_repository(destination: Path) -> Path:
    """The project's pipeline files in a fresh git + DVC repository."""
    destination.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(PROJECT_ROOT / name, destination / name)
    shutil.copytree(
        PROJECT_ROOT / "stages",
        destination / "stages",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    subprocess.run(["git", "init", "-q"], cwd=destination, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=destination, check=True)
    shutil.copy(PROJECT_ROOT / ".dvc" / "config", destination / ".dvc" / "config")
    return destination


def set_params(repo: Path, changes: dict[str, object]) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for dotted_key, value in changes.items():
        *parents, last = dotted_key.split(".")
        target = params
        for parent in parents:
            target = target[parent]
        target[last] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture
def pipeline(tmp_path: Path) -> tuple[Path, dict[str, str], SyntheticData]:
    data = make_synthetic()
    repo = copy_repository(tmp_path / "repo")
    set_params(
        repo,
        {
            "acquire.dataset.name": "synthetic",
            "acquire.dataset.checksums": data.checksums,
            "acquire.mirrors": ["http://127.0.0.1:9/"],
            "prepare.validation_size": 50,
            "prepare.digits_5_9.per_class": 10,
            "prepare.digits_5_9.validation_per_class": 5,
            "prepare.pairs.split1_size": 300,
            "prepare.pairs.split2_per_class": 5,
        },
    )
    environ = {
        **os.environ,
        "MNIST_DIR": str(write_folder(tmp_path / "mnist", data.contents)),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return repo, environ, data


def test_dvc_repro_runs_acquire_and_prepare_then_caches(pipeline) -> None:
    repo, environ, data = pipeline
    result = dvc(repo, "repro", "prepare", environ=environ)
    assert result.returncode == 0, result.stderr
    for name in PREPARED:
        assert (repo / "data" / "prepared" / f"{name}.npz").is_file()
    assert (repo / "data" / "raw" / "train-images-idx3-ubyte").read_bytes() == data.contents[
        "train-images-idx3-ubyte"
    ]
    metrics = json.loads((repo / "metrics" / "prepare" / "metrics.json").read_text())
    assert metrics["digits_5_9"]["train"]["size"] == 50
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"acquire", "prepare"}

    again = dvc(repo, "repro", "prepare", environ=environ)
    assert again.returncode == 0, again.stderr
    assert "Running stage" not in again.stdout

    # A parameter of one split reruns prepare only, and the other splits keep their bytes.
    before = {name: (repo / "data" / "prepared" / f"{name}.npz").read_bytes() for name in PREPARED}
    set_params(repo, {"prepare.pairs.split2_per_class": 6})
    changed = dvc(repo, "repro", "prepare", environ=environ)
    assert changed.returncode == 0, changed.stderr
    assert "Running stage 'prepare'" in changed.stdout
    assert "Running stage 'acquire'" not in changed.stdout
    after = {name: (repo / "data" / "prepared" / f"{name}.npz").read_bytes() for name in PREPARED}
    assert [name for name in PREPARED if before[name] != after[name]] == ["pairs"]


def test_bad_parameter_fails_with_one_line_and_keeps_outputs(pipeline) -> None:
    repo, environ, _ = pipeline
    assert dvc(repo, "repro", "prepare", environ=environ).returncode == 0
    before = (repo / "data" / "prepared" / "digits_5_9.npz").read_bytes()
    set_params(repo, {"prepare.digits_5_9.per_class": 0})
    result = dvc(repo, "repro", "prepare", environ=environ)
    assert result.returncode != 0
    assert "error: prepare.digits_5_9.per_class must be a positive integer, got 0" in result.stderr
    assert (repo / "data" / "prepared" / "digits_5_9.npz").read_bytes() == before


@pytest.mark.slow
def test_real_mnist_class_counts(tmp_path: Path) -> None:
    source = shared_mnist_dir()
    if source is None:
        pytest.skip("the real MNIST files (../shared/mnist or MNIST_DIR) are not here")
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    acquire_params = {**params["acquire"], "source_dir": str(source)}
    metrics = acquire_stage.run(acquire_params, output_dir=tmp_path / "raw")
    assert metrics == {"train_images": 60000, "test_images": 10000, "checksums_verified": True}
    prepared = prepare_stage.run(
        params["prepare"],
        params["base"]["seed"],
        raw_dir=tmp_path / "raw",
        output_dir=tmp_path / "prepared",
    )
    train = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    test = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    full = prepared["digits_0_9"]
    combined = [
        full["train"]["per_class"][c] + full["validation"]["per_class"][c] for c in "0123456789"
    ]
    assert combined == train
    assert list(full["test"]["per_class"].values()) == test
    assert prepared["pairs"]["split1"]["size"] == 55000
    assert set(prepared["pairs"]["split2"]["per_class"].values()) == {500}
    assert prepared["digits_5_9"]["train"]["size"] == 500
    assert prepared["digits_0_4"]["validation"]["size"] + prepared["digits_0_4"]["train"][
        "size"
    ] == sum(train[:5])
