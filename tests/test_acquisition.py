"""The acquire stage: every route, every check, every error message."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import CLASS_NAMES, PROJECT_ROOT, SyntheticData, write_folder

from stages.core.acquisition import (
    DATASET_FILE,
    IDX_FILES,
    MNIST_SHA256,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    Dataset,
    acquire,
    keras_cache_path,
)
from stages.core.idx import DataError, encode_idx, parse_idx

CLOSED_PORT_MIRROR = "http://127.0.0.1:9/"  # the discard port: nothing listens, refused at once


def declared(data: SyntheticData, with_checksums: bool = True) -> Dataset:
    return Dataset("synthetic", CLASS_NAMES, data.checksums if with_checksums else {})


def run_acquire(dataset: Dataset, output: Path, source: Path | str = "", **environ: str) -> dict:
    return acquire(dataset, str(source), [CLOSED_PORT_MIRROR], output, environ=environ)


def test_idx_round_trip() -> None:
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    np.testing.assert_array_equal(parse_idx(encode_idx(images), "x", 0x803), images)


@pytest.mark.parametrize("compress", [True, False])
def test_declared_dataset_is_written_with_its_class_names(
    tmp_path: Path, synthetic: SyntheticData, compress: bool
) -> None:
    source = write_folder(tmp_path / "source", synthetic.contents, compress=compress)
    metrics = run_acquire(declared(synthetic), tmp_path / "raw", source)
    assert metrics == {"train_images": 400, "test_images": 100, "checksums_verified": True}
    for name in IDX_FILES:
        assert (tmp_path / "raw" / name).read_bytes() == synthetic.contents[name]
    description = json.loads((tmp_path / "raw" / DATASET_FILE).read_text())
    assert description["name"] == "synthetic"
    assert description["class_names"] == list(CLASS_NAMES)


def test_declared_dataset_without_checksums_is_accepted(tmp_path: Path, synthetic) -> None:
    source = write_folder(tmp_path / "source", synthetic.contents)
    metrics = run_acquire(declared(synthetic, with_checksums=False), tmp_path / "raw", source)
    assert metrics["checksums_verified"] is False


def test_all_routes_give_identical_bytes(tmp_path: Path, synthetic: SyntheticData) -> None:
    dataset = declared(synthetic)
    gz_folder = write_folder(tmp_path / "gz", synthetic.contents, compress=True)
    raw_folder = write_folder(tmp_path / "plain", synthetic.contents, compress=False)
    npz_folder = tmp_path / "npz"
    npz_folder.mkdir()
    a = synthetic.arrays
    np.savez(
        npz_folder / "mnist.npz",
        x_train=a[TRAIN_IMAGES],
        y_train=a[TRAIN_LABELS],
        x_test=a["t10k-images-idx3-ubyte"],
        y_test=a[TEST_LABELS],
    )
    outputs = []
    for name, source, environ in (
        ("from_param", gz_folder, {}),
        ("from_env", "", {"MNIST_DIR": str(raw_folder)}),
        ("from_npz", npz_folder, {}),
    ):
        run_acquire(dataset, tmp_path / name, source, **environ)
        outputs.append({path.name: path.read_bytes() for path in (tmp_path / name).iterdir()})
    assert outputs[0] == outputs[1] == outputs[2]


def test_parameter_folder_wins_over_mnist_dir(tmp_path: Path, synthetic) -> None:
    source = write_folder(tmp_path / "source", synthetic.contents)
    run_acquire(declared(synthetic), tmp_path / "raw", source, MNIST_DIR=str(tmp_path / "nowhere"))
    assert (tmp_path / "raw" / TRAIN_IMAGES).is_file()


def test_keras_cache_is_used_when_no_folder_is_given(tmp_path: Path, synthetic) -> None:
    environ = {"KERAS_HOME": str(tmp_path / "keras")}
    cached = keras_cache_path(environ)
    cached.parent.mkdir(parents=True)
    a = synthetic.arrays
    np.savez(
        cached,
        x_train=a[TRAIN_IMAGES],
        y_train=a[TRAIN_LABELS],
        x_test=a["t10k-images-idx3-ubyte"],
        y_test=a[TEST_LABELS],
    )
    # Synthetic data is not MNIST, so the built-in checksums reject it: proof the cache was read.
    with pytest.raises(DataError, match=r"mnist\.npz:x_train has SHA-256 .*expected ba8910"):
        run_acquire(Dataset("mnist", CLASS_NAMES), tmp_path / "raw", **environ)


# --- errors: one line, naming the file, saying what to do ------------------------------------


def assert_one_line(error: pytest.ExceptionInfo) -> None:
    assert "\n" not in str(error.value)


def test_missing_file(tmp_path: Path, synthetic) -> None:
    source = write_folder(tmp_path / "source", synthetic.contents)
    (source / f"{TRAIN_LABELS}.gz").unlink()
    with pytest.raises(DataError, match=rf"missing file: .*{TRAIN_LABELS}\(\.gz\)") as error:
        run_acquire(declared(synthetic), tmp_path / "raw", source)
    assert_one_line(error)


def test_empty_folder_says_how_to_set_mnist_dir(tmp_path: Path, synthetic) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"missing file: .*set MNIST_DIR=") as error:
        run_acquire(declared(synthetic), tmp_path / "raw", MNIST_DIR=str(tmp_path / "empty"))
    assert_one_line(error)


def test_truncated_uncompressed_file(tmp_path: Path, synthetic) -> None:
    source = write_folder(tmp_path / "source", synthetic.contents, compress=False)
    path = source / TRAIN_IMAGES
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataError, match=rf"{TRAIN_IMAGES} is truncated: .*download it again"):
        run_acquire(declared(synthetic), tmp_path / "raw", source)


def test_truncated_gzip_file(tmp_path: Path, synthetic) -> None:
    source = write_folder(tmp_path / "source", synthetic.contents)
    path = source / f"{TEST_LABELS}.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError, match=rf"{TEST_LABELS}\.gz is truncated"):
        run_acquire(declared(synthetic), tmp_path / "raw", source)


def test_wrong_magic_number(tmp_path: Path, synthetic) -> None:
    contents = dict(synthetic.contents)
    contents[TRAIN_LABELS], contents[TRAIN_IMAGES] = contents[TRAIN_IMAGES], contents[TRAIN_LABELS]
    source = write_folder(tmp_path / "source", contents)
    with pytest.raises(DataError, match=r"has magic number 0x00000801, expected 0x00000803"):
        run_acquire(declared(synthetic, with_checksums=False), tmp_path / "raw", source)


def test_checksum_mismatch_for_mnist(tmp_path: Path, synthetic) -> None:
    source = write_folder(tmp_path / "source", synthetic.contents)
    with pytest.raises(
        DataError, match=r"has SHA-256 [0-9a-f]{64}, expected .*declare it"
    ) as error:
        run_acquire(Dataset("mnist", CLASS_NAMES), tmp_path / "raw", source)
    assert MNIST_SHA256[TRAIN_IMAGES] in str(error.value)
    assert_one_line(error)


def test_checksum_mismatch_for_a_declared_dataset(tmp_path: Path, synthetic) -> None:
    contents = dict(synthetic.contents)
    corrupted = bytearray(contents[TRAIN_IMAGES])
    corrupted[-1] ^= 0xFF  # same length, valid structure, one pixel flipped
    contents[TRAIN_IMAGES] = bytes(corrupted)
    source = write_folder(tmp_path / "source", contents)
    with pytest.raises(DataError, match=r"has SHA-256 .*acquire\.dataset\.checksums is wrong"):
        run_acquire(declared(synthetic), tmp_path / "raw", source)


def test_no_data_and_no_network(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"cannot download .*127\.0\.0\.1.*set MNIST_DIR=") as error:
        run_acquire(Dataset("mnist", CLASS_NAMES), tmp_path / "raw")
    assert_one_line(error)


def test_a_declared_dataset_is_never_downloaded(tmp_path: Path, synthetic) -> None:
    with pytest.raises(DataError, match=r"dataset 'synthetic' has no local copy"):
        run_acquire(declared(synthetic), tmp_path / "raw")


def test_a_failed_run_keeps_the_files_already_there(tmp_path: Path, synthetic) -> None:
    good = write_folder(tmp_path / "good", synthetic.contents)
    run_acquire(declared(synthetic), tmp_path / "raw", good)
    before = {path.name: path.read_bytes() for path in (tmp_path / "raw").iterdir()}
    bad = write_folder(tmp_path / "bad", synthetic.contents)
    (bad / f"{TEST_LABELS}.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01" + b"\x00" * 3))
    with pytest.raises(DataError):
        run_acquire(declared(synthetic), tmp_path / "raw", bad)
    after = {path.name: path.read_bytes() for path in (tmp_path / "raw").iterdir()}
    assert after == before


def test_stage_prints_one_line_and_exits_non_zero(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text((PROJECT_ROOT / "params.yaml").read_text())
    (tmp_path / "empty").mkdir()
    environ = {**os.environ, "MNIST_DIR": str(tmp_path / "empty"), "PYTHONPATH": str(PROJECT_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "stages.acquire"],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: missing file: ")
    assert str(tmp_path / "empty") in result.stderr
    assert not (tmp_path / "data").exists()
