"""Reading the acquired data and writing prepared splits reproducibly."""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stages.core.acquisition import (
    DATASET_FILE,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
)
from stages.core.idx import IMAGE_MAGIC, LABEL_MAGIC, DataError, read_idx

FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class RawData:
    """The four acquired arrays and the dataset's class names."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]


def load_raw(raw_dir: Path) -> RawData:
    """Load what the ``acquire`` stage wrote to ``raw_dir``."""
    description_path = raw_dir / DATASET_FILE
    try:
        description = json.loads(description_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{description_path} not found; run the acquire stage first") from None
    except json.JSONDecodeError:
        raise DataError(f"{description_path} is corrupted; rerun: dvc repro -f acquire") from None
    return RawData(
        train_images=read_idx(raw_dir / TRAIN_IMAGES, IMAGE_MAGIC),
        train_labels=read_idx(raw_dir / TRAIN_LABELS, LABEL_MAGIC),
        test_images=read_idx(raw_dir / TEST_IMAGES, IMAGE_MAGIC),
        test_labels=read_idx(raw_dir / TEST_LABELS, LABEL_MAGIC),
        class_names=tuple(description["class_names"]),
    )


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a compressed ``.npz`` whose bytes depend on the arrays alone.

    ``numpy.savez_compressed`` stamps each member with the current time, so two
    identical runs give different files (and DVC would see a change). Here every
    member gets a fixed timestamp. The file is written atomically.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for key, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buffer.getvalue(), compresslevel=6)
    os.replace(temporary, path)


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Load every array of a prepared split file."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise DataError(f"{path} not found; run the prepare stage first (dvc repro)") from None
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise DataError(f"{path} cannot be read ({error}); rerun: dvc repro -f prepare") from None


def write_json(path: Path, content: dict) -> None:
    """Write a metrics or summary file, sorted keys left as given, with a final newline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
