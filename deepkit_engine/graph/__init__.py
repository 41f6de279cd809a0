"""One plain graph IR shared by symbols, autograd and the executor, and the
passes over it: shape/type inference, the gradient pass, memory planning and
recompute (mirror)."""
from .node import Graph, Node, topo_order

__all__ = ["Node", "Graph", "topo_order"]
