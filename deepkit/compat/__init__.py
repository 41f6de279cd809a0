"""Compatibility layers for scripts written for other frameworks.

``from deepkit.compat import mxnet as mx`` gives MXNet 1.x's ``mx`` namespace
(``mx.nd``, ``mx.sym``, ``mx.model.FeedForward``, ``mx.metric``, ...) over
deepkit, so classic MXNet scripts run after changing their import line.
Nothing is imported here eagerly: the submodules load on first use.
"""
