"""RBMs and DBNs: the CD update against plain numpy, learning on MNIST, PCD chains,
DBN to Sequential, files and pictures, and bad input."""
import h5py
import numpy as np
import pytest

import deepkit
from deepkit import callbacks
from deepkit.datasets import mnist
from deepkit.rbm import DBN, RBM, contrastive_divergence, load_dbn, load_rbm
from deepkit.utils import image_grid
from deepkit_engine import nd

# -- the update against a float64 numpy implementation ---------------------------------------


def _sig(x):
    return 1 / (1 + np.exp(-x))


def _reference_cd(v0, hn, vn, W, bv, bh, vW, vbv, vbh, chain, k, persistent, lr, mom, wd,
                  target, cost, visible, hidden):
    """CD-k / PCD-k written out plainly (Hinton's practical guide), float64."""
    def h_mean(v):
        x = v @ W + bh
        return (_sig(x) if hidden == "bernoulli" else np.maximum(x, 0)), x

    def h_sample(mean, x, noise):
        if hidden == "bernoulli":
            return (noise < mean).astype(float)
        return np.maximum(x + np.sqrt(_sig(x)) * noise, 0)

    def v_mean(h):
        x = h @ W.T + bv
        return _sig(x) if visible == "bernoulli" else x

    def v_sample(mean, noise):
        return (noise < mean).astype(float) if visible == "bernoulli" else mean + noise

    n = len(v0)
    ph0, x0 = h_mean(v0)
    h = h_sample(ph0, x0, hn[0])
    error = ((v_mean(h) - v0) ** 2).sum() / n
    if persistent:
        m, x = h_mean(chain)
        h = h_sample(m, x, hn[0])
    for step in range(k):
        pv = v_mean(h)
        if step < k - 1:
            m, x = h_mean(v_sample(pv, vn[step]))
            h = h_sample(m, x, hn[step + 1])
    new_chain = v_sample(pv, vn[-1]) if persistent else chain
    ph_neg, _ = h_mean(pv)
    gW = (v0.T @ ph0 - pv.T @ ph_neg) / n
    gbv = (v0 - pv).mean(0)
    gbh = (ph0 - ph_neg).mean(0)
    if cost:
        push = cost * (target - ph0.mean(0))
        gbh = gbh + push
        gW = gW + np.outer(v0.mean(0), push)
    gW = gW - wd * W
    vW, vbv, vbh = mom * vW + lr * gW, mom * vbv + lr * gbv, mom * vbh + lr * gbh
    return W + vW, bv + vbv, bh + vbh, vW, vbv, vbh, new_chain, error


@pytest.mark.parametrize("visible,hidden,k,persistent,cost", [
    ("bernoulli", "bernoulli", 1, False, 0.0),
    ("bernoulli", "bernoulli", 3, False, 0.1),
    ("bernoulli", "bernoulli", 2, True, 0.0),
    ("gaussian", "relu", 1, False, 0.0),
    ("gaussian", "relu", 2, True, 0.05),
])
def test_cd_update_equals_numpy_for_the_same_random_numbers(visible, hidden, k, persistent,
                                                            cost, rng):
    n, nv, nh = 7, 6, 5
    v0 = rng.random((n, nv)) if visible == "bernoulli" else rng.standard_normal((n, nv))
    noise = (lambda kind, shape: rng.random(shape) if kind == "bernoulli"
             else rng.standard_normal(shape))
    hn, vn = noise(hidden, (k, n, nh)), noise(visible, (k - 1 + persistent, n, nv))
    start = {"weight": rng.normal(0, 0.3, (nv, nh)), "visible_bias": rng.normal(0, 0.1, nv),
             "hidden_bias": rng.normal(0, 0.1, nh), "weight_velocity": rng.normal(0, 0.01, (nv, nh)),
             "visible_velocity": rng.normal(0, 0.01, nv), "hidden_velocity": rng.normal(0, 0.01, nh),
             "chain": rng.random((n, nv)) if persistent else np.zeros((1, 1))}
    hyper = {"k": k, "persistent": persistent, "learning_rate": 0.05, "momentum": 0.9,
             "weight_decay": 0.01, "sparsity_target": 0.1, "sparsity_cost": cost,
             "visible": visible, "hidden": hidden}
    state = {name: nd.array(v, dtype="float64") for name, v in start.items()}
    error = contrastive_divergence(nd.array(v0, dtype="float64"), nd.array(hn, dtype="float64"),
                                   nd.array(vn, dtype="float64"), state, **hyper)
    expected = _reference_cd(v0, hn, vn, *start.values(), k, persistent, 0.05, 0.9, 0.01, 0.1,
                             cost, visible, hidden)
    for name, value in zip(list(start), expected[:7]):
        np.testing.assert_allclose(state[name].asnumpy(), value, rtol=1e-6, atol=1e-6,
                                   err_msg=name)
    np.testing.assert_allclose(error.asnumpy()[0], expected[7], rtol=1e-6)


def test_noise_of_the_wrong_shape_is_named():
    state = {name: nd.zeros(s) for name, s in (
        ("weight", (4, 3)), ("visible_bias", (4,)), ("hidden_bias", (3,)),
        ("weight_velocity", (4, 3)), ("visible_velocity", (4,)), ("hidden_velocity", (3,)),
        ("chain", (1, 1)))}
    with pytest.raises(Exception, match=r"hidden_noise has shape \(1, 2, 4\), expected "
                                        r"\(1, 2, 3\)"):
        contrastive_divergence(nd.zeros((2, 4)), nd.zeros((1, 2, 4)), nd.zeros((0, 2, 4)),
                               state)


# -- training ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits(shared_data):
    (x, y), (xt, yt) = mnist.load_data(path=shared_data / "mnist")
    return (x[:3000].reshape(-1, 784).astype(np.float32) / 255, y[:3000],
            xt[:1000].reshape(-1, 784).astype(np.float32) / 255, yt[:1000])


def test_reconstruction_error_falls_on_mnist_and_fit_runs_callbacks(digits):
    x = digits[0]
    deepkit.set_seed(0)
    rbm = RBM(64, learning_rate=0.1, momentum=0.5)
    before = rbm_error = None
    seen = []

    class Record(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((epoch, sorted(logs)))

    rbm.build(784, x)
    before = rbm.reconstruction_error(x[:500])
    history = rbm.fit(x, epochs=3, batch_size=50, verbose=0, callbacks=[Record()])
    rbm_error = history.history["reconstruction_error"]
    assert rbm_error[-1] < 0.75 * rbm_error[0]
    assert rbm.reconstruction_error(x[:500]) < 0.5 * before
    assert seen == [(e, ["free_energy", "pseudo_likelihood", "reconstruction_error"])
                    for e in range(3)]
    assert history.history["pseudo_likelihood"][-1] > history.history["pseudo_likelihood"][0]
    assert rbm.transform(x[:10]).shape == (10, 64)
    assert ((rbm.transform(x[:10]) >= 0) & (rbm.transform(x[:10]) <= 1)).all()


def test_early_stopping_stops_an_rbm(digits):
    deepkit.set_seed(0)
    rbm = RBM(16, learning_rate=0.0)
    stop = callbacks.EarlyStopping(monitor="reconstruction_error", patience=0, min_delta=1.0)
    history = rbm.fit(digits[0][:500], epochs=10, batch_size=50, verbose=0, callbacks=[stop])
    assert len(history.history["reconstruction_error"]) == 2


def test_pcd_chains_persist_across_batches(digits):
    x = digits[0][:400]
    deepkit.set_seed(1)
    rbm = RBM(32, learning_rate=0.05)
    rbm.fit(x, epochs=1, batch_size=100, persistent=True, verbose=0)
    chain = rbm.state["chain"]
    first = chain.asnumpy().copy()
    rbm.fit(x, epochs=1, batch_size=100, persistent=True, verbose=0)
    assert rbm.state["chain"] is chain, "the same chains continue in the next fit"
    second = chain.asnumpy()
    assert not np.array_equal(first, second)
    assert set(np.unique(second)) <= {0.0, 1.0}, "chains hold sampled binary states"
    assert not any(np.array_equal(row, sample) for row in second for sample in x[:100])


def test_dbn_to_model_gives_the_rbm_stack_activations_and_fine_tunes(digits):
    x, y, xt, yt = digits
    deepkit.set_seed(0)
    dbn = DBN([64, 32], learning_rate=0.1)
    dbn.fit(x[:1000], epochs=1, batch_size=50, verbose=0)
    features = dbn.to_model()
    np.testing.assert_allclose(features.predict(xt[:50], verbose=0), dbn.transform(xt[:50]),
                               rtol=1e-5, atol=1e-6)
    model = dbn.to_model(num_classes=10)
    assert [l.name for l in model.layers][-3:] == ["dbn_dense0", "dbn_dense1", "dbn_classifier"]
    model.compile(deepkit.optimizers.SGD(learning_rate=0.5, momentum=0.9),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=50, epochs=3, verbose=0)
    assert model.evaluate(xt, yt, verbose=0)[1] > 0.8


def test_rbm_and_dbn_files_round_trip(tmp_path, rng):
    x = rng.random((60, 12)).astype(np.float32)
    rbm = RBM(5, visible="bernoulli", hidden="relu", learning_rate=0.01, name="small")
    rbm.fit(x, epochs=1, batch_size=20, verbose=0)
    rbm.save(tmp_path / "rbm.h5")
    loaded = load_rbm(tmp_path / "rbm.h5")
    assert loaded.get_config() == rbm.get_config()
    for a, b in zip(loaded.get_weights(), rbm.get_weights()):
        np.testing.assert_array_equal(a, b)
    with h5py.File(tmp_path / "rbm.h5") as f:
        assert f.attrs["format"] == "deepkit.rbm"
        assert "crc32" in f["weights/small/weight"].attrs
    dbn = DBN([6, 4], learning_rate=0.01)
    dbn.fit(x, epochs=1, batch_size=20, verbose=0)
    dbn.save(tmp_path / "dbn.h5")
    again = load_dbn(tmp_path / "dbn.h5")
    np.testing.assert_array_equal(again.transform(x), dbn.transform(x))
    with pytest.raises(ValueError, match="holds 'deepkit.dbn', not an deepkit.rbm file"):
        load_rbm(tmp_path / "dbn.h5")


def test_filters_and_samples_are_drawn_as_png_grids(tmp_path, rng):
    x = (rng.random((40, 16)) > 0.5).astype(np.float32)
    rbm = RBM(9, learning_rate=0.1)
    rbm.fit(x, epochs=1, batch_size=10, verbose=0)
    grid = rbm.save_filters(tmp_path / "filters.png", (4, 4), cols=3)
    assert grid.shape == (3 * 5 - 1, 3 * 5 - 1)
    samples = rbm.save_samples(tmp_path / "samples.png", (4, 4), n=4, gibbs_steps=20, cols=2)
    assert samples.shape == (9, 9)
    from matplotlib import image  # optional dependency: reading the PNG back
    assert image.imread(tmp_path / "filters.png").shape[:2] == (14, 14)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["filters.png", "samples.png"]


def test_image_grid_layout_and_bad_input():
    images = np.arange(2 * 2 * 3).reshape(3, 2, 2)
    grid = image_grid(images, cols=2, normalize=None, padding=1)
    assert grid.shape == (5, 5)
    np.testing.assert_array_equal(grid[:2, 3:], np.clip(images[1], 0, 1))
    with pytest.raises(ValueError, match=r"image_grid: images must have shape .* got \(4, 4\)"):
        image_grid(np.zeros((4, 4)))


def test_bernoulli_data_outside_unit_interval_is_refused_with_values():
    rbm = RBM(4, name="pixels")
    x = np.zeros((5, 3), np.float32)
    x[2, 1] = 255
    with pytest.raises(ValueError, match=r"RBM 'pixels'.fit: Bernoulli visible units need data in "
                                         r"\[0, 1\], got values from 0 to 255 \(first bad "
                                         r"sample: 2\)"):
        rbm.fit(x, verbose=0)
    with pytest.raises(ValueError, match="visible='gaussain' must be one of bernoulli, gaussian"):
        RBM(4, visible="gaussain")


def test_same_seed_same_training(rng):
    x = rng.random((80, 10)).astype(np.float32)
    weights = []
    for _ in range(2):
        deepkit.set_seed(7)
        rbm = RBM(4, learning_rate=0.1)
        rbm.fit(x, epochs=2, batch_size=20, k=2, persistent=True, verbose=0)
        weights.append(rbm.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
    deepkit.set_seed(8)
    other = RBM(4, learning_rate=0.1)
    other.fit(x, epochs=2, batch_size=20, k=2, persistent=True, verbose=0)
    assert not np.array_equal(other.get_weights()[0], weights[0][0])


def test_gibbs_samples_come_from_what_the_rbm_learned():
    pattern = np.array([1, 0, 1, 1, 0, 0, 1, 0], np.float32)
    x = np.tile(pattern, (200, 1))
    deepkit.set_seed(0)
    rbm = RBM(6, learning_rate=0.5, momentum=0.5, weight_decay=0.0)
    rbm.fit(x, epochs=20, batch_size=20, verbose=0)
    samples = rbm.sample(50, gibbs_steps=200)
    assert samples.shape == (50, 8)
    np.testing.assert_allclose(samples.mean(axis=0), pattern, atol=0.1)
    start = np.tile(1 - pattern, (5, 1))
    assert np.abs(rbm.sample(5, gibbs_steps=0, init=start) - start).max() == 0


def test_momentum_switches_to_final_momentum_after_momentum_epochs(rng):
    x = rng.random((60, 10)).astype(np.float32)

    def trained(fits, **kwargs):
        deepkit.set_seed(3)
        rbm = RBM(4, learning_rate=0.1, momentum=0.5, **kwargs)
        for momentum, epochs in fits:
            rbm.momentum = momentum
            rbm.fit(x, epochs=epochs, batch_size=20, verbose=0)
        return rbm.get_weights()

    scheduled = trained([(0.5, 3)], final_momentum=0.9, momentum_epochs=1)
    by_hand = trained([(0.5, 1), (0.9, 2)])  # velocities carry over from one fit to the next
    constant = trained([(0.5, 3)])
    for a, b in zip(scheduled, by_hand):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert not np.allclose(scheduled[0], constant[0], atol=1e-4)
    rbm = RBM(4, final_momentum=0.9, momentum_epochs=5)
    assert [rbm.current_momentum(e) for e in (0, 4, 5, 9)] == [0.5, 0.5, 0.9, 0.9]
    with pytest.raises(ValueError, match=r"RBM 'rbm': final_momentum must be in \[0, 1\), "
                                         r"got 1.5"):
        RBM(4, final_momentum=1.5)
    with pytest.raises(ValueError, match="momentum_epochs must be an int >= 0, got -1"):
        RBM(4, momentum_epochs=-1)


def test_dbn_momentum_schedule_survives_a_file(tmp_path, rng):
    x = rng.random((40, 8)).astype(np.float32)
    dbn = DBN([5, 3], final_momentum=0.9, momentum_epochs=2, learning_rate=0.05)
    dbn.fit(x, epochs=1, batch_size=20, verbose=0)
    dbn.save(tmp_path / "dbn.h5")
    again = load_dbn(tmp_path / "dbn.h5")
    assert [(r.final_momentum, r.momentum_epochs) for r in again.rbms] == [(0.9, 2)] * 2


def test_dbn_to_model_with_dropout_adds_dropout_layers_and_predicts_alike(digits):
    x, y, xt, yt = digits
    deepkit.set_seed(0)
    dbn = DBN([64, 32], learning_rate=0.1)
    dbn.fit(x[:500], epochs=1, batch_size=50, verbose=0)
    plain = dbn.to_model(num_classes=10)
    model = dbn.to_model(num_classes=10, dropout=0.2, input_dropout=0.1)
    assert [(l.name, getattr(l, "rate", None)) for l in model.layers][-6:] == [
        ("dbn_input_dropout", 0.1), ("dbn_dense0", None), ("dbn_dropout0", 0.2),
        ("dbn_dense1", None), ("dbn_dropout1", 0.2), ("dbn_classifier", None)]
    for name in ("dbn_dense0", "dbn_dense1"):
        for a, b in zip(model.get_layer(name).get_weights(), plain.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    model.get_layer("dbn_classifier").set_weights(plain.get_layer("dbn_classifier").get_weights())
    np.testing.assert_allclose(model.predict(xt[:20], verbose=0), plain.predict(xt[:20], verbose=0),
                               rtol=1e-5, atol=1e-6)
    model.compile(deepkit.optimizers.SGD(learning_rate=0.5, momentum=0.9),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=50, epochs=3, verbose=0)
    assert model.evaluate(xt, yt, verbose=0)[1] > 0.8
    with pytest.raises(ValueError, match=r"DBN 'dbn'.to_model: dropout must be in \[0, 1\), "
                                         r"got 1.0"):
        dbn.to_model(dropout=1.0)
