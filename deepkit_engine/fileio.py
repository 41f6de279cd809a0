"""File helpers shared by everything that writes user files.

:class:`atomic_path` writes under a temporary name in the target's folder,
flushes the file to disk (``fsync``), renames it over the target and flushes
the folder, so after a crash the target holds either the old or the new
content, never a mix. The temporary name carries the writer's process id
(``.tmp-<pid>-<random>-<name>``): a writer killed before the rename leaves
it behind, and the next save to the same target (or :func:`remove_leftovers`)
removes the left-overs of writers that are no longer running.
"""
import os
import re
import secrets

__all__ = ["atomic_path", "remove_leftovers", "TMP_PREFIX"]

#: How temporary files start; the process id and a random part follow.
TMP_PREFIX = ".tmp-"


def _pattern(target):
    name = re.escape(os.path.basename(target))
    return re.compile(rf"{re.escape(TMP_PREFIX)}(\d+)-[0-9a-f]+-{name}\Z")


def _running(pid):
    """Whether process ``pid`` exists on this machine."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists (owned by someone else) or we cannot tell: keep its file
    return True


def remove_leftovers(target):
    """Remove temporary files that dead writers left next to ``target``.

    Args:
        target: The file whose left-overs to remove (it need not exist).

    Returns:
        The paths removed.
    """
    target = os.fspath(target)
    folder = os.path.dirname(os.path.abspath(target))
    pattern = _pattern(target)
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = pattern.match(name)
        if match is None or _running(int(match.group(1))):
            continue
        path = os.path.join(folder, name)
        try:
            os.remove(path)
            removed.append(path)
        except FileNotFoundError:
            pass  # another writer cleaned it up first
    return removed


def _fsync_path(path, directory=False):
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:
            return  # folders cannot be opened on some systems (Windows): nothing to flush
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


class atomic_path:
    """``with atomic_path(target) as tmp:`` write ``tmp``; it replaces ``target`` on success.

    On success the file and its folder are flushed to disk; on failure the
    temporary file is removed and ``target`` keeps its old content.
    """

    def __init__(self, target):
        self.target = os.fspath(target)
        self.tmp = None

    def __enter__(self):
        folder = os.path.dirname(os.path.abspath(self.target))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"cannot write {self.target}: folder {folder} does not exist")
        remove_leftovers(self.target)
        name = f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{os.path.basename(self.target)}"
        self.tmp = os.path.join(folder, name)
        fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(self.tmp, 0o666 & ~umask)  # as a plainly created file, not 0600
                _fsync_path(self.tmp)
                os.replace(self.tmp, self.target)
            except BaseException:
                if os.path.exists(self.tmp):
                    os.remove(self.tmp)
                raise
            _fsync_path(os.path.dirname(os.path.abspath(self.target)), directory=True)
        elif os.path.exists(self.tmp):
            os.remove(self.tmp)
        return False
