"""plot_model / plot_history: the DOT source names every layer; pictures are real files."""
import pathlib

import numpy as np
import pytest

import deepkit
from deepkit import layers as L
from deepkit import visualization
from deepkit.utils import model_to_dot, plot_history, plot_model
from deepkit_engine import symbol as sym


def _branchy():
    inp = deepkit.Input(shape=(3, 16, 16), name="image")
    a = L.Conv2D(4, 3, padding="same", activation="relu", name="left")(inp)
    b = L.Conv2D(4, 1, name="right")(inp)
    merged = L.Add(name="merge")([a, b])
    out = L.Dense(2, name="head")(L.Flatten(name="flat")(merged))
    return deepkit.Model(inp, out, name="branchy")


def test_the_dot_source_names_every_layer_and_edge():
    model = _branchy()
    source = model_to_dot(model, show_shapes=True, show_dtype=True)
    for layer in model.layers:
        assert f"{layer.name} ({type(layer).__name__})" in source
    assert "output: (None, 4, 16, 16)" in source and "dtype: float32" in source
    assert source.count("->") == 6  # image->left, image->right, left/right->merge, ->flat, ->head


def test_nested_models_expand_into_a_cluster():
    inner = deepkit.Sequential([L.Dense(3, input_shape=(4,), name="inner_dense")], name="inner")
    inp = deepkit.Input(shape=(4,), name="x")
    model = deepkit.Model(inp, L.Dense(1, name="top")(inner(inp)))
    assert "inner (Sequential)" in model_to_dot(model)
    expanded = model_to_dot(model, expand_nested=True)
    assert "cluster_inner" in expanded and "inner_dense (Dense)" in expanded


@pytest.mark.parametrize("ext, magic", [(".png", b"\x89PNG"), (".svg", b"<"), (".pdf", b"%PDF")])
def test_plot_model_writes_the_format_of_the_extension(tmp_path, ext, magic):
    path = plot_model(_branchy(), tmp_path / f"model{ext}", show_shapes=True)
    data = pathlib.Path(path).read_bytes()
    assert data.lstrip()[:len(magic)] == magic and len(data) > 1000


def test_without_graphviz_matplotlib_draws_it(tmp_path, monkeypatch):
    monkeypatch.setattr(visualization, "_render_with_graphviz", lambda source, fmt: None)
    path = plot_model(_branchy(), tmp_path / "fallback.png", show_shapes=True)
    data = pathlib.Path(path).read_bytes()
    assert data[:4] == b"\x89PNG" and len(data) > 5000


def test_plot_model_refuses_an_unknown_extension(tmp_path):
    with pytest.raises(ValueError, match="extensions .png"):
        plot_model(_branchy(), tmp_path / "model.jpeg")


def test_plot_symbol_draws_an_engine_graph(tmp_path):
    net = sym.SoftmaxOutput(sym.FullyConnected(sym.Variable("data"), num_hidden=3, name="fc"),
                            name="softmax")
    source = visualization.symbol_to_dot(net, shape={"data": (8, 5)})
    assert "fc (FullyConnected)" in source and "fc_weight" not in source and "(3)" in source
    assert pathlib.Path(visualization.plot_symbol(net, tmp_path / "net.png",
                                                  shape={"data": (8, 5)})).stat().st_size > 500


def test_plot_history_draws_train_and_validation(tmp_path):
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = deepkit.Sequential([L.Dense(2, activation="softmax", input_shape=(3,))])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=2, verbose=0, validation_split=0.25)
    path = plot_history(history, to_file=tmp_path / "h.png")
    assert pathlib.Path(path).read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="'precision'.*were not logged"):
        plot_history(history, metrics=["precision"], to_file=tmp_path / "h2.png")


def test_mx_viz_plot_network_renders(tmp_path):
    from deepkit.compat import mxnet as mx
    data = mx.sym.Variable("data")
    net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(data, num_hidden=4, name="fc1"),
                               name="softmax")
    dot = mx.viz.plot_network(net, shape={"data": (1, 8)})
    assert "fc1 (FullyConnected)" in dot.source
    path = dot.render(str(tmp_path / "net"), format="png")
    assert pathlib.Path(path).read_bytes()[:4] == b"\x89PNG"
