"""Stage ``pretrain`` (exercise 8.1): a deep dense network on digits 0-4."""

from __future__ import annotations

from pathlib import Path

from stages.core.cli import exit_on_error
from stages.core.data import load_npz, write_json
from stages.core.params import load_params

DATA_PATH = Path("data/prepared/digits_0_4.npz")
MODEL_PATH = Path("models/pretrain.keras")
CONFIGURATION_PATH = Path("models/pretrain_hyperparameters.json")
LIVE_DIR = Path("metrics/pretrain")
METRICS_PATH = LIVE_DIR / "metrics.json"


def configuration(params: dict) -> dict:
    """The network and how it is trained, in the form ``regularize`` builds on."""
    return {
        "model": params["model"],
        "optimizer": params["optimizer"],
        "batch_size": params["training"]["batch_size"],
    }


def run(
    params: dict,
    seed: int,
    data_path: Path = DATA_PATH,
    model_path: Path = MODEL_PATH,
    live_dir: Path | None = LIVE_DIR,
    run_dir: Path | None = None,
) -> dict:
    """Train, save the model to ``model_path`` and return the metrics."""
    from stages.core.experiment import build_model, run_directory, train_classifier

    split = load_npz(data_path)
    model = build_model(params["model"], n_outputs=len(split["class_names"]), name="pretrain")
    training = params["training"]
    _, metrics = train_classifier(
        model,
        params["optimizer"],
        split,
        epochs=training["epochs"],
        batch_size=training["batch_size"],
        patience=training["patience"],
        monitor=training["monitor"],
        run_dir=run_dir or run_directory("pretrain", params, seed),
        live_dir=live_dir,
        seed=seed,
    )
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model.save(model_path)
    return metrics


@exit_on_error
def main() -> None:
    params = load_params()
    from stages.core.experiment import seed_everything

    seed = params["base"]["seed"]
    seed_everything(seed)
    metrics = run(params["pretrain"], seed)
    write_json(METRICS_PATH, metrics)
    write_json(CONFIGURATION_PATH, configuration(params["pretrain"]))


if __name__ == "__main__":
    main()
