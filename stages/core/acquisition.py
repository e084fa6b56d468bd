"""Find, verify and store the four MNIST IDX files.

Routes, in this order: the folder in ``acquire.source_dir``; the folder in the
``MNIST_DIR`` environment variable; Keras' cached ``mnist.npz``; a download from
the mirrors in ``params.yaml``. A folder may hold the four IDX files (``.gz`` or
uncompressed) or Keras' ``mnist.npz``. Whatever the route, the uncompressed IDX
bytes are checked (structure, then SHA-256) before anything is written, so every
route yields byte-identical files and downstream stages stay cached.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stages.core.idx import IMAGE_MAGIC, LABEL_MAGIC, DataError, encode_idx, parse_idx

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
IDX_FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
MAGIC = {
    TRAIN_IMAGES: IMAGE_MAGIC,
    TRAIN_LABELS: LABEL_MAGIC,
    TEST_IMAGES: IMAGE_MAGIC,
    TEST_LABELS: LABEL_MAGIC,
}
NPZ_KEYS = {
    TRAIN_IMAGES: "x_train",
    TRAIN_LABELS: "y_train",
    TEST_IMAGES: "x_test",
    TEST_LABELS: "y_test",
}
NPZ_NAME = "mnist.npz"
DATASET_FILE = "dataset.json"

MNIST_SHA256 = {
    TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
IMAGE_SHAPE = (28, 28)
NUMBER_OF_CLASSES = 10
SET_MNIST_DIR = (
    "set MNIST_DIR=/path/to/folder (holding the four MNIST IDX files, .gz or not, "
    "or mnist.npz) or acquire.source_dir in params.yaml"
)


@dataclass(frozen=True)
class Dataset:
    """What the user declared in ``acquire.dataset``."""

    name: str
    class_names: tuple[str, ...]
    checksums: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_mnist(self) -> bool:
        return self.name == "mnist"

    def expected_checksum(self, file_name: str) -> str | None:
        """The SHA-256 the uncompressed file must have, if one is known."""
        return MNIST_SHA256[file_name] if self.is_mnist else self.checksums.get(file_name)


def check_file(file_name: str, content: bytes, dataset: Dataset, origin: str) -> np.ndarray:
    """Check one uncompressed IDX file's structure and checksum; return its array."""
    array = parse_idx(content, origin, MAGIC[file_name])
    expected = dataset.expected_checksum(file_name)
    actual = hashlib.sha256(content).hexdigest()
    if expected is not None and actual != expected:
        if dataset.is_mnist:
            hint = (
                "the file is corrupted or not MNIST: replace it, or if it is another dataset "
                "declare it in params.yaml (acquire.dataset.name, class_names, checksums)"
            )
        else:
            hint = "the file is corrupted or acquire.dataset.checksums is wrong: fix one of them"
        raise DataError(f"{origin} has SHA-256 {actual}, expected {expected}; {hint}")
    if array.ndim == 3 and array.shape[1:] != IMAGE_SHAPE:
        raise DataError(f"{origin} holds {array.shape[1:]} images, expected 28x28; replace it")
    if array.ndim == 1 and array.size and int(array.max()) >= NUMBER_OF_CLASSES:
        raise DataError(f"{origin} has label {int(array.max())}, expected 0-9; replace it")
    return array


def check_dataset(arrays: Mapping[str, np.ndarray], origins: Mapping[str, str]) -> None:
    """Check that the four arrays fit together: counts match, all 10 classes present."""
    for images, labels in ((TRAIN_IMAGES, TRAIN_LABELS), (TEST_IMAGES, TEST_LABELS)):
        if len(arrays[images]) != len(arrays[labels]):
            raise DataError(
                f"{origins[images]} has {len(arrays[images])} images but {origins[labels]} "
                f"has {len(arrays[labels])} labels; the files do not belong together"
            )
    missing = sorted(set(range(NUMBER_OF_CLASSES)) - set(np.unique(arrays[TRAIN_LABELS]).tolist()))
    if missing:
        raise DataError(f"{origins[TRAIN_LABELS]} has no image of class {missing[0]}; replace it")


def _decompress(content: bytes, origin: str) -> bytes:
    try:
        return gzip.decompress(content)
    except EOFError:
        raise DataError(
            f"{origin} is truncated (its gzip stream ends early); download it again"
        ) from None
    except (gzip.BadGzipFile, zlib.error) as error:
        raise DataError(f"{origin} is not a valid gzip file ({error}); replace it") from None


def read_folder(folder: Path, how: str) -> tuple[dict[str, bytes], dict[str, str]]:
    """Read the four IDX files (or ``mnist.npz``) from ``folder``: contents and origins."""
    if not folder.is_dir():
        raise DataError(f"{folder} (from {how}) is not a folder; {SET_MNIST_DIR}")
    found = {name: [folder / name, folder / f"{name}.gz"] for name in IDX_FILES}
    present = {name: [path for path in paths if path.is_file()] for name, paths in found.items()}
    if not any(present.values()) and (folder / NPZ_NAME).is_file():
        return read_npz(folder / NPZ_NAME)
    if not any(present.values()):
        raise DataError(
            f"missing file: {folder / IDX_FILES[0]}(.gz), and no {NPZ_NAME} either, in {folder} "
            f"(from {how}); {SET_MNIST_DIR}"
        )
    contents, origins = {}, {}
    for name, paths in present.items():
        if not paths:
            raise DataError(
                f"missing file: {folder / name}(.gz) (from {how}); "
                "put all four IDX files in that folder"
            )
        path = paths[0]
        content = path.read_bytes()
        contents[name] = _decompress(content, str(path)) if path.suffix == ".gz" else content
        origins[name] = str(path)
    return contents, origins


def read_npz(path: Path) -> tuple[dict[str, bytes], dict[str, str]]:
    """Read Keras' ``mnist.npz`` and re-encode its arrays as the original IDX bytes."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[key] for name, key in NPZ_KEYS.items()}
    except KeyError as error:
        raise DataError(f"{path} lacks the array {error}; it is not Keras' mnist.npz") from None
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"{path} cannot be read ({error}); download it again") from None
    contents, origins = {}, {}
    for name, array in arrays.items():
        if array.dtype != np.uint8 or array.ndim != (MAGIC[name] & 0xFF):
            raise DataError(
                f"{path}: {NPZ_KEYS[name]} is {array.dtype} {array.shape}, "
                "not uint8 images or labels; replace it"
            )
        contents[name] = encode_idx(array)
        origins[name] = f"{path}:{NPZ_KEYS[name]}"
    return contents, origins


def download(
    dataset: Dataset, mirrors: list[str], timeout: float = 30.0
) -> tuple[dict[str, bytes], dict[str, str]]:
    """Download the four ``.gz`` files, trying each mirror in turn."""
    contents, origins = {}, {}
    for name in IDX_FILES:
        problems = []
        for mirror in mirrors:
            url = f"{mirror}{name}.gz"
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    content = _decompress(response.read(), url)
                check_file(name, content, dataset, url)
            except (urllib.error.URLError, OSError, DataError) as error:
                problems.append(f"{url}: {getattr(error, 'reason', error)}")
                continue
            contents[name], origins[name] = content, url
            break
        else:
            tried = "; ".join(problems) or "no mirror in acquire.mirrors"
            raise DataError(
                f"cannot download {name}.gz ({tried}) and no local copy was found; {SET_MNIST_DIR}"
            )
    return contents, origins


def keras_cache_path(environ: Mapping[str, str]) -> Path:
    """Where ``keras.datasets.mnist.load_data()`` keeps ``mnist.npz``."""
    keras_home = environ.get("KERAS_HOME") or str(Path.home() / ".keras")
    return Path(keras_home) / "datasets" / NPZ_NAME


def locate_and_read(
    dataset: Dataset, source_dir: str, mirrors: list[str], environ: Mapping[str, str]
) -> tuple[dict[str, bytes], dict[str, str], str]:
    """Take the first route that applies; return contents, origins and the route's name."""
    if source_dir:
        return (*read_folder(Path(source_dir), "acquire.source_dir"), f"folder {source_dir}")
    if environ.get("MNIST_DIR"):
        folder = environ["MNIST_DIR"]
        return (*read_folder(Path(folder), "MNIST_DIR"), f"folder {folder} (MNIST_DIR)")
    if not dataset.is_mnist:
        raise DataError(
            f"dataset '{dataset.name}' has no local copy and only MNIST is downloaded; "
            f"{SET_MNIST_DIR}"
        )
    cached = keras_cache_path(environ)
    if cached.is_file():
        return (*read_npz(cached), f"Keras cache {cached}")
    return (*download(dataset, mirrors), f"download from {', '.join(mirrors)}")


def write_atomically(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` through a temporary file, so readers never see half."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)


def acquire(
    dataset: Dataset,
    source_dir: str,
    mirrors: list[str],
    output_dir: Path,
    environ: Mapping[str, str] | None = None,
) -> dict:
    """Verify the four files from the first route that applies, then write them.

    Nothing is written (and nothing already in ``output_dir`` is touched) unless all
    four files pass every check. Returns the acquisition's metrics.
    """
    environ = os.environ if environ is None else environ
    contents, origins, route = locate_and_read(dataset, source_dir, mirrors, environ)
    arrays = {name: check_file(name, contents[name], dataset, origins[name]) for name in IDX_FILES}
    check_dataset(arrays, origins)
    output_dir.mkdir(parents=True, exist_ok=True)
    for name in IDX_FILES:
        write_atomically(output_dir / name, contents[name])
    description = {
        "name": dataset.name,
        "class_names": list(dataset.class_names),
        "sha256": {name: hashlib.sha256(contents[name]).hexdigest() for name in IDX_FILES},
    }
    write_atomically(output_dir / DATASET_FILE, (json.dumps(description, indent=2) + "\n").encode())
    print(f"acquire: {dataset.name} from {route}, checksums verified")
    return {
        "train_images": len(arrays[TRAIN_IMAGES]),
        "test_images": len(arrays[TEST_IMAGES]),
        "checksums_verified": all(dataset.expected_checksum(name) for name in IDX_FILES),
    }
