"""Finding, checking and fetching weight files.

Look-up order: ``$DEEPKIT_HOME/models`` (default ``~/.deepkit/models``), the
weights shipped inside the package, then a download from the entry's URL when
one is known and the network allows (checked with sha256, written atomically).
"""
import hashlib
import os
import pathlib
import urllib.request

from deepkit_engine.base import DeepkitError
from deepkit_engine.fileio import atomic_path

__all__ = ["home", "cache_dir", "shipped_dir", "find_weights", "sha256_of", "check"]

SHIPPED = pathlib.Path(__file__).resolve().parent / "weights"


def home():
    return pathlib.Path(os.environ.get("DEEPKIT_HOME", pathlib.Path.home() / ".deepkit"))


def cache_dir():
    return home() / "models"


def shipped_dir():
    return SHIPPED


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check(path, expected, name):
    """Refuse a weights file whose sha256 differs from the registry's."""
    if expected is None:
        return
    actual = sha256_of(path)
    if actual != expected:
        raise DeepkitError(f"weights of '{name}' at {path} have sha256 {actual}, but the zoo "
                           f"expects {expected}: the file is corrupt or not the right one; "
                           "delete it to fall back to the shipped or downloaded copy")


def find_weights(entry, download=None):
    """The path of ``entry``'s weights, checked; raise how to get them if missing."""
    if entry.weights is None:
        raise DeepkitError(f"'{entry.name}' has no pre-trained weights; use pretrained=False")
    candidates = [cache_dir() / entry.weights, SHIPPED / entry.weights]
    for path in candidates:
        if path.is_file():
            check(path, entry.sha256, entry.name)
            return path
    allow = download if download is not None else os.environ.get("DEEPKIT_OFFLINE") != "1"
    if entry.url and allow:
        target = cache_dir() / entry.weights
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with atomic_path(target) as tmp:
                with urllib.request.urlopen(entry.url, timeout=30) as response, \
                        open(tmp, "wb") as out:
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        out.write(chunk)
                check(tmp, entry.sha256, entry.name)
            return target
        except OSError as err:
            reason = f"the download from {entry.url} failed ({err})"
    else:
        reason = "no download URL is known" if not entry.url else "downloads are disabled"
    raise DeepkitError(
        f"no weights for '{entry.name}': looked for {entry.weights} in {cache_dir()} and in "
        f"the package ({SHIPPED}), and {reason}. Put the file in {cache_dir()}"
        + (", or convert the Caffe model with `deepkit zoo import-caffe`"
           if "caffe" in entry.name else ""))
