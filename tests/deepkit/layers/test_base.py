"""The layer life cycle: ``call`` runs once per use, and must be pure."""
import numpy as np
import pytest

import deepkit
from deepkit import layers as L
from deepkit_engine import symbol as sym


class CountingDense(L.Dense):
    """A Dense layer that counts how often its ``call`` runs."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.call_count = 0

    def call(self, inputs):
        self.call_count += 1
        return super().call(inputs)


def test_calling_a_layer_runs_call_once():
    layer = CountingDense(3)
    out = layer(deepkit.Input(shape=(5,)))
    assert layer.call_count == 1 and out.shape == (None, 3)
    layer(deepkit.Input(shape=(5,)))  # a second use, a second call
    assert layer.call_count == 2


def test_the_output_is_wired_to_the_real_input_not_to_a_probe():
    inp = deepkit.Input(shape=(5,), name="features")
    out = CountingDense(3, name="d")(inp)
    assert sorted(out.symbol.list_arguments()) == ["d_bias", "d_weight", "features"]
    assert not any(a.startswith("__shape_probe") for a in out.symbol.list_arguments())


def test_a_layer_that_ignores_an_input_can_be_called_on_a_list():
    class First(L.Layer):
        def call(self, inputs):
            return inputs[0] * 2.0

    a, b = deepkit.Input(shape=(4,), name="a"), deepkit.Input(shape=(6,), name="b")
    out = First()([a, b])
    assert out.shape == (None, 4) and out.symbol.list_arguments() == ["a"]
    model = deepkit.Model([a, b], out)
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(model.predict([x, np.ones((2, 6), np.float32)]), 2 * x)


def test_call_is_replayed_when_a_model_rebuilds_its_programs_so_it_must_be_pure():
    """The documented rule: ``call`` may run again at any time (here: after freezing)."""
    layer = CountingDense(2, name="head")
    inp = deepkit.Input(shape=(3,))
    model = deepkit.Model(inp, layer(inp))
    model.compile("sgd", "mse")
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32)
    model.fit(x, y, verbose=0)
    after_fit = layer.call_count
    assert after_fit >= 2  # the use, then the replay that built the training program
    layer.trainable = False
    model.fit(x, y, verbose=0)
    assert layer.call_count > after_fit
    assert "pure" in L.Layer.compute_output_shape.__doc__


def test_a_layer_with_its_own_compute_output_shape_keeps_it():
    class Halve(L.Layer):
        def call(self, inputs):
            return sym.slice_axis(inputs, axis=1, begin=0, end=2)

        def compute_output_shape(self, input_shape):
            return (input_shape[0], 2)

    out = Halve()(deepkit.Input(shape=(4,)))
    assert out.shape == (None, 2)


def test_an_incompatible_input_names_the_layer():
    with pytest.raises(Exception, match="dense"):
        L.Dense(3, name="dense")(L.Dense(2)(deepkit.Input(shape=(5,))))  \
            and L.Dense(3, name="dense")(deepkit.Input(shape=(4,)))
