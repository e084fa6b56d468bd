"""The names a parameter may take, kept free of TensorFlow so validation stays fast."""

ACTIVATIONS: tuple[str, ...] = ("elu", "leaky_relu", "prelu", "relu", "selu", "sigmoid", "tanh")
INITIALIZERS: tuple[str, ...] = (
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "lecun_normal",
)
OPTIMIZERS: tuple[str, ...] = ("adagrad", "adam", "momentum", "nadam", "nesterov", "rmsprop", "sgd")
SCHEDULES: tuple[str, ...] = ("exponential", "none", "piecewise", "plateau", "power")
TUNERS: tuple[str, ...] = ("bayesian", "hyperband", "random")


def check_choice(argument: str, value: object, allowed: tuple[str, ...]) -> None:
    """Raise a one-line ValueError unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{argument} must be one of {', '.join(allowed)}; got {value!r}")
