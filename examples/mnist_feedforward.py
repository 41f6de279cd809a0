"""Handwritten digit recognition with MXNet's FeedForward API, on deepkit.

The classic MXNet MNIST tutorial script (an MLP trained with
``mx.model.FeedForward``); only its import line differs from the MXNet
original: ``from deepkit.compat import mxnet as mx`` instead of
``import mxnet as mx``. The MNIST files ship with deepkit, so it runs offline.

    python examples/mnist_feedforward.py       # 10 epochs: about 97.8% test accuracy
    python examples/mnist_feedforward.py --samples 6000 --test-samples 1000 --epochs 2

The last line printed is ``Test accuracy: <value>``.
"""
import argparse
import logging

from deepkit.compat import mxnet as mx

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--epochs", type=int, default=10, help="training epochs")
parser.add_argument("--samples", type=int, default=60000, help="training samples to use")
parser.add_argument("--test-samples", type=int, default=10000, help="test samples to use")
parser.add_argument("--batch-size", type=int, default=100)
parser.add_argument("--seed", type=int, default=None, help="seed for a reproducible run")
args = parser.parse_args()
if args.seed is not None:
    mx.random.seed(args.seed)

# -- the MXNet tutorial --------------------------------------------------------------
mnist = mx.test_utils.get_mnist()
train_data = mnist['train_data'][:args.samples]
train_label = mnist['train_label'][:args.samples]
test_data = mnist['test_data'][:args.test_samples]
test_label = mnist['test_label'][:args.test_samples]

batch_size = args.batch_size
train_iter = mx.io.NDArrayIter(train_data, train_label, batch_size, shuffle=True)
val_iter = mx.io.NDArrayIter(test_data, test_label, batch_size)

data = mx.sym.var('data')
# Flatten the data from 4-D shape into 2-D (batch_size, num_channel*width*height)
data = mx.sym.flatten(data=data)

# The first fully-connected layer and the corresponding activation function
fc1 = mx.sym.FullyConnected(data=data, num_hidden=128)
act1 = mx.sym.Activation(data=fc1, act_type="relu")

# The second fully-connected layer and the corresponding activation function
fc2 = mx.sym.FullyConnected(data=act1, num_hidden=64)
act2 = mx.sym.Activation(data=fc2, act_type="relu")

# MNIST has 10 classes
fc3 = mx.sym.FullyConnected(data=act2, num_hidden=10)
# Softmax with cross entropy loss
mlp = mx.sym.SoftmaxOutput(data=fc3, name='softmax')

logging.getLogger().setLevel(logging.DEBUG)  # log the progress

model = mx.model.FeedForward(
    ctx=mx.cpu(),                 # Run on CPU
    symbol=mlp,                   # Use the network we just defined
    num_epoch=args.epochs,        # Train for 10 epochs
    learning_rate=0.1,            # Learning rate
    momentum=0.9,                 # Momentum for SGD with momentum
    wd=0.00001,                   # Weight decay for regularization
    initializer=mx.init.Xavier(factor_type="in", magnitude=2.34))  # faster than Uniform(0.01)
model.fit(
    X=train_iter,                 # Training data set
    eval_data=val_iter,           # Testing data set. MXNet computes scores on test set every epoch
    # Logging module to print out progress
    batch_end_callback=mx.callback.Speedometer(batch_size, 200))

# Prediction: the class probabilities of every test image
test_iter = mx.io.NDArrayIter(test_data, None, batch_size)
prob = model.predict(test_iter)
assert prob.shape == (len(test_data), 10)

# Scoring: the accuracy on the labelled test set
test_iter = mx.io.NDArrayIter(test_data, test_label, batch_size)
acc = mx.metric.Accuracy()
model.score(test_iter, acc)
print(acc)
print("Test accuracy: %.4f" % acc.get()[1])
