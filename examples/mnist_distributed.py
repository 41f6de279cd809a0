"""LeNet on MNIST, data parallel: on several devices of one process, or on several processes.

    python examples/mnist_distributed.py                       # one process, one device
    python examples/mnist_distributed.py --devices 2           # one process, cpu(0) and cpu(1)
    mpirun -np 2 python examples/mnist_distributed.py          # two processes (MPI)
    mpirun -np 8 -hostfile hosts python examples/mnist_distributed.py   # a cluster
    srun -n 8 python examples/mnist_distributed.py             # a Slurm cluster

The script is the single-device one plus one line, ``deepkit.distributed.init()``:
under a launcher, ``fit`` gives each process its part of every batch of
``--batch-size`` rows, averages the gradients over the processes, and prints
from rank 0 only. The result equals one process with the same batch size.
"""
import argparse

import deepkit
import deepkit_engine as dk

from mnist_lenet import build_lenet, load


def main(epochs=2, samples=60000, batch_size=128, devices=1, verbose=1, seed=0):
    deepkit.distributed.init()
    deepkit.set_seed(seed)
    (x_train, y_train), (x_test, y_test) = load(samples)

    model = build_lenet()
    model.compile(optimizer=deepkit.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    on = [dk.cpu(i) for i in range(devices)] if devices > 1 else None
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=verbose,
              devices=on)
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=1000, devices=on)
    if deepkit.distributed.is_chief():
        print(f"{deepkit.distributed.size()} process(es) x {devices} device(s): "
              f"test loss {loss:.4f}  test accuracy {accuracy:.4f}", flush=True)
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--samples", type=int, default=60000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--devices", type=int, default=1, help="CPU devices in this process")
    args = parser.parse_args()
    main(args.epochs, args.samples, args.batch_size, args.devices)
