"""The splits every later stage trains and tests on.

Pixels stay uint8 (scaling is a layer of each model). Each split draws its
random numbers from its own stream, derived from the seed and the split's name,
so changing one split's parameters never changes another split's file.
"""

from __future__ import annotations

import zlib

import numpy as np

from stages.core.data import RawData
from stages.core.idx import DataError

LOW_CLASSES = (0, 1, 2, 3, 4)
HIGH_CLASSES = (5, 6, 7, 8, 9)


def split_rng(seed: int, split_name: str) -> np.random.Generator:
    """A generator for one split, independent of the others."""
    return np.random.default_rng([seed, zlib.crc32(split_name.encode())])


def _names(raw: RawData, classes: tuple[int, ...] | None = None) -> np.ndarray:
    names = raw.class_names if classes is None else [raw.class_names[c] for c in classes]
    return np.array(names, dtype=str)


def _check_validation_size(raw: RawData, validation_size: int) -> None:
    if validation_size >= len(raw.train_labels):
        raise DataError(
            f"prepare.validation_size must be smaller than the {len(raw.train_labels)} "
            f"training images, got {validation_size}"
        )


def digits_0_9(raw: RawData, validation_size: int) -> dict[str, np.ndarray]:
    """The book's split: validation = the first images of the training set, train = the rest."""
    _check_validation_size(raw, validation_size)
    return {
        "x_train": raw.train_images[validation_size:],
        "y_train": raw.train_labels[validation_size:],
        "x_validation": raw.train_images[:validation_size],
        "y_validation": raw.train_labels[:validation_size],
        "x_test": raw.test_images,
        "y_test": raw.test_labels,
        "class_names": _names(raw),
    }


def digits_0_4(raw: RawData, validation_size: int) -> dict[str, np.ndarray]:
    """:func:`digits_0_9` filtered to classes 0-4."""
    full = digits_0_9(raw, validation_size)
    split: dict[str, np.ndarray] = {}
    for part in ("train", "validation", "test"):
        keep = np.isin(full[f"y_{part}"], LOW_CLASSES)
        split[f"x_{part}"] = full[f"x_{part}"][keep]
        split[f"y_{part}"] = full[f"y_{part}"][keep]
    split["class_names"] = _names(raw, LOW_CLASSES)
    return split


def digits_5_9(
    raw: RawData, validation_size: int, per_class: int, validation_per_class: int, seed: int
) -> dict[str, np.ndarray]:
    """Few images per class 5-9, drawn from the training part; labels remapped to 0-4.

    For each class, a seeded permutation of its training-part images gives the first
    ``per_class`` to train and the next ``validation_per_class`` to validation, so the
    two never overlap. The test part is every test image of classes 5-9.
    """
    _check_validation_size(raw, validation_size)
    rng = split_rng(seed, "digits_5_9")
    labels = raw.train_labels[validation_size:]
    train_indices, validation_indices = [], []
    for class_index in HIGH_CLASSES:
        candidates = np.flatnonzero(labels == class_index)
        needed = per_class + validation_per_class
        if needed > len(candidates):
            raise DataError(
                f"prepare.digits_5_9.per_class + validation_per_class = {needed} exceeds the "
                f"{len(candidates)} training images of class '{raw.class_names[class_index]}'; "
                "lower them"
            )
        chosen = rng.permutation(candidates)
        train_indices.append(chosen[:per_class])
        validation_indices.append(chosen[per_class:needed])
    train_indices = np.sort(np.concatenate(train_indices)) + validation_size
    validation_indices = np.sort(np.concatenate(validation_indices)) + validation_size
    test_keep = np.isin(raw.test_labels, HIGH_CLASSES)
    split: dict[str, np.ndarray] = {}
    for part, images, original in (
        ("train", raw.train_images[train_indices], raw.train_labels[train_indices]),
        ("validation", raw.train_images[validation_indices], raw.train_labels[validation_indices]),
        ("test", raw.test_images[test_keep], raw.test_labels[test_keep]),
    ):
        split[f"x_{part}"] = images
        split[f"y_{part}"] = original - HIGH_CLASSES[0]
        split[f"y_{part}_original"] = original
    split["class_names"] = _names(raw, HIGH_CLASSES)
    return split


def _stratified_sample(
    labels: np.ndarray, indices: np.ndarray, size: int, rng: np.random.Generator
) -> np.ndarray:
    """``size`` of ``indices``, each class in proportion to its share (largest remainder)."""
    classes, counts = np.unique(labels[indices], return_counts=True)
    exact = counts * size / len(indices)
    quotas = np.floor(exact).astype(int)
    remainder = size - quotas.sum()
    quotas[np.argsort(-(exact - quotas), kind="stable")[:remainder]] += 1
    chosen = [
        rng.choice(indices[labels[indices] == class_index], quota, replace=False)
        for class_index, quota in zip(classes, quotas, strict=True)
    ]
    return np.sort(np.concatenate(chosen))


def pairs(
    raw: RawData, split1_size: int, split2_per_class: int, seed: int
) -> dict[str, np.ndarray]:
    """Exercise 10's splits of the whole training set, disjoint and stratified.

    Split #2 holds exactly ``split2_per_class`` images of each class; split #1 is
    ``split1_size`` of the remaining images, stratified (all of them by default).
    """
    rng = split_rng(seed, "pairs")
    labels = raw.train_labels
    split2 = []
    for class_index in range(len(raw.class_names)):
        candidates = np.flatnonzero(labels == class_index)
        if split2_per_class > len(candidates):
            raise DataError(
                f"prepare.pairs.split2_per_class must be at most {len(candidates)} (the images "
                f"of class '{raw.class_names[class_index]}'), got {split2_per_class}"
            )
        split2.append(rng.choice(candidates, split2_per_class, replace=False))
    split2_indices = np.sort(np.concatenate(split2))
    remaining = np.setdiff1d(np.arange(len(labels)), split2_indices)
    if split1_size > len(remaining):
        raise DataError(
            f"prepare.pairs.split1_size must be at most {len(remaining)} (the images left "
            f"after split #2), got {split1_size}"
        )
    if split1_size == len(remaining):
        split1_indices = remaining
    else:
        split1_indices = _stratified_sample(labels, remaining, split1_size, rng)
    return {
        "x_split1": raw.train_images[split1_indices],
        "y_split1": labels[split1_indices],
        "x_split2": raw.train_images[split2_indices],
        "y_split2": labels[split2_indices],
        "x_test": raw.test_images,
        "y_test": raw.test_labels,
        "class_names": _names(raw),
    }


def describe(split: dict[str, np.ndarray]) -> dict:
    """Size and per-class count of each part of a split, for the metrics file."""
    names = [str(name) for name in split["class_names"]]
    description = {}
    for key, labels in split.items():
        if not key.startswith("y_") or key.endswith("_original"):
            continue
        counts = np.bincount(labels, minlength=len(names))
        description[key[2:]] = {
            "size": len(labels),
            "per_class": {name: int(count) for name, count in zip(names, counts, strict=True)},
        }
    return description
