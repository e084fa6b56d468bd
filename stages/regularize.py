"""Stage ``regularize`` (exercises 8.3-8.4): Batch Normalization and dropout compared.

One DVC stage per variant (``foreach`` over ``regularize.variants``): each trains the
base configuration (the tuned one by default, or pretrain's) with the variant's
Batch Normalization and dropout, and records how fast it converges and how much it
overfits.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stages.core.cli import exit_on_error
from stages.core.data import load_npz, write_json
from stages.core.params import ParamsError, load_params

DATA_PATH = Path("data/prepared/digits_0_4.npz")
MODELS_DIR = Path("models")
METRICS_DIR = Path("metrics/regularize")


def base_configuration(params: dict, models_dir: Path = MODELS_DIR) -> dict:
    """The configuration ``pretrain`` or ``tune`` wrote, chosen by ``regularize.base``."""
    path = models_dir / f"{params['base']}_hyperparameters.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(
            f"{path} not found: run the {params['base']} stage first (dvc repro {params['base']})"
        ) from None


def run(
    variant: str,
    params: dict,
    seed: int,
    base: dict,
    data_path: Path = DATA_PATH,
    model_path: Path | None = None,
    live_dir: Path | None = None,
    run_dir: Path | None = None,
) -> dict:
    """Train one variant on top of ``base``; save its model and return its metrics."""
    from stages.core.experiment import build_model, epochs_to_reach, run_directory, train_classifier

    if variant not in params["variants"]:
        raise ParamsError(
            f"regularize.variants has no variant '{variant}' "
            f"(known: {', '.join(params['variants'])}); add it to params.yaml"
        )
    choice = params["variants"][variant]
    model_params = {**base["model"], **choice}
    split = load_npz(data_path)
    model = build_model(model_params, n_outputs=len(split["class_names"]), name=variant)
    training = params["training"]
    result, metrics = train_classifier(
        model,
        base["optimizer"],
        split,
        epochs=training["epochs"],
        batch_size=base["batch_size"],
        patience=training["patience"],
        monitor=training["monitor"],
        run_dir=run_dir or run_directory("regularize", variant, params, base, seed),
        live_dir=live_dir if live_dir is not None else METRICS_DIR / variant,
        seed=seed,
    )
    reached = epochs_to_reach(result.history["val_accuracy"], params["threshold"])
    metrics["epochs_to_val_accuracy"] = reached
    metrics["seconds_to_val_accuracy"] = (
        None if reached is None else round(reached * result.seconds_per_epoch, 3)
    )
    model_path = model_path or MODELS_DIR / "regularize" / f"{variant}.keras"
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model.save(model_path)
    return metrics


@exit_on_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", help="a key of regularize.variants in params.yaml")
    variant = parser.parse_args().variant
    params = load_params()
    from stages.core.experiment import seed_everything

    seed = params["base"]["seed"]
    seed_everything(seed)
    base = base_configuration(params["regularize"])
    metrics = run(variant, params["regularize"], seed, base)
    write_json(METRICS_DIR / variant / "metrics.json", metrics)


if __name__ == "__main__":
    main()
