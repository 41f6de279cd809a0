"""File helpers shared by everything that writes user files."""
import os
import tempfile

__all__ = ["atomic_path"]


class atomic_path:
    """``with atomic_path(target) as tmp:`` write ``tmp``; it replaces ``target`` on success."""

    def __init__(self, target):
        self.target = os.fspath(target)
        self.tmp = None

    def __enter__(self):
        folder = os.path.dirname(os.path.abspath(self.target))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"cannot write {self.target}: folder {folder} does not exist")
        fd, self.tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(self.target),
                                        dir=folder)
        os.close(fd)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.tmp, 0o666 & ~umask)  # as a plainly created file, not mkstemp's 0600
            os.replace(self.tmp, self.target)
        elif os.path.exists(self.tmp):
            os.remove(self.tmp)
        return False
