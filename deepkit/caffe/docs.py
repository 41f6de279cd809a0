"""The supported-layer list of ``docs/caffe.md``, generated from the converter's registry.

``supported_layers_markdown()`` gives the table; ``update_doc(path)`` rewrites
the part of a Markdown file between the ``<!-- caffe-layers:begin -->`` and
``<!-- caffe-layers:end -->`` markers with it (atomically), and
``python -m deepkit.caffe.docs docs/caffe.md`` does that from the shell.
"""
import sys

from deepkit_engine.base import DeepkitError
from deepkit_engine.fileio import atomic_path

from .layers import REGISTRY, UNSUPPORTED_HINTS, supported_layers

__all__ = ["supported_layers_markdown", "update_doc", "BEGIN", "END"]

BEGIN = "<!-- caffe-layers:begin -->"
END = "<!-- caffe-layers:end -->"


def supported_layers_markdown():
    """The supported Caffe layer types as a Markdown table, then the known unsupported ones.

    Returns:
        Markdown text (ends with a newline).
    """
    lines = ["| Caffe type | Becomes |", "| --- | --- |"]
    for caffe_type, what in supported_layers():
        lines.append(f"| `{caffe_type}` | {what.replace('|', '/')} |")
    refused = sorted(t for t in UNSUPPORTED_HINTS if t not in REGISTRY)
    lines += ["", "Known but not converted (the error says what to do; map them to your own "
              "function with `register_layer`):", ""]
    for caffe_type in refused:
        lines.append(f"- `{caffe_type}`: {UNSUPPORTED_HINTS[caffe_type]}")
    return "\n".join(lines) + "\n"


def update_doc(path):
    """Replace the generated section of the Markdown file ``path`` with the current list.

    Args:
        path: The Markdown file holding the :data:`BEGIN` and :data:`END` markers.

    Returns:
        Whether the file changed.

    Raises:
        DeepkitError: The markers are missing.
    """
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        raise DeepkitError(f"{path}: no '{BEGIN}' ... '{END}' section to update")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{supported_layers_markdown()}{END}{tail}"
    if new == text:
        return False
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(new)
    return True


if __name__ == "__main__":
    for target in sys.argv[1:] or ["docs/caffe.md"]:
        print(f"{target}: {'updated' if update_doc(target) else 'up to date'}")
