"""Shared fixtures: tiny synthetic datasets in MNIST's IDX layout."""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from stages.core.acquisition import (
    IDX_FILES,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
)
from stages.core.idx import encode_idx

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CLASS_NAMES = tuple(str(digit) for digit in range(10))
MNIST_DIR_AT_START = os.environ.get("MNIST_DIR")


@dataclass(frozen=True)
class SyntheticData:
    """Arrays of a synthetic dataset and the IDX bytes that encode them."""

    arrays: dict[str, np.ndarray]
    contents: dict[str, bytes]

    @property
    def checksums(self) -> dict[str, str]:
        return {
            name: hashlib.sha256(content).hexdigest() for name, content in self.contents.items()
        }


def make_synthetic(
    train_per_class: int = 40, test_per_class: int = 10, seed: int = 0
) -> SyntheticData:
    """Balanced, shuffled labels; every image unique (its index is written in its first pixels)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for images_name, labels_name, per_class in (
        (TRAIN_IMAGES, TRAIN_LABELS, train_per_class),
        (TEST_IMAGES, TEST_LABELS, test_per_class),
    ):
        count = 10 * per_class
        labels = rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), per_class))
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        index = np.arange(count) + (0 if images_name == TRAIN_IMAGES else 100_000)
        images[:, 0, 0] = index % 256
        images[:, 0, 1] = (index // 256) % 256
        images[:, 0, 2] = index // 65536
        images[:, 27, 27] = labels  # so a test can tell an image's class from its pixels
        arrays[images_name], arrays[labels_name] = images, labels
    contents = {name: encode_idx(arrays[name]) for name in IDX_FILES}
    return SyntheticData(arrays=arrays, contents=contents)


def write_folder(folder: Path, contents: dict[str, bytes], compress: bool = True) -> Path:
    """Write the four files into ``folder``, gzipped (``.gz``) or not."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in contents.items():
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(content, mtime=0))
        else:
            (folder / name).write_bytes(content)
    return folder


@pytest.fixture
def synthetic() -> SyntheticData:
    return make_synthetic()


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the user's MNIST_DIR or Keras cache."""
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))


def shared_mnist_dir() -> Path | None:
    """The real MNIST files beside the project (``../shared/mnist``), or MNIST_DIR."""
    candidates = [PROJECT_ROOT.parent / "shared" / "mnist"]
    if MNIST_DIR_AT_START:
        candidates.insert(0, Path(MNIST_DIR_AT_START))
    return next((path for path in candidates if (path / f"{TRAIN_IMAGES}.gz").is_file()), None)
