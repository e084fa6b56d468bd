"""Dense network builder for 28x28 uint8 images (Géron ch. 11 style).

Input scaling is a `Rescaling` layer inside the model and no `Lambda` layer is used,
so every saved `.keras` file loads with plain `keras.models.load_model(path)`.
"""

from __future__ import annotations

import keras
from keras import layers

from stages.core.names import ACTIVATIONS, INITIALIZERS, check_choice

OUTPUT_ACTIVATIONS: tuple[str, ...] = ("linear", "sigmoid", "softmax")


def _hidden_sizes(n_hidden: int | None, n_neurons: int | list[int]) -> list[int]:
    """Return one width per hidden layer, validating `n_hidden` and `n_neurons`."""
    if isinstance(n_neurons, bool) or not isinstance(n_neurons, int | list | tuple):
        raise ValueError(f"n_neurons must be an int or a list of ints; got {n_neurons!r}")
    if isinstance(n_neurons, int):
        if n_hidden is None or isinstance(n_hidden, bool) or not isinstance(n_hidden, int):
            raise ValueError(f"n_hidden must be an int >= 0; got {n_hidden!r}")
        if n_hidden < 0:
            raise ValueError(f"n_hidden must be an int >= 0; got {n_hidden!r}")
        if n_neurons < 1:
            raise ValueError(f"n_neurons must be an int >= 1; got {n_neurons!r}")
        return [n_neurons] * n_hidden
    sizes = list(n_neurons)
    if n_hidden is not None and n_hidden != len(sizes):
        raise ValueError(
            f"n_hidden must be None or match len(n_neurons)={len(sizes)}; got {n_hidden!r}"
        )
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"n_neurons must contain ints >= 1; got {n_neurons!r}")
    return sizes


def _activation_layer(activation: str, name: str) -> layers.Layer:
    if activation == "leaky_relu":
        return layers.LeakyReLU(name=name)
    if activation == "prelu":
        return layers.PReLU(name=name)
    return layers.Activation(activation, name=name)


def build_dense_network(
    *,
    n_hidden: int | None,
    n_neurons: int | list[int],
    n_outputs: int,
    activation: str = "elu",
    kernel_initializer: str = "he_normal",
    batch_norm: bool = False,
    dropout_rate: float = 0.0,
    l1: float = 0.0,
    l2: float = 0.0,
    max_norm: float | None = None,
    input_shape: tuple[int, int] = (28, 28),
    output_activation: str | None = "softmax",
    name: str | None = None,
) -> keras.Model:
    """Build Input -> Rescaling(1/255) -> Flatten -> hidden_1..hidden_N -> output.

    Each hidden block is `Dense(hidden_i)` followed by its activation layer
    (`activation_i`), or with `batch_norm` `Dense(use_bias=False) -> BatchNormalization
    (batch_norm_i) -> activation_i` (BN before the activation, as in the book), then
    `Dropout` (dropout_i) when `dropout_rate > 0`. L1/L2 and max-norm apply to the hidden
    kernels only. `n_neurons` is either one width for all `n_hidden` layers or a list of
    widths (then `n_hidden` is None or equal to its length). `n_outputs=0` builds a
    headless tower whose output is the last hidden block. `output_activation=None` means
    a linear output (logits).
    """
    sizes = _hidden_sizes(n_hidden, n_neurons)
    check_choice("activation", activation, ACTIVATIONS)
    check_choice("kernel_initializer", kernel_initializer, INITIALIZERS)
    if output_activation is not None:
        check_choice("output_activation", output_activation, OUTPUT_ACTIVATIONS)
    if isinstance(n_outputs, bool) or not isinstance(n_outputs, int) or n_outputs < 0:
        raise ValueError(f"n_outputs must be an int >= 0 (0 = no output layer); got {n_outputs!r}")
    if not 0.0 <= dropout_rate < 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1); got {dropout_rate!r}")
    if l1 < 0:
        raise ValueError(f"l1 must be >= 0; got {l1!r}")
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0; got {l2!r}")
    if max_norm is not None and not max_norm > 0:
        raise ValueError(f"max_norm must be None or a positive number; got {max_norm!r}")
    if n_outputs == 0 and not sizes:
        raise ValueError("n_hidden must be >= 1 when n_outputs is 0 (headless tower); got 0")

    regularizer = keras.regularizers.L1L2(l1=l1, l2=l2) if (l1 or l2) else None
    constraint = keras.constraints.MaxNorm(max_norm) if max_norm is not None else None

    inputs = keras.Input(shape=input_shape, name="image")
    tensor = layers.Rescaling(1.0 / 255, name="rescaling")(inputs)
    tensor = layers.Flatten(name="flatten")(tensor)
    for index, size in enumerate(sizes, start=1):
        tensor = layers.Dense(
            size,
            use_bias=not batch_norm,
            kernel_initializer=kernel_initializer,
            kernel_regularizer=regularizer,
            kernel_constraint=constraint,
            name=f"hidden_{index}",
        )(tensor)
        if batch_norm:
            tensor = layers.BatchNormalization(name=f"batch_norm_{index}")(tensor)
        tensor = _activation_layer(activation, f"activation_{index}")(tensor)
        if dropout_rate > 0:
            tensor = layers.Dropout(dropout_rate, name=f"dropout_{index}")(tensor)
    if n_outputs > 0:
        tensor = layers.Dense(n_outputs, activation=output_activation, name="output")(tensor)
    return keras.Model(inputs, tensor, name=name)
