"""Keras files with recurrent layers: real files written by Keras 3, and the Keras 2 HDF5 layout.

The files in ``tests/deepkit/fixtures/keras`` were written by Keras 3
(``make_recurrent_files.py`` there); ``recurrent_reference.npz`` holds their
inputs and the predictions Keras made.
"""
import json
import pathlib

import h5py
import numpy as np
import pytest

import deepkit
from deepkit import layers as L
from deepkit.models import load_model
from deepkit.models.keras_format import (
    RepeatMaskedOutputs,
    is_keras_file,
    load_keras_model,
)
from deepkit_engine.base import DeepkitError

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "keras"
REFERENCE = np.load(FIXTURES / "recurrent_reference.npz")
FILES = sorted(p.name for p in FIXTURES.iterdir() if p.suffix in (".keras", ".h5"))


def _wants(name):
    keys = sorted(k for k in REFERENCE.files if k.startswith(f"{name}_y"))
    return [REFERENCE[k] for k in keys]


def _predicts_what_keras_predicted(model, name):
    got = model.predict(REFERENCE[f"{name}_x"])
    gots = got if isinstance(got, list) else [got]
    wants = _wants(name)
    assert len(gots) == len(wants)
    for g, w in zip(gots, wants):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-5)


def test_the_fixtures_cover_both_formats():
    assert {f.rsplit(".", 1)[1] for f in FILES} == {"keras", "h5"}
    assert str(REFERENCE["keras_version"]).startswith("3.")


@pytest.mark.parametrize("filename", FILES)
def test_a_keras_file_with_recurrent_layers_predicts_what_keras_predicted(filename):
    path = FIXTURES / filename
    assert is_keras_file(path)
    _predicts_what_keras_predicted(load_model(path), filename.rsplit(".", 1)[0])


def test_lstm_gru_and_simple_rnn_are_rebuilt_with_their_configuration():
    model = load_model(FIXTURES / "lstm_gru_simple.keras")
    lstm, after, before = (model.get_layer(n) for n in ("lstm", "gru_after", "gru_before"))
    simple, per_step = model.get_layer("simple_rnn"), model.get_layer("per_step")
    assert isinstance(lstm, L.LSTM) and lstm.units == 6 and lstm.return_sequences
    assert lstm.recurrent_activation == "sigmoid" and lstm.unit_forget_bias
    assert isinstance(after, L.GRU) and after.reset_after and "recurrent_bias" in after.params
    assert isinstance(before, L.GRU) and not before.reset_after and before.go_backwards
    assert isinstance(simple, L.SimpleRNN) and simple.activation == "relu"
    assert isinstance(per_step, L.TimeDistributed) and isinstance(per_step.layer, L.Dense)


def test_lstm_weights_keep_keras_gate_order_i_f_c_o():
    with h5py.File(FIXTURES / "lstm_gru_simple.h5", "r") as f:
        group = f["model_weights/lstm"]
        names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
        kernel, recurrent, bias = (group[n][()] for n in names)
    lstm = load_model(FIXTURES / "lstm_gru_simple.h5").get_layer("lstm")
    weights = lstm.get_weights()
    np.testing.assert_array_equal(weights[0], kernel.T)       # (4*units, input), i f c o
    np.testing.assert_array_equal(weights[1], recurrent.T)
    np.testing.assert_array_equal(weights[2], bias)


def test_gru_weights_are_reordered_from_z_r_h_and_the_reset_after_bias_split():
    with h5py.File(FIXTURES / "lstm_gru_simple.h5", "r") as f:
        group = f["model_weights/gru_after"]
        names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
        kernel, _, bias = (group[n][()] for n in names)
    gru = load_model(FIXTURES / "lstm_gru_simple.h5").get_layer("gru_after")
    k, _, b, rb = gru.get_weights()
    z, r, h = np.split(kernel.T, 3)
    np.testing.assert_array_equal(k, np.concatenate([r, z, h]))
    bz, br, bh = np.split(bias, 3, axis=1)
    np.testing.assert_array_equal(b, np.concatenate([br[0], bz[0], bh[0]]))
    np.testing.assert_array_equal(rb, np.concatenate([br[1], bz[1], bh[1]]))


def test_bidirectional_keeps_merge_mode_and_both_layers():
    model = load_model(FIXTURES / "bidirectional.keras")
    bi_lstm, bi_gru = model.get_layer("bi_lstm"), model.get_layer("bi_gru")
    assert isinstance(bi_lstm, L.Bidirectional) and bi_lstm.merge_mode == "concat"
    assert isinstance(bi_lstm.forward_layer, L.LSTM) and bi_lstm.backward_layer.go_backwards
    assert bi_gru.merge_mode == "sum" and not bi_gru.forward_layer.reset_after
    fwd, bwd = bi_lstm.forward_layer.get_weights(), bi_lstm.backward_layer.get_weights()
    assert not np.array_equal(fwd[0], bwd[0])


def test_masks_from_embedding_and_masking_are_rebuilt():
    embedded = load_model(FIXTURES / "masked_embedding.keras")
    assert embedded.get_layer("embedding").mask_zero
    masking = load_model(FIXTURES / "masking.keras").get_layer("masking")
    assert isinstance(masking, L.Masking) and masking.mask_value == -1.0
    x = REFERENCE["masked_embedding_x"].copy()
    x[0, 3:] = 5  # the padded steps are skipped: what is there does not matter ...
    assert not np.allclose(embedded.predict(x), REFERENCE["masked_embedding_y"], atol=1e-5)
    x = REFERENCE["masked_embedding_x"].copy()
    x[1, :2] = 0  # ... unless they are padding
    np.testing.assert_allclose(embedded.predict(x), REFERENCE["masked_embedding_y"], atol=1e-5)


def test_masked_steps_of_a_sequence_output_repeat_the_last_output_as_in_keras():
    model = load_model(FIXTURES / "masked_sequences.keras")
    assert [type(layer) for layer in model.layers[1:]] == [
        L.Masking, L.LSTM, RepeatMaskedOutputs, L.GRU, RepeatMaskedOutputs]
    got = model.predict(REFERENCE["masked_sequences_x"])
    # The last GRU reads backwards: its output step k is time step 4 - k. Sample 0 has
    # steps 1 and 4 masked: zeros before its first unmasked step, then the last output again.
    np.testing.assert_array_equal(got[0, 0], 0.0)
    np.testing.assert_array_equal(got[0, 3], got[0, 2])
    np.testing.assert_allclose(got, REFERENCE["masked_sequences_y"], rtol=0, atol=1e-5)
    unmasked = load_model(FIXTURES / "lstm_gru_simple.keras")
    assert not any(isinstance(layer, RepeatMaskedOutputs) for layer in unmasked.layers)


@pytest.mark.parametrize("filename", ["masked_sequences.keras", "states_and_cells.keras",
                                      "bidirectional.h5"])
def test_a_loaded_recurrent_model_saves_and_loads_as_deepkit(filename, tmp_path):
    name = filename.rsplit(".", 1)[0]
    model = load_model(FIXTURES / filename)
    model.save(tmp_path / "back.h5")
    assert not is_keras_file(tmp_path / "back.h5")
    _predicts_what_keras_predicted(load_model(tmp_path / "back.h5"), name)


def test_a_loaded_recurrent_model_trains():
    model = load_model(FIXTURES / "masked_embedding.keras")
    model.compile("adam", "binary_crossentropy")
    before = model.get_layer("lstm").get_weights()[0].copy()
    model.fit(REFERENCE["masked_embedding_x"], np.array([[1.0], [0.0], [1.0]]), epochs=1, verbose=0)
    assert not np.allclose(model.get_layer("lstm").get_weights()[0], before)


# -- the Keras 2 / tf.keras layout -------------------------------------------------------------

_KERAS3_ONLY = ("zero_output_for_mask", "seed", "optional", "build_config", "ragged", "sparse")


def _keras2_config(value):
    """A Keras 3 layer config rewritten the way Keras 2 writes it."""
    if isinstance(value, list):
        return [_keras2_config(v) for v in value]
    if not isinstance(value, dict):
        return value
    if value.get("class_name") == "DTypePolicy":
        return value["config"]["name"]
    out = {}
    for key, v in value.items():
        if key in _KERAS3_ONLY or key in ("module", "registered_name"):
            continue
        if key == "batch_shape":
            key = "batch_input_shape"
        if key == "inbound_nodes":
            v = [[[t["config"]["keras_history"][0], t["config"]["keras_history"][1],
                   t["config"]["keras_history"][2], {}]
                  for t in (n["args"][0] if isinstance(n["args"][0], list) else [n["args"][0]])]
                 for n in v]
            out[key] = v
            continue
        out[key] = _keras2_config(v)
    if out.get("class_name") in ("LSTM", "GRU"):
        out["config"].update(time_major=False, implementation=2)
    return out


def _keras2_name(name, model_name):
    """``model/lstm/lstm_cell/kernel`` (Keras 3) -> ``lstm/lstm_cell/kernel:0`` (Keras 2)."""
    parts = name.split("/")
    if parts[0] == model_name:
        parts = parts[1:]
    return "/".join(parts) + ":0"


def _as_keras2(source, target):
    with h5py.File(source, "r") as f:
        config = json.loads(f.attrs["model_config"])
        weights = {}
        for layer, group in f["model_weights"].items():
            names = [n.decode() if isinstance(n, bytes) else n
                     for n in group.attrs.get("weight_names", [])]
            weights[layer] = [(_keras2_name(n, config["config"]["name"]), group[n][()])
                              for n in names]
    config = _keras2_config(config)
    with h5py.File(target, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = [n.encode() for n in weights]
        for layer, arrays in weights.items():
            g = group.create_group(layer)
            g.attrs["weight_names"] = [n.encode() for n, _ in arrays]
            for n, a in arrays:
                g.create_dataset(n, data=a)
    return config


@pytest.mark.parametrize("name", ["lstm_gru_simple", "bidirectional", "states_and_cells"])
def test_the_keras2_layout_of_recurrent_models_loads(name, tmp_path):
    config = _as_keras2(FIXTURES / f"{name}.h5", tmp_path / "keras2.h5")
    text = json.dumps(config)
    assert "batch_input_shape" in text and "keras_history" not in text
    assert is_keras_file(tmp_path / "keras2.h5")
    _predicts_what_keras_predicted(load_keras_model(tmp_path / "keras2.h5"), name)


def test_a_keras2_gru_without_reset_after_is_the_original_gru(tmp_path):
    config = _as_keras2(FIXTURES / "lstm_gru_simple.h5", tmp_path / "keras2.h5")
    layers = config["config"]["layers"]
    gru = next(e for e in layers if e["config"]["name"] == "gru_before")
    assert gru["config"].pop("reset_after") is False
    with h5py.File(tmp_path / "keras2.h5", "a") as f:
        f.attrs["model_config"] = json.dumps(config)
    model = load_keras_model(tmp_path / "keras2.h5")
    assert not model.get_layer("gru_before").reset_after
    _predicts_what_keras_predicted(model, "lstm_gru_simple")


# -- errors --------------------------------------------------------------------------------------

def _edited(source, target, edit):
    with h5py.File(source, "r") as f:
        config = json.loads(f.attrs["model_config"])
    edit(config["config"]["layers"])
    target.write_bytes(pathlib.Path(source).read_bytes())
    with h5py.File(target, "a") as f:
        f.attrs["model_config"] = json.dumps(config)


def test_an_unknown_cell_is_named_with_the_file_and_the_layer(tmp_path):
    def edit(layers):
        rnn = next(e for e in layers if e["config"]["name"] == "rnn_lstm_cell")
        rnn["config"]["cell"]["class_name"] = "PeepholeLSTMCell"

    _edited(FIXTURES / "states_and_cells.h5", tmp_path / "odd.h5", edit)
    with pytest.raises(DeepkitError, match=r"odd\.h5.*RNN 'rnn_lstm_cell'.*PeepholeLSTMCell"):
        load_model(tmp_path / "odd.h5")


def test_an_unknown_wrapped_layer_is_named(tmp_path):
    def edit(layers):
        layers[1]["config"]["layer"]["class_name"] = "ConvLSTM1D"

    _edited(FIXTURES / "bidirectional.h5", tmp_path / "odd.h5", edit)
    with pytest.raises(DeepkitError, match=r"odd\.h5.*Bidirectional 'bi_lstm'.*ConvLSTM1D"):
        load_model(tmp_path / "odd.h5")


def test_recurrent_weights_that_do_not_fit_are_named(tmp_path):
    def edit(layers):
        gru = next(e for e in layers if e["config"]["name"] == "gru_after")
        gru["config"]["reset_after"] = False

    _edited(FIXTURES / "lstm_gru_simple.h5", tmp_path / "odd.h5", edit)
    with pytest.raises(DeepkitError, match=r"odd\.h5.*'gru_after'.*GRU.*bias"):
        load_model(tmp_path / "odd.h5")


def test_recurrent_layers_are_listed_as_supported():
    from deepkit.models.keras_format import SUPPORTED_LAYERS
    assert {"LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "TimeDistributed", "Embedding",
            "Masking"} <= set(SUPPORTED_LAYERS)
    assert deepkit.models.load_model is load_model


def test_keras3_hard_sigmoid_is_refused_with_the_layer_named(tmp_path):
    def edit(layers):
        lstm = next(e for e in layers if e["config"]["name"] == "lstm")
        lstm["config"]["recurrent_activation"] = "hard_sigmoid"

    _edited(FIXTURES / "lstm_gru_simple.h5", tmp_path / "odd.h5", edit)
    with pytest.raises(DeepkitError, match=r"odd\.h5.*'lstm' uses hard_sigmoid.*relu6"):
        load_model(tmp_path / "odd.h5")


def test_a_keras2_bidirectional_without_its_backward_layer_config(tmp_path):
    config = _as_keras2(FIXTURES / "bidirectional.h5", tmp_path / "keras2.h5")
    for entry in config["config"]["layers"]:
        entry["config"].pop("backward_layer", None)
    with h5py.File(tmp_path / "keras2.h5", "a") as f:
        f.attrs["model_config"] = json.dumps(config)
    model = load_keras_model(tmp_path / "keras2.h5")
    assert model.get_layer("bi_lstm").backward_layer.go_backwards
    _predicts_what_keras_predicted(model, "bidirectional")
