"""Helper of the kill -9 test: saves a model over and over in forked children and kills them.

Run as ``python kill_saver.py FOLDER MODE ROUNDS SEED`` with ``MODE`` ``save``
(``model.save`` in a loop) or ``checkpoint`` (``fit`` with a ModelCheckpoint
that saves after every batch). Each round forks a child that writes to
``FOLDER/model.h5``, kills it with SIGKILL after a random delay, and loads the
file. Prints one JSON line: kills, loads that succeeded, failures (messages)
and the left-over temporary files seen and remaining.
"""
import json
import os
import signal
import sys
import time
import warnings

os.environ["DEEPKIT_ENGINE"] = "naive"  # no worker threads: forking is safe

import numpy as np  # noqa: E402

import deepkit  # noqa: E402
from deepkit import layers as L  # noqa: E402
from deepkit.callbacks import ModelCheckpoint  # noqa: E402


def _model():
    model = deepkit.Sequential([L.Dense(64, activation="relu", input_shape=(32,), name="h"),
                                L.Dense(4, name="out")], name="saver")
    model.compile("adam", "mse")
    return model


def _child(model, path, mode, x, y):
    if mode == "save":
        while True:
            model.save(path)
    while True:
        model.fit(x, y, batch_size=16, epochs=1000, verbose=0,
                  callbacks=[ModelCheckpoint(path, monitor="loss", save_freq=1)])


def main(folder, mode, rounds, seed):
    rng = np.random.default_rng(seed)
    path = os.path.join(folder, "model.h5")
    x = rng.normal(size=(64, 32)).astype(np.float32)
    y = rng.normal(size=(64, 4)).astype(np.float32)
    model = _model()
    model.fit(x, y, batch_size=16, verbose=0)
    model.save(path)
    kills, loads, failures, leftovers_seen = 0, 0, [], 0
    for _ in range(rounds):
        pid = os.fork()
        if pid == 0:
            try:
                _child(model, path, mode, x, y)
            finally:
                os._exit(0)
        time.sleep(float(rng.uniform(0.05, 0.25)))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        kills += 1
        leftovers_seen += sum(name.startswith(".tmp-") for name in os.listdir(folder))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                deepkit.load_model(path)
            loads += 1
        except Exception as err:  # noqa: BLE001 - reported to the test
            failures.append(f"{type(err).__name__}: {err}")
    model.save(path)  # removes what the killed writers left
    remaining = [name for name in os.listdir(folder) if name.startswith(".tmp-")]
    print(json.dumps({"kills": kills, "loads": loads, "failures": failures,
                      "leftovers_seen": leftovers_seen, "remaining": remaining}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
