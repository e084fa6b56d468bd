"""Keras Tuner search of exercise 8.2: the hypermodel, the tuner, its time limit and trials.

The search space is the ``tune.space`` section of ``params.yaml``. Every trial builds its
network with the project's builders (``build_model``, ``build_optimizer``, ``compile_model``
with ``steps_per_execution``), so the retrained best model is the same network.

Resumption: the tuner never overwrites its project, so a search interrupted in
``directory/project_name`` goes on where it stopped when started again with the same ones;
finished trials are not rerun and a finished search runs no trial at all.

Distributed search: Keras Tuner's own chief/worker mode, set by the environment variables
``KERASTUNER_TUNER_ID`` (``chief`` on one process, ``tuner0``, ``tuner1``... on the
workers), ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT``. The chief's
``tuner.search`` serves the oracle until every worker is told to stop; workers run trials.
All processes need the same ``directory`` (Hyperband's later rounds load the weights of
earlier trials, which another worker may have trained).
"""

from __future__ import annotations

import time
from typing import Any

import keras
import keras_tuner
from keras_tuner.engine.trial import TrialStatus
from keras_tuner.src.distribute import utils as distribute_utils

from stages.core.experiment import build_model
from stages.core.optimizers import build_optimizer
from stages.core.params import OPTIMIZER, validate
from stages.core.training import compile_model

OBJECTIVE = "val_accuracy"
HYPERPARAMETERS: tuple[str, ...] = (
    "n_hidden",
    "n_neurons",
    "activation",
    "learning_rate",
    "optimizer",
    "beta_1",
    "beta_2",
    "batch_size",
)


def declare_space(hp: keras_tuner.HyperParameters, space: dict) -> dict[str, Any]:
    """Declare the ``tune.space`` hyperparameters on ``hp``; return this trial's values."""
    return {
        "n_hidden": hp.Int("n_hidden", space["n_hidden"]["min"], space["n_hidden"]["max"]),
        "n_neurons": hp.Int(
            "n_neurons",
            space["n_neurons"]["min"],
            space["n_neurons"]["max"],
            step=space["n_neurons"]["step"],
        ),
        "activation": hp.Choice("activation", space["activation"]),
        "learning_rate": hp.Float(
            "learning_rate",
            space["learning_rate"]["min"],
            space["learning_rate"]["max"],
            sampling="log",
        ),
        "optimizer": hp.Choice("optimizer", space["optimizer"]),
        "beta_1": hp.Float("beta_1", space["beta_1"]["min"], space["beta_1"]["max"]),
        "beta_2": hp.Choice("beta_2", space["beta_2"]),
        "batch_size": hp.Choice("batch_size", space["batch_size"]),
    }


def configuration(values: dict[str, Any], kernel_initializer: str) -> dict:
    """The network and its training from one trial's values, in the shape of
    ``stages.pretrain.configuration`` (``{"model", "optimizer", "batch_size"}``, every
    model and optimizer key present), which ``regularize`` builds on."""
    model = {
        "n_hidden": int(values["n_hidden"]),
        "n_neurons": int(values["n_neurons"]),
        "activation": str(values["activation"]),
        "kernel_initializer": kernel_initializer,
        "batch_norm": False,
        "dropout_rate": 0.0,
        "l1": 0.0,
        "l2": 0.0,
        "max_norm": None,
    }
    optimizer = validate(
        OPTIMIZER,
        {
            "name": str(values["optimizer"]),
            "learning_rate": float(values["learning_rate"]),
            "beta_1": float(values["beta_1"]),
            "beta_2": float(values["beta_2"]),
        },
        "tune.optimizer",
    )
    return {"model": model, "optimizer": optimizer, "batch_size": int(values["batch_size"])}


class SpaceHyperModel(keras_tuner.HyperModel):
    """Builds and fits one trial's network; see :func:`build_hypermodel`."""

    def __init__(
        self, space: dict, kernel_initializer: str, n_outputs: int, seed: int | None = None
    ) -> None:
        super().__init__(name="tune")
        self.space, self.kernel_initializer = space, kernel_initializer
        self.n_outputs, self.seed = n_outputs, seed

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        values = declare_space(hp, self.space)
        if self.seed is not None:  # each trial starts from the same random state
            keras.utils.set_random_seed(self.seed)
        chosen = configuration(values, self.kernel_initializer)
        model = build_model(chosen["model"], self.n_outputs, name="tune")
        options = chosen["optimizer"]
        optimizer = build_optimizer(
            options["name"],
            options["learning_rate"],
            beta_1=options["beta_1"],
            beta_2=options["beta_2"],
        )
        return compile_model(model, optimizer)

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args, **kwargs):
        kwargs["batch_size"] = hp.Choice("batch_size", self.space["batch_size"])
        kwargs["verbose"] = 0  # the tuner's own display reports the trials
        return model.fit(*args, **kwargs)


def build_hypermodel(
    space: dict, kernel_initializer: str, n_outputs: int, seed: int | None = None
) -> SpaceHyperModel:
    """A hypermodel over ``space`` (a validated ``tune.space``).

    ``build(hp)`` declares every hyperparameter (``n_hidden`` and ``n_neurons`` Int,
    ``activation``, ``optimizer``, ``beta_2`` and ``batch_size`` Choice, ``learning_rate``
    log-uniform and ``beta_1`` uniform Float), then builds and compiles the dense network;
    ``fit`` trains it silently with the trial's ``batch_size``. With ``seed`` every trial
    reseeds Keras first, so a trial's result does not depend on the trials before it.
    """
    return SpaceHyperModel(space, kernel_initializer, n_outputs, seed)


class _TimeLimit:
    """Oracle mixin: no new trial once ``time_limit_seconds`` have passed.

    The clock starts at the first new trial this process's oracle creates, so every
    search runs at least one trial. ``populate_space`` is where every oracle (random,
    Bayesian, Hyperband, and the chief's in distributed mode) proposes a new trial;
    answering ``STOPPED`` there makes ``Oracle.create_trial`` tell the asking tuner to
    stop, as when the search space is exhausted. A trial already running finishes, and
    trials sent for retry (one interrupted by a crash, on resume) are not new trials.
    Hyperband keeps its unfinished bracket in its saved state: a resumed search goes on
    with it.
    """

    time_limit_seconds: float = float("inf")
    time_limit_reached: bool = False
    _deadline: float | None = None

    def populate_space(self, trial_id: str) -> dict:
        now = time.monotonic()
        if self._deadline is None:
            self._deadline = now + self.time_limit_seconds
        elif now >= self._deadline:
            self.time_limit_reached = True
            return {"status": TrialStatus.STOPPED, "values": None}
        return super().populate_space(trial_id)


_TIME_LIMITED: dict[type, type] = {}


def _limit_time(oracle: keras_tuner.Oracle, seconds: float) -> None:
    """Turn ``oracle`` into an instance of a subclass of its own class with the time limit."""
    base = type(oracle)
    if base not in _TIME_LIMITED:
        _TIME_LIMITED[base] = type(f"TimeLimited{base.__name__}", (_TimeLimit, base), {})
    oracle.__class__ = _TIME_LIMITED[base]
    oracle.time_limit_seconds = seconds


def make_tuner(
    kind: str,
    hypermodel: keras_tuner.HyperModel,
    *,
    directory: str | Any,
    project_name: str,
    seed: int,
    max_trials: int,
    max_epochs: int,
    hyperband_factor: int,
    time_limit_seconds: float,
) -> keras_tuner.Tuner:
    """A tuner maximising ``val_accuracy``, which resumes a search found in
    ``directory/project_name`` and starts no trial after ``time_limit_seconds``.

    ``kind``: ``hyperband`` (one Hyperband iteration with ``max_epochs`` and
    ``hyperband_factor``; ``max_trials`` unused), ``random`` or ``bayesian`` (at most
    ``max_trials`` trials; Bayesian optimisation needs scikit-learn and scipy).
    """
    common = {
        "hypermodel": hypermodel,
        "objective": keras_tuner.Objective(OBJECTIVE, direction="max"),
        "seed": seed,
        "directory": str(directory),
        "project_name": project_name,
        "overwrite": False,
    }
    if kind == "hyperband":
        tuner = keras_tuner.Hyperband(
            max_epochs=max_epochs, factor=hyperband_factor, hyperband_iterations=1, **common
        )
    elif kind == "random":
        tuner = keras_tuner.RandomSearch(max_trials=max_trials, **common)
    elif kind == "bayesian":
        try:
            tuner = keras_tuner.BayesianOptimization(max_trials=max_trials, **common)
        except ImportError:
            raise ValueError(
                "tune.tuner bayesian needs scikit-learn and scipy: "
                "pip install 'keras-tuner[bayesian]', or choose hyperband or random"
            ) from None
    else:
        raise ValueError(f"tuner kind must be one of bayesian, hyperband, random; got {kind!r}")
    if isinstance(tuner.oracle, keras_tuner.Oracle):  # a worker's is a client of the chief's
        _limit_time(tuner.oracle, time_limit_seconds)
    return tuner


def is_distributed() -> bool:
    """Whether the environment asks for Keras Tuner's chief/worker mode."""
    return distribute_utils.has_chief_oracle()


def is_worker() -> bool:
    """Whether this process is a worker of a distributed search (it only runs trials)."""
    return distribute_utils.has_chief_oracle() and not distribute_utils.is_chief_oracle()


def _last_line(message: str | None) -> str:
    lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _failure(tuner: keras_tuner.Tuner) -> ValueError:
    failed = [
        trial
        for trial in tuner.oracle.trials.values()
        if trial.status in (TrialStatus.FAILED, TrialStatus.INVALID)
    ]
    reason = (
        f"{len(failed)} failed, the last with: {_last_line(failed[-1].message)}"
        if failed
        else "none ran"
    )
    return ValueError(f"no Keras Tuner trial completed in {tuner.project_dir} ({reason})")


def search(tuner: keras_tuner.Tuner, *fit_args, **fit_kwargs) -> None:
    """``tuner.search`` whose every-trial-failed ends are one-line ``ValueError``s.

    Keras Tuner records a crashing trial as failed and goes on (it stops after three in
    a row), so a broken installation would otherwise yield a search without results.
    On a worker this only runs trials; call :func:`completed_trials` on the chief.
    """
    try:
        tuner.search(*fit_args, **fit_kwargs)
    except RuntimeError as error:
        if "consecutive failures" not in str(error) or is_worker():
            raise
        raise _failure(tuner) from None
    if not is_worker() and not completed_trials(tuner):
        raise _failure(tuner)


def completed_trials(tuner: keras_tuner.Tuner) -> list:
    """The search's completed trials (chief or undistributed tuner), in trial-id order."""
    trials = tuner.oracle.trials
    return [trials[key] for key in sorted(trials) if trials[key].status == TrialStatus.COMPLETED]


def best_values(tuner: keras_tuner.Tuner) -> dict[str, Any]:
    """The hyperparameter values of the best completed trial (``tuner/*`` bookkeeping
    entries of Hyperband left out)."""
    if not completed_trials(tuner):
        raise _failure(tuner)
    values = tuner.get_best_hyperparameters(1)[0].values
    return {name: values[name] for name in HYPERPARAMETERS}


def trials_table(tuner: keras_tuner.Tuner) -> list[dict]:
    """One row per completed trial, in trial-id order: ``trial`` (int id), ``score``
    (its best ``val_accuracy``), ``status``, every hyperparameter, then Hyperband's
    ``tuner_epochs``, ``tuner_initial_epoch``, ``tuner_bracket``, ``tuner_round`` and, for
    a trial continuing an earlier one, ``tuner_trial_id``. Rows may differ in keys."""
    rows = []
    for trial in completed_trials(tuner):
        values = trial.hyperparameters.values
        row = {"trial": int(trial.trial_id), "score": float(trial.score), "status": trial.status}
        row.update({name: values[name] for name in HYPERPARAMETERS if name in values})
        row.update(
            {
                name.replace("tuner/", "tuner_"): value
                for name, value in values.items()
                if name.startswith("tuner/")
            }
        )
        rows.append(row)
    return rows
