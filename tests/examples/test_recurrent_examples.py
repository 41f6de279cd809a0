"""The recurrent examples and benchmark run, in reduced form, and learn."""
import importlib.util
import pathlib

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def load(folder, name):
    spec = importlib.util.spec_from_file_location(f"{folder}_{name}", ROOT / folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_mnist_lstm_reduced_run_learns():
    """4000 images, one epoch: well above chance (10%), which a broken LSTM cannot pass."""
    accuracy = load("examples", "mnist_lstm").main(epochs=1, samples=4000, batch_size=32,
                                                   verbose=0, test_samples=2000)
    assert accuracy > 0.5


def test_addition_data_encodes_reversed_questions_and_padded_answers():
    module = load("examples", "addition_rnn")
    x, y = module.make_data(50, 2, np.random.default_rng(0))
    assert x.shape == (50, 5, 12) and y.shape == (50, 3)
    chars = module.CHARS
    for question, answer in zip(x, y):
        text = "".join(chars[i] for i in question.argmax(-1))[::-1].strip()
        a, b = (int(v) for v in text.split("+"))
        assert "".join(chars[int(i)] for i in answer).strip() == str(a + b)


@pytest.mark.slow
def test_addition_rnn_reduced_run_learns():
    """Two-digit sums, 2000 questions, 6 epochs: the sequence-to-sequence loss falls steadily
    (the full run, 50000 questions and 30 epochs, is what reaches the exact-match target)."""
    module = load("examples", "addition_rnn")
    x, y = module.make_data(2000, 2, np.random.default_rng(0))
    model = module.build_model(2)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, batch_size=32, epochs=6, verbose=0).history["loss"]
    assert history[-1] < 0.85 * history[0]


@pytest.mark.slow
def test_lstm_benchmark_runs():
    results = load("benchmarks", "lstm").main(steps=1, repeat=1)
    assert all(ratio > 0 for ratio in results.values())
