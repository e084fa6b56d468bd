"""The prepare stage's splits: sizes, balance, disjointness, remapping, determinism."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import CLASS_NAMES, SyntheticData, make_synthetic, write_folder

from stages import prepare
from stages.core import splits
from stages.core.acquisition import Dataset, acquire
from stages.core.data import FIXED_ZIP_TIME, RawData, load_npz, load_raw
from stages.core.idx import DataError

PARAMS = {
    "validation_size": 50,
    "digits_5_9": {"per_class": 10, "validation_per_class": 5},
    "pairs": {"split1_size": 300, "split2_per_class": 5},
}


@pytest.fixture
def raw_dir(tmp_path: Path, synthetic: SyntheticData) -> Path:
    source = write_folder(tmp_path / "source", synthetic.contents)
    dataset = Dataset("synthetic", CLASS_NAMES, synthetic.checksums)
    acquire(dataset, str(source), [], tmp_path / "raw", environ={})
    return tmp_path / "raw"


@pytest.fixture
def raw(raw_dir: Path) -> RawData:
    return load_raw(raw_dir)


def image_ids(images: np.ndarray) -> set[int]:
    """The unique index the synthetic generator wrote into each image."""
    pixels = images[:, 0, :3].astype(np.int64)
    return set((pixels[:, 0] + 256 * pixels[:, 1] + 65536 * pixels[:, 2]).tolist())


def test_digits_0_4_follows_the_book(raw: RawData) -> None:
    split = splits.digits_0_4(raw, validation_size=50)
    first = raw.train_labels[:50]
    assert len(split["y_validation"]) == np.isin(first, range(5)).sum()
    np.testing.assert_array_equal(split["x_validation"], raw.train_images[:50][first < 5])
    assert set(np.unique(split["y_train"]).tolist()) == {0, 1, 2, 3, 4}
    assert len(split["y_train"]) + len(split["y_validation"]) == 200
    assert len(split["y_test"]) == 50
    assert image_ids(split["x_train"]).isdisjoint(image_ids(split["x_validation"]))
    assert split["class_names"].tolist() == ["0", "1", "2", "3", "4"]


def test_digits_5_9_is_balanced_disjoint_and_remapped(raw: RawData) -> None:
    split = splits.digits_5_9(raw, 50, per_class=10, validation_per_class=5, seed=1)
    assert np.bincount(split["y_train"]).tolist() == [10] * 5
    assert np.bincount(split["y_validation"]).tolist() == [5] * 5
    assert len(split["y_test"]) == 50
    for part in ("train", "validation", "test"):
        np.testing.assert_array_equal(split[f"y_{part}"] + 5, split[f"y_{part}_original"])
        # the label written into each synthetic image's corner matches the original label
        np.testing.assert_array_equal(split[f"x_{part}"][:, 27, 27], split[f"y_{part}_original"])
    train_ids, validation_ids = image_ids(split["x_train"]), image_ids(split["x_validation"])
    assert train_ids.isdisjoint(validation_ids)
    assert image_ids(raw.train_images[:50]).isdisjoint(train_ids | validation_ids)
    assert split["class_names"].tolist() == ["5", "6", "7", "8", "9"]


def test_digits_5_9_refuses_more_images_than_a_class_has(raw: RawData) -> None:
    with pytest.raises(DataError, match=r"prepare\.digits_5_9\.per_class \+ validation_per_class"):
        splits.digits_5_9(raw, 50, per_class=40, validation_per_class=5, seed=1)


def test_pairs_splits_are_disjoint_stratified_and_exact(raw: RawData) -> None:
    split = splits.pairs(raw, split1_size=300, split2_per_class=5, seed=3)
    assert np.bincount(split["y_split2"], minlength=10).tolist() == [5] * 10
    assert len(split["y_split1"]) == 300
    assert np.bincount(split["y_split1"], minlength=10).tolist() == [30] * 10  # balanced source
    assert image_ids(split["x_split1"]).isdisjoint(image_ids(split["x_split2"]))
    assert len(split["y_test"]) == 100
    full = splits.pairs(raw, split1_size=350, split2_per_class=5, seed=3)
    assert len(full["y_split1"]) == 350


def test_pairs_refuses_an_oversized_split(raw: RawData) -> None:
    with pytest.raises(DataError, match=r"prepare\.pairs\.split1_size must be at most 350"):
        splits.pairs(raw, split1_size=351, split2_per_class=5, seed=3)


def test_stratified_sample_keeps_class_shares() -> None:
    labels = np.array([0] * 60 + [1] * 30 + [2] * 10)
    chosen = splits._stratified_sample(labels, np.arange(100), 50, np.random.default_rng(0))
    assert np.bincount(labels[chosen]).tolist() == [30, 15, 5]
    assert len(set(chosen.tolist())) == 50


def test_changing_one_split_leaves_the_others_alone(raw: RawData) -> None:
    a = splits.digits_5_9(raw, 50, per_class=10, validation_per_class=5, seed=7)
    b = splits.pairs(raw, split1_size=300, split2_per_class=5, seed=7)
    c = splits.pairs(raw, split1_size=300, split2_per_class=6, seed=7)
    again = splits.digits_5_9(raw, 50, per_class=10, validation_per_class=5, seed=7)
    np.testing.assert_array_equal(a["x_train"], again["x_train"])
    assert not np.array_equal(b["y_split2"], c["y_split2"])


def test_prepare_twice_gives_identical_bytes(tmp_path: Path, raw_dir: Path) -> None:
    first = prepare.run(PARAMS, seed=5, raw_dir=raw_dir, output_dir=tmp_path / "one")
    second = prepare.run(PARAMS, seed=5, raw_dir=raw_dir, output_dir=tmp_path / "two")
    assert first == second
    names = sorted(path.name for path in (tmp_path / "one").iterdir())
    assert names == ["digits_0_4.npz", "digits_0_9.npz", "digits_5_9.npz", "pairs.npz"]
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
        with zipfile.ZipFile(tmp_path / "one" / name) as archive:
            assert {info.date_time for info in archive.infolist()} == {FIXED_ZIP_TIME}
    other_seed = prepare.run(PARAMS, seed=6, raw_dir=raw_dir, output_dir=tmp_path / "three")
    assert other_seed["digits_0_4"] == first["digits_0_4"]
    assert (tmp_path / "three" / "pairs.npz").read_bytes() != (
        tmp_path / "one" / "pairs.npz"
    ).read_bytes()


def test_prepared_files_keep_uint8_pixels_and_metrics_count_them(tmp_path, raw_dir) -> None:
    metrics = prepare.run(PARAMS, seed=5, raw_dir=raw_dir, output_dir=tmp_path / "out")
    pairs = load_npz(tmp_path / "out" / "pairs.npz")
    assert pairs["x_split1"].dtype == np.uint8 and pairs["x_split1"].shape[1:] == (28, 28)
    assert metrics["pairs"]["split2"] == {"size": 50, "per_class": dict.fromkeys(CLASS_NAMES, 5)}
    assert metrics["digits_5_9"]["train"]["per_class"] == dict.fromkeys("56789", 10)
    assert metrics["digits_0_9"]["validation"]["size"] == 50


def test_other_class_names_flow_through(tmp_path: Path) -> None:
    data = make_synthetic(train_per_class=20, test_per_class=2)
    names = (
        "tee",
        "trouser",
        "pullover",
        "dress",
        "coat",
        "sandal",
        "shirt",
        "sneaker",
        "bag",
        "boot",
    )
    source = write_folder(tmp_path / "source", data.contents)
    acquire(Dataset("fashion", names), str(source), [], tmp_path / "raw", environ={})
    metrics = prepare.run(
        {
            "validation_size": 20,
            "digits_5_9": {"per_class": 5, "validation_per_class": 2},
            "pairs": {"split1_size": 100, "split2_per_class": 3},
        },
        seed=0,
        raw_dir=tmp_path / "raw",
        output_dir=tmp_path / "out",
    )
    assert list(metrics["digits_5_9"]["train"]["per_class"]) == list(names[5:])
    split = load_npz(tmp_path / "out" / "digits_0_4.npz")
    assert split["class_names"].tolist() == list(names[:5])
