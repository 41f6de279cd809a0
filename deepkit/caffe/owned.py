"""Owned copies of weights read from a memory-mapped caffemodel.

The reader maps the caffemodel and its blob arrays view the mapping: reading
is zero-copy. What a conversion hands to the user must not be such a view:
another process rewriting the file would change the weights, and truncating
it would kill the process (SIGBUS) at the next read. :class:`OwnedCopier`
copies each blob out of the mapping in chunks and tells the kernel, chunk by
chunk, that the mapped pages already copied are no longer needed
(``madvise(MADV_DONTNEED)``), so the mapping and the copies never both hold
the whole file in memory.
"""
import mmap

import numpy as np

__all__ = ["OwnedCopier", "mapping_of", "CHUNK_BYTES"]

#: How much of a blob is copied before its mapped pages are released.
CHUNK_BYTES = 16 << 20


def mapping_of(array):
    """The ``mmap.mmap`` that ``array``'s memory belongs to, or ``None``.

    Args:
        array: A numpy array (or anything else).

    Returns:
        The mapping at the end of the array's ``base`` chain (through a
        ``memoryview``), or ``None`` when the array owns or borrows other memory.
    """
    seen = 0
    while array is not None and seen < 64:
        if isinstance(array, mmap.mmap):
            return array
        if isinstance(array, memoryview):
            return array.obj if isinstance(array.obj, mmap.mmap) else None
        array = getattr(array, "base", None)
        seen += 1
    return None


class OwnedCopier:
    """Copies arrays out of memory mappings, releasing the copied pages as it goes."""

    def __init__(self, chunk_bytes=CHUNK_BYTES):
        self.chunk_bytes = int(chunk_bytes)
        self._starts = {}  # id(mapping) -> (mapping, address of its first byte)
        self.copied_bytes = 0

    def owned(self, array, dtype=np.float32):
        """``array`` as ``dtype`` in memory of its own (never a view of a file mapping).

        Args:
            array: A numpy array, possibly a view of a memory-mapped file.
            dtype: The dtype of the result.

        Returns:
            A C-contiguous array that owns its data (``array`` itself when it
            already owns it and has the right dtype and layout).
        """
        array = np.asarray(array)
        mapping = mapping_of(array)
        if mapping is None:
            if array.dtype == dtype and array.flags.c_contiguous and array.flags.owndata:
                return array
            return np.array(array, dtype=dtype, order="C", copy=True)
        out = np.empty(array.shape, dtype=dtype)
        src = array.reshape(-1) if array.flags.c_contiguous else None
        if src is None:  # a strided view of the mapping: copy in one go
            np.copyto(out, array, casting="unsafe")
            return out
        flat = out.reshape(-1)
        step = max(1, self.chunk_bytes // max(1, src.itemsize))
        for start in range(0, src.size, step):
            part = src[start:start + step]
            flat[start:start + step] = part
            self._release(mapping, part)
        self.copied_bytes += src.nbytes
        return out

    def _release(self, mapping, part):
        """Drop the whole pages of ``mapping`` that ``part`` covers from this process's memory."""
        if not hasattr(mapping, "madvise") or mapping.closed:
            return
        entry = self._starts.get(id(mapping))
        if entry is None or entry[0] is not mapping:
            base = np.frombuffer(mapping, dtype=np.uint8, count=1).__array_interface__["data"][0]
            entry = self._starts[id(mapping)] = (mapping, base)
        begin = part.__array_interface__["data"][0] - entry[1]
        end = begin + part.nbytes
        page = mmap.PAGESIZE
        first = -(-begin // page) * page
        last = (end // page) * page
        if last > first:
            try:
                mapping.madvise(mmap.MADV_DONTNEED, first, last - first)
            except (OSError, ValueError):
                pass  # releasing is an optimisation; the copy is already made
