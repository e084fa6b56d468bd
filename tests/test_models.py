"""Tests for the dense network builder."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from stages.core.models import ACTIVATIONS, INITIALIZERS, build_dense_network

IMAGES = np.random.default_rng(0).integers(0, 256, size=(3, 28, 28), dtype=np.uint8)


def layer_types(model: keras.Model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


def test_input_scaling_is_a_layer_and_shapes_are_right() -> None:
    model = build_dense_network(n_hidden=2, n_neurons=4, n_outputs=5)
    assert layer_types(model)[:3] == ["InputLayer", "Rescaling", "Flatten"]
    assert "Lambda" not in layer_types(model)
    assert [model.get_layer(f"hidden_{index}").units for index in (1, 2)] == [4, 4]
    outputs = np.asarray(model(IMAGES))
    assert outputs.shape == (3, 5)
    np.testing.assert_allclose(outputs.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation(activation: str) -> None:
    model = build_dense_network(n_hidden=2, n_neurons=4, n_outputs=3, activation=activation)
    layer = model.get_layer("activation_2")
    expected = {"leaky_relu": "LeakyReLU", "prelu": "PReLU"}.get(activation, "Activation")
    assert type(layer).__name__ == expected
    if expected == "Activation":
        assert layer.activation.__name__ == activation
    assert np.asarray(model(IMAGES)).shape == (3, 3)


@pytest.mark.parametrize("initializer", INITIALIZERS)
def test_every_initializer(initializer: str) -> None:
    model = build_dense_network(
        n_hidden=1, n_neurons=4, n_outputs=2, kernel_initializer=initializer
    )
    expected = "".join(part.capitalize() for part in initializer.split("_"))
    assert type(model.get_layer("hidden_1").kernel_initializer).__name__ == expected
    assert np.asarray(model(IMAGES)).shape == (3, 2)


def test_batch_norm_sits_between_dense_and_activation() -> None:
    model = build_dense_network(n_hidden=2, n_neurons=4, n_outputs=2, batch_norm=True)
    names = [layer.name for layer in model.layers]
    for index in (1, 2):
        position = names.index(f"hidden_{index}")
        assert names[position + 1] == f"batch_norm_{index}"
        assert names[position + 2] == f"activation_{index}"
        assert model.get_layer(f"hidden_{index}").use_bias is False
    assert isinstance(model.get_layer("batch_norm_1"), keras.layers.BatchNormalization)


def test_without_batch_norm_dense_has_bias_and_no_batch_norm_layer() -> None:
    model = build_dense_network(n_hidden=2, n_neurons=4, n_outputs=2)
    assert "BatchNormalization" not in layer_types(model)
    assert model.get_layer("hidden_1").use_bias is True


def test_dropout_after_each_hidden_activation() -> None:
    model = build_dense_network(n_hidden=3, n_neurons=4, n_outputs=2, dropout_rate=0.2)
    names = [layer.name for layer in model.layers]
    for index in (1, 2, 3):
        assert names[names.index(f"activation_{index}") + 1] == f"dropout_{index}"
    assert [model.get_layer(f"dropout_{index}").rate for index in (1, 2, 3)] == [0.2] * 3
    no_dropout = build_dense_network(n_hidden=3, n_neurons=4, n_outputs=2)
    assert "Dropout" not in layer_types(no_dropout)


def test_l1_l2_on_hidden_kernels_only() -> None:
    model = build_dense_network(n_hidden=2, n_neurons=4, n_outputs=2, l1=0.01, l2=0.02)
    regularizer = model.get_layer("hidden_2").kernel_regularizer
    assert isinstance(regularizer, keras.regularizers.L1L2)
    assert regularizer.l1 == pytest.approx(0.01)
    assert regularizer.l2 == pytest.approx(0.02)
    assert model.get_layer("output").kernel_regularizer is None
    model(IMAGES)
    assert len(model.losses) == 2
    plain = build_dense_network(n_hidden=2, n_neurons=4, n_outputs=2)
    assert plain.get_layer("hidden_1").kernel_regularizer is None


def test_max_norm_on_hidden_kernels() -> None:
    model = build_dense_network(n_hidden=2, n_neurons=4, n_outputs=2, max_norm=1.5)
    constraint = model.get_layer("hidden_1").kernel_constraint
    assert isinstance(constraint, keras.constraints.MaxNorm)
    assert constraint.max_value == pytest.approx(1.5)
    assert model.get_layer("output").kernel_constraint is None


def test_headless_tower_ends_with_last_hidden_block() -> None:
    model = build_dense_network(n_hidden=2, n_neurons=6, n_outputs=0, activation="selu")
    assert "output" not in [layer.name for layer in model.layers]
    assert model.output_shape == (None, 6)
    assert np.asarray(model(IMAGES)).shape == (3, 6)


def test_list_of_widths() -> None:
    model = build_dense_network(n_hidden=None, n_neurons=[8, 4], n_outputs=2)
    assert [model.get_layer(f"hidden_{index}").units for index in (1, 2)] == [8, 4]
    same = build_dense_network(n_hidden=2, n_neurons=[8, 4], n_outputs=2)
    assert same.count_params() == model.count_params()


def test_linear_output_and_name() -> None:
    model = build_dense_network(
        n_hidden=1, n_neurons=4, n_outputs=2, output_activation=None, name="logits"
    )
    assert model.name == "logits"
    assert model.get_layer("output").activation.__name__ == "linear"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"activation": "foo"}, "activation must be one of elu, leaky_relu, prelu, relu, selu"),
        ({"kernel_initializer": "zeros"}, "kernel_initializer must be one of .*got 'zeros'"),
        ({"n_hidden": -1}, "n_hidden .*got -1"),
        ({"n_neurons": 0}, "n_neurons .*got 0"),
        ({"n_neurons": [4, 0], "n_hidden": None}, "n_neurons .*got \\[4, 0\\]"),
        ({"n_neurons": [4, 4], "n_hidden": 3}, "n_hidden .*got 3"),
        ({"dropout_rate": 1.0}, "dropout_rate must be in \\[0, 1\\); got 1.0"),
        ({"dropout_rate": -0.1}, "dropout_rate .*got -0.1"),
        ({"l1": -0.1}, "l1 .*got -0.1"),
        ({"l2": -1.0}, "l2 .*got -1.0"),
        ({"max_norm": 0.0}, "max_norm .*got 0.0"),
        ({"n_outputs": -2}, "n_outputs .*got -2"),
        ({"output_activation": "relu6"}, "output_activation .*got 'relu6'"),
        ({"n_hidden": 0, "n_outputs": 0}, "n_hidden must be >= 1 when n_outputs is 0"),
    ],
)
def test_invalid_arguments_raise_value_error_naming_them(arguments: dict, message: str) -> None:
    parameters = {"n_hidden": 2, "n_neurons": 4, "n_outputs": 2} | arguments
    with pytest.raises(ValueError, match=message):
        build_dense_network(**parameters)


def test_saved_model_reloads_in_safe_mode_and_predicts_the_same(tmp_path) -> None:
    keras.utils.set_random_seed(3)
    model = build_dense_network(
        n_hidden=2,
        n_neurons=[6, 5],
        n_outputs=4,
        activation="prelu",
        batch_norm=True,
        dropout_rate=0.3,
        l1=1e-4,
        l2=1e-3,
        max_norm=2.0,
    )
    model.compile(optimizer="nadam", loss="sparse_categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(
        loaded.predict(IMAGES, verbose=0), model.predict(IMAGES, verbose=0), rtol=1e-6
    )
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
