"""Stage ``regularize_summary``: the exercise's questions answered from the variants' metrics."""

from __future__ import annotations

import json
from pathlib import Path

from stages.core.cli import exit_on_error
from stages.core.data import write_json
from stages.core.idx import DataError
from stages.core.params import load_params

METRICS_DIR = Path("metrics/regularize")


def summarize(variants: dict[str, dict]) -> dict:
    """Which variant converged first, overfit least and tested best, with the numbers."""
    if not variants:
        raise DataError("no regularize variant metrics to summarize; run dvc repro regularize")
    table = {
        name: {
            "test_accuracy": metrics["test"]["accuracy"],
            "test_precision": metrics["test"]["precision"],
            "epochs_to_val_accuracy": metrics["epochs_to_val_accuracy"],
            "seconds_to_val_accuracy": metrics["seconds_to_val_accuracy"],
            "train_val_gap": metrics["train_val_gap"],
            "best_epoch": metrics["best_epoch"],
            "seconds_per_epoch": metrics["seconds_per_epoch"],
        }
        for name, metrics in variants.items()
    }
    reached = {name: row for name, row in table.items() if row["epochs_to_val_accuracy"]}

    def first(key: str) -> dict | None:
        if not reached:
            return None
        name = min(reached, key=lambda n: (reached[n][key], n))
        return {"variant": name, key: reached[name][key]}

    least = min(table, key=lambda n: (table[n]["train_val_gap"], n))
    best = max(table, key=lambda n: (table[n]["test_accuracy"], n))
    return {
        "converged_first_in_epochs": first("epochs_to_val_accuracy"),
        "converged_first_in_seconds": first("seconds_to_val_accuracy"),
        "overfits_least": {"variant": least, "train_val_gap": table[least]["train_val_gap"]},
        "tests_best": {"variant": best, "test_accuracy": table[best]["test_accuracy"]},
        "variants": table,
    }


def run(params: dict, metrics_dir: Path = METRICS_DIR) -> dict:
    """Read each variant's metrics.json (every variant in params) and summarize them."""
    variants = {}
    for name in params["variants"]:
        path = metrics_dir / name / "metrics.json"
        try:
            variants[name] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"{path} not found; run: dvc repro regularize@{name}") from None
    return summarize(variants)


@exit_on_error
def main() -> None:
    params = load_params()
    write_json(METRICS_DIR / "summary.json", run(params["regularize"]))


if __name__ == "__main__":
    main()
