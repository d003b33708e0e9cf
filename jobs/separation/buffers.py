"""Large float32 arrays kept on unlinked temp files, so resident memory stays flat.

A decoded input or a stem past DISK_BYTES is a shared mapping of a temp file: the OS pages
it (it is not private memory, so the separation child's memory budget does not count it),
and `release` drops pages this process has finished with from its resident set.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from typing import IO

import numpy as np

DISK_BYTES = 256 << 20


class DiskArray(np.ndarray):
    """An ndarray that remembers the mmap behind it (views too), so pages can leave RSS."""

    _map: mmap.mmap | None = None
    _addr: int = 0

    def __array_finalize__(self, obj: object) -> None:
        self._map = getattr(obj, "_map", None)
        self._addr = getattr(obj, "_addr", 0)


def zeros(shape: tuple[int, ...], share: int = 1) -> np.ndarray:
    """A float32 array of zeros: in memory when small, on an unlinked temp file when large
    (when `share` arrays of its size would pass DISK_BYTES)."""
    nbytes = int(np.prod(shape)) * 4
    if nbytes * share < DISK_BYTES:
        return np.zeros(shape, dtype=np.float32)
    with tempfile.TemporaryFile(prefix="btro-stem-") as fh:
        allocate(fh, nbytes)
        return mapped(fh, shape)


def allocate(fh: IO[bytes], nbytes: int) -> None:
    """Make `fh` `nbytes` long, zeros, with its disk space taken now: a full disk fails
    here with OSError (ENOSPC), not later as a SIGBUS when a page of a map of it is written."""
    fh.truncate(nbytes)
    os.posix_fallocate(fh.fileno(), 0, nbytes)


def from_file(fh: IO[bytes], shape: tuple[int, ...]) -> np.ndarray:
    """The raw float32 samples in `fh`: read into memory when small, mapped when large."""
    nbytes = int(np.prod(shape)) * 4
    fh.seek(0)
    if nbytes < DISK_BYTES:
        return np.fromfile(fh, dtype=np.float32, count=int(np.prod(shape))).reshape(shape)
    return mapped(fh, shape)


def mapped(fh: IO[bytes], shape: tuple[int, ...], offset: int = 0) -> np.ndarray:
    """The float32 samples of `fh` from byte `offset` on, as a shared map of the file:
    what is written to the array is written to the file (the file must be long enough)."""
    count = int(np.prod(shape))
    fh.flush()
    whole = mmap.mmap(fh.fileno(), offset + count * 4)  # shared: the file, not private memory
    flat = np.frombuffer(whole, dtype=np.float32, count=count, offset=offset)
    arr = flat.reshape(shape).view(DiskArray)
    arr._map, arr._addr = whole, arr.__array_interface__["data"][0] - offset
    return arr


def release(arr: np.ndarray, start: int, stop: int) -> None:
    """Drop rows [start, stop) of a disk-backed array from this process's resident memory.

    The data stay in the file; touching them again reads them back. No-op for other arrays.
    """
    mapped = getattr(arr, "_map", None)
    if mapped is None or stop <= start or arr.ndim == 0:
        return
    offset = arr.__array_interface__["data"][0] - getattr(arr, "_addr", 0)
    row = arr.strides[0]
    page = mmap.PAGESIZE
    lo = max(0, (offset + start * row + page - 1) // page * page)
    hi = min(len(mapped), (offset + stop * row) // page * page)
    if hi > lo:
        mapped.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
