"""Stage ``prepare``: every split the later stages need, as ``data/prepared/*.npz``."""

from __future__ import annotations

from pathlib import Path

from stages.core import splits
from stages.core.cli import exit_on_error
from stages.core.data import load_raw, save_npz, write_json
from stages.core.params import load_params

RAW_DIR = Path("data/raw")
PREPARED_DIR = Path("data/prepared")
METRICS_PATH = Path("metrics/prepare/metrics.json")


def run(params: dict, seed: int, raw_dir: Path = RAW_DIR, output_dir: Path = PREPARED_DIR) -> dict:
    """Write the four split files; return the size and class counts of every part."""
    raw = load_raw(raw_dir)
    validation_size = params["validation_size"]
    few_shot = params["digits_5_9"]
    pair_params = params["pairs"]
    built = {
        "digits_0_4": splits.digits_0_4(raw, validation_size),
        "digits_5_9": splits.digits_5_9(
            raw,
            validation_size,
            few_shot["per_class"],
            few_shot["validation_per_class"],
            seed,
        ),
        "pairs": splits.pairs(
            raw, pair_params["split1_size"], pair_params["split2_per_class"], seed
        ),
        "digits_0_9": splits.digits_0_9(raw, validation_size),
    }
    for name, split in built.items():
        save_npz(output_dir / f"{name}.npz", split)
    return {name: splits.describe(split) for name, split in built.items()}


@exit_on_error
def main() -> None:
    params = load_params()
    metrics = run(params["prepare"], params["base"]["seed"])
    write_json(METRICS_PATH, metrics)


if __name__ == "__main__":
    main()
