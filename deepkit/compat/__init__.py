"""Compatibility layers for scripts written for other frameworks.

``from deepkit.compat import mxnet as mx`` gives MXNet 1.x's ``mx`` namespace
(``mx.nd``, ``mx.sym``, ``mx.model.FeedForward``, ``mx.metric``, ...) over
deepkit, so classic MXNet scripts run after changing their import line.
``deepkit.compat.FeedForward`` is MXNet's one-class trainer. The core
toolkit never imports this package; it imports the core.
"""
from .feedforward import FeedForward

__all__ = ["FeedForward"]
