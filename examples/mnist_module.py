"""Handwritten digit recognition with MXNet's Module API, on deepkit.

MXNet 1.x's Module tutorial on MNIST: the step-by-step loop (``forward``,
``update_metric``, ``backward``, ``update``), then ``Module.fit`` with
``mx.callback.Speedometer`` and ``mx.callback.do_checkpoint``, ``predict``
and ``score``, and resuming from a checkpoint with ``Module.load``. Only the
import line differs from MXNet (``from deepkit.compat import mxnet as mx``);
the checkpoints are MXNet's own files, which MXNet loads too.

    python examples/mnist_module.py            # 10 epochs on the full data
    python examples/mnist_module.py --samples 6000 --test-samples 1000 --epochs 2

The last line printed is ``Test accuracy: <value>``.
"""
import argparse
import logging
import os
import tempfile

from deepkit.compat import mxnet as mx

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--epochs", type=int, default=10, help="epochs of Module.fit")
parser.add_argument("--samples", type=int, default=60000, help="training samples to use")
parser.add_argument("--test-samples", type=int, default=10000, help="test samples to use")
parser.add_argument("--batch-size", type=int, default=100)
parser.add_argument("--checkpoint-dir", default=None,
                    help="where do_checkpoint writes (default: a temporary folder)")
parser.add_argument("--seed", type=int, default=None, help="seed for a reproducible run")
args = parser.parse_args()
if args.seed is not None:
    mx.random.seed(args.seed)
folder = args.checkpoint_dir or tempfile.mkdtemp(prefix="mnist_module_")

# -- the MXNet tutorial --------------------------------------------------------------
logging.getLogger().setLevel(logging.INFO)

mnist = mx.test_utils.get_mnist()
train_data = mnist['train_data'][:args.samples].reshape((-1, 784))
train_label = mnist['train_label'][:args.samples]
test_data = mnist['test_data'][:args.test_samples].reshape((-1, 784))
test_label = mnist['test_label'][:args.test_samples]

batch_size = args.batch_size
train_iter = mx.io.NDArrayIter(train_data, train_label, batch_size, shuffle=True)
val_iter = mx.io.NDArrayIter(test_data, test_label, batch_size)

net = mx.sym.Variable('data')
net = mx.sym.FullyConnected(net, name='fc1', num_hidden=128)
net = mx.sym.Activation(net, name='relu1', act_type="relu")
net = mx.sym.FullyConnected(net, name='fc2', num_hidden=64)
net = mx.sym.Activation(net, name='relu2', act_type="relu")
net = mx.sym.FullyConnected(net, name='fc3', num_hidden=10)
net = mx.sym.SoftmaxOutput(net, name='softmax')

# The intermediate-level interface: one epoch by hand
mod = mx.mod.Module(symbol=net, context=mx.cpu(), data_names=['data'],
                    label_names=['softmax_label'])
mod.bind(data_shapes=train_iter.provide_data, label_shapes=train_iter.provide_label)
mod.init_params(initializer=mx.init.Xavier())
mod.init_optimizer(optimizer='sgd', optimizer_params=(('learning_rate', 0.1),
                                                      ('momentum', 0.9)))
metric = mx.metric.create('acc')
train_iter.reset()
metric.reset()
for batch in train_iter:
    mod.forward(batch, is_train=True)
    mod.update_metric(metric, batch.label)
    mod.backward()
    mod.update()
print('Epoch 0 by hand, Training %s' % (metric.get(),))

# The high-level interface: fit with a speedometer and a checkpoint per epoch
model_prefix = os.path.join(folder, 'mx_mlp')
mod = mx.mod.Module(symbol=net)
mod.fit(train_iter, eval_data=val_iter, optimizer='sgd',
        optimizer_params={'learning_rate': 0.1, 'momentum': 0.9},
        initializer=mx.init.Xavier(), eval_metric='acc',
        batch_end_callback=mx.callback.Speedometer(batch_size, 200),
        epoch_end_callback=mx.callback.do_checkpoint(model_prefix),
        num_epoch=args.epochs)

y = mod.predict(val_iter)
assert y.shape == (len(test_label), 10)
score = mod.score(val_iter, ['acc'])
print("Accuracy score is %f" % (score[0][1]))

# Resume from the last checkpoint for one more epoch
sym, arg_params, aux_params = mx.model.load_checkpoint(model_prefix, args.epochs)
mod = mx.mod.Module.load(model_prefix, args.epochs)
mod.fit(train_iter, eval_data=val_iter, num_epoch=args.epochs + 1,
        arg_params=arg_params, aux_params=aux_params, begin_epoch=args.epochs,
        optimizer='sgd', optimizer_params={'learning_rate': 0.01, 'momentum': 0.9})
acc = mod.score(val_iter, 'acc')[0][1]
print("Test accuracy: %.4f" % acc)
