"""A tour of the engine: lazy NDArrays fitting a linear model by gradient descent.

Every line below returns at once; the dependency engine runs the work in
order behind the scenes, and ``asnumpy()`` waits for the result.

    python examples/engine_demo.py
"""
import time

import numpy as np

import deepkit_engine as dk

nd = dk.nd


def main(samples=20000, features=64, steps=200, lr=0.1):
    dk.random.seed(0)
    true_w = nd.random_normal(shape=(features, 1))
    x = nd.random_uniform(low=-1, high=1, shape=(samples, features))
    y = nd.dot(x, true_w) + 0.01 * nd.random_normal(shape=(samples, 1))

    w = nd.zeros((features, 1))
    start = time.perf_counter()
    for step in range(steps):
        err = nd.dot(x, w) - y                       # (samples, 1)
        grad = nd.dot(x, err, transpose_a=True) * (2.0 / samples)
        w -= lr * grad                               # in place, ordered by the engine
        if step % 50 == 0 or step == steps - 1:
            loss = nd.mean(err * err).asscalar()     # waits for this step only
            print(f"step {step:4d}  mse {loss:.6f}")
    nd.waitall()
    elapsed = time.perf_counter() - start
    error = np.abs(w.asnumpy() - true_w.asnumpy()).max()
    print(f"{steps} steps in {elapsed:.2f}s; max |w - true_w| = {error:.4f}")
    return error


if __name__ == "__main__":
    main()
