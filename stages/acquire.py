"""Stage ``acquire``: verified MNIST IDX files under ``data/raw/``."""

from __future__ import annotations

from pathlib import Path

from stages.core.acquisition import Dataset, acquire
from stages.core.cli import exit_on_error
from stages.core.data import write_json
from stages.core.params import load_params

RAW_DIR = Path("data/raw")
METRICS_PATH = Path("metrics/acquire/metrics.json")


def run(params: dict, output_dir: Path = RAW_DIR) -> dict:
    """Verify the data from the first route that applies and write it; return metrics."""
    declared = params["dataset"]
    dataset = Dataset(
        name=declared["name"],
        class_names=tuple(declared["class_names"]),
        checksums=declared["checksums"],
    )
    return acquire(dataset, params["source_dir"], params["mirrors"], output_dir)


@exit_on_error
def main() -> None:
    params = load_params()
    metrics = run(params["acquire"])
    write_json(METRICS_PATH, metrics)


if __name__ == "__main__":
    main()
