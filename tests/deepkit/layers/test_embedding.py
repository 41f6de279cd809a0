"""Embedding: lookup against numpy, shapes, training of the looked-up rows, config, errors."""
import numpy as np
import pytest

import deepkit
from deepkit import layers as L
from deepkit.layers.embedding import Embedding


def _model(layer, shape):
    inp = deepkit.Input(shape=shape, name="tokens")
    return deepkit.Model(inp, layer(inp))


def test_embedding_looks_up_rows_of_float_indices():
    emb = Embedding(10, 3, name="emb")
    model = _model(emb, (4,))
    assert emb.output_shape == (None, 4, 3)
    assert [(p.name, p.shape) for p in emb.weights] == [("emb_weight", (10, 3))]
    idx = np.array([[0, 1, 9, 1], [5, 5, 2, 0]], np.float32)  # integers as floats (MXNet)
    model.initialize_weights()
    table = emb.get_weights()[0]
    assert np.abs(table).max() <= 0.05  # Keras's 'uniform' initializer
    np.testing.assert_array_equal(model.predict(idx), table[idx.astype(int)])


def test_embedding_of_higher_rank_indices():
    emb = Embedding(6, 2)
    model = _model(emb, (2, 3))
    assert emb.output_shape == (None, 2, 3, 2)
    idx = np.arange(12, dtype=np.float32).reshape(2, 2, 3) % 6
    model.initialize_weights()
    table = np.arange(12, dtype=np.float32).reshape(6, 2)
    emb.set_weights([table])
    np.testing.assert_array_equal(model.predict(idx), table[idx.astype(int)])


def test_embedding_training_updates_only_the_rows_looked_up(rng):
    emb = Embedding(8, 4, name="emb")
    inp = deepkit.Input(shape=(3,))
    out = L.Dense(1)(L.Flatten()(emb(inp)))
    model = deepkit.Model(inp, out)
    model.compile("sgd", "mse")
    idx = np.array([[1, 2, 3], [3, 2, 1], [1, 1, 6]], np.float32)
    model.initialize_weights()
    before = emb.get_weights()[0]
    model.fit(idx, rng.normal(size=(3, 1)), batch_size=3, epochs=2, verbose=0)
    after = emb.get_weights()[0]
    used = [1, 2, 3, 6]
    unused = [0, 4, 5, 7]
    np.testing.assert_array_equal(after[unused], before[unused])
    assert all(not np.array_equal(after[r], before[r]) for r in used)


def test_embedding_config_round_trip():
    emb = Embedding(100, 16, embeddings_initializer="normal", embeddings_regularizer="l2",
                    embeddings_constraint="unit_norm", lr_mult=0.5, name="words")
    config = emb.get_config()
    clone = Embedding.from_config(config)
    assert clone.get_config() == config
    assert clone.input_dim == 100 and clone.output_dim == 16 and clone.name == "words"


def test_embedding_errors():
    with pytest.raises(ValueError, match="Embedding: 'input_dim' must be a positive int. "
                                         "Received: input_dim=0"):
        Embedding(0, 3)
    with pytest.raises(ValueError, match="'output_dim' must be a positive int. Received: "
                                         "output_dim=2.5"):
        Embedding(3, 2.5)
