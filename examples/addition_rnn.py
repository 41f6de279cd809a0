"""Sequence to sequence: learn to add two numbers given as a string ("535+61 " -> "596 ").

    python examples/addition_rnn.py [--digits 3] [--samples 50000] [--epochs 30]

An LSTM encoder reads the question (reversed, which helps), ``RepeatVector``
hands its summary to every answer position, an LSTM decoder unrolls the answer,
and ``TimeDistributed(Dense)`` picks one character per position. Accuracy is
the exact match of the whole answer on held-out pairs.
"""
import argparse

import numpy as np

import deepkit
from deepkit import layers

CHARS = "0123456789+ "


def encode(text, width):
    """One-hot (width, len(CHARS)) of ``text`` padded with spaces."""
    out = np.zeros((width, len(CHARS)), np.float32)
    for i, ch in enumerate(text.ljust(width)):
        out[i, CHARS.index(ch)] = 1.0
    return out


def make_data(samples, digits, rng):
    """Questions (samples, 2*digits+1, 12) reversed, answers as class indices (samples, digits+1)."""
    q_len, a_len = 2 * digits + 1, digits + 1
    seen, questions, answers = set(), [], []
    while len(questions) < samples:
        a, b = (int(rng.integers(0, 10 ** int(rng.integers(1, digits + 1)))) for _ in range(2))
        key = tuple(sorted((a, b)))
        if key in seen:
            continue
        seen.add(key)
        questions.append(encode(f"{a}+{b}".ljust(q_len)[::-1], q_len))
        answers.append([CHARS.index(c) for c in str(a + b).ljust(a_len)])
    return np.stack(questions), np.array(answers, np.float32)


def build_model(digits, hidden=128):
    q_len, a_len = 2 * digits + 1, digits + 1
    return deepkit.Sequential([
        layers.LSTM(hidden, input_shape=(q_len, len(CHARS))),
        layers.RepeatVector(a_len),
        layers.LSTM(hidden, return_sequences=True),
        layers.TimeDistributed(layers.Dense(len(CHARS), activation="softmax")),
    ])


def exact_match(model, x, y):
    """Fraction of answers whose every character is right."""
    guess = model.predict(x, batch_size=1000).argmax(axis=-1)
    return float(np.mean(np.all(guess == y, axis=1)))


def main(digits=3, samples=50000, epochs=30, batch_size=128, verbose=1, seed=0):
    deepkit.set_seed(seed)
    rng = np.random.default_rng(seed)
    x, y = make_data(samples, digits, rng)
    split = len(x) - len(x) // 10
    model = build_model(digits)
    # Adam whose step shrinks from 2e-3 to 1e-4 over the run: late epochs polish, not jump
    steps = epochs * -(-split // batch_size)
    schedule = deepkit.schedules.ExponentialDecay(2e-3, decay_steps=steps, decay_rate=0.05)
    model.compile(optimizer=deepkit.optimizers.Adam(schedule),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:split], y[:split], batch_size=batch_size, epochs=epochs, verbose=verbose)
    accuracy = exact_match(model, x[split:], y[split:])
    print(f"held-out exact-match accuracy {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, default=3)
    parser.add_argument("--samples", type=int, default=50000)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    main(args.digits, args.samples, args.epochs)
