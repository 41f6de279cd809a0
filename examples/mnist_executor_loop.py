"""Train an MLP on MNIST with a hand-written executor loop, MXNet style, on deepkit.

The classic MXNet low-level tutorial: bind the symbol with ``simple_bind``,
initialize the arguments, then for every batch copy the data in, run
``forward()``/``backward()`` and update the weights yourself. As in MXNet,
``backward()`` follows a plain ``forward()`` (inference mode; this MLP has no
Dropout or BatchNorm, so its gradients are the training ones). Only the import
line differs from the MXNet original (``from deepkit.compat import mxnet as
mx`` instead of ``import mxnet as mx``). The MNIST files ship with deepkit.

    python examples/mnist_executor_loop.py     # 10 epochs: about 97.8% test accuracy
    python examples/mnist_executor_loop.py --samples 6000 --test-samples 1000 --epochs 2

The last line printed is ``Test accuracy: <value>``.
"""
import argparse
import time

from deepkit.compat import mxnet as mx

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--epochs", type=int, default=10, help="training epochs")
parser.add_argument("--samples", type=int, default=60000, help="training samples to use")
parser.add_argument("--test-samples", type=int, default=10000, help="test samples to use")
parser.add_argument("--batch-size", type=int, default=100)
parser.add_argument("--lr", type=float, default=0.3, help="SGD learning rate")
parser.add_argument("--seed", type=int, default=None, help="seed for a reproducible run")
args = parser.parse_args()
if args.seed is not None:
    mx.random.seed(args.seed)

# -- the MXNet tutorial --------------------------------------------------------------
mnist = mx.test_utils.get_mnist()
train_data = mnist['train_data'][:args.samples].reshape((-1, 784))
train_label = mnist['train_label'][:args.samples]
test_data = mnist['test_data'][:args.test_samples].reshape((-1, 784))
test_label = mnist['test_label'][:args.test_samples]

batch_size = args.batch_size
train_iter = mx.io.NDArrayIter(train_data, train_label, batch_size, shuffle=True)
val_iter = mx.io.NDArrayIter(test_data, test_label, batch_size)

# The network: a multilayer perceptron
data = mx.sym.Variable('data')
fc1 = mx.sym.FullyConnected(data=data, name='fc1', num_hidden=128)
act1 = mx.sym.Activation(data=fc1, name='relu1', act_type="relu")
fc2 = mx.sym.FullyConnected(data=act1, name='fc2', num_hidden=64)
act2 = mx.sym.Activation(data=fc2, name='relu2', act_type="relu")
fc3 = mx.sym.FullyConnected(data=act2, name='fc3', num_hidden=10)
net = mx.sym.SoftmaxOutput(data=fc3, name='softmax')

# Allocate every argument and gradient from the input shape
ex = net.simple_bind(ctx=mx.cpu(), data=(batch_size, 784))

# Initialize the parameters (the data and the label are inputs)
for name, arr in ex.arg_dict.items():
    if name not in ('data', 'softmax_label'):
        arr[:] = mx.random.uniform(-0.1, 0.1, arr.shape)

lr = args.lr
metric = mx.metric.Accuracy()
for epoch in range(args.epochs):
    tic = time.time()
    train_iter.reset()
    metric.reset()
    for batch in train_iter:
        ex.arg_dict['data'][:] = batch.data[0]
        ex.arg_dict['softmax_label'][:] = batch.label[0]
        ex.forward()
        ex.backward()
        # SGD: SoftmaxOutput gives the gradient of the loss summed over the batch
        for w, g in zip(ex.arg_arrays, ex.grad_arrays):
            if g is not None:
                w[:] -= lr * g / batch_size
        metric.update([batch.label[0]], ex.outputs)
    name, value = metric.get()
    print('Epoch %d, Training %s=%f, time %.2fs' % (epoch, name, value, time.time() - tic))

    # Evaluate on the test set (inference mode, no gradients)
    val_iter.reset()
    metric.reset()
    for batch in val_iter:
        ex.arg_dict['data'][:] = batch.data[0]
        ex.forward(is_train=False)
        metric.update([batch.label[0]], ex.outputs)
    name, value = metric.get()
    print('Epoch %d, Validation %s=%f' % (epoch, name, value))

print("Test accuracy: %.4f" % value)
