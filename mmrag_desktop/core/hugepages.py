"""Transparent huge pages for a large block a native library allocated (Linux).

A search in the HNSW graph reads a few thousand vectors scattered over its whole memory
(2.2 GiB for a million photos): with 4 KiB pages nearly every read misses the TLB. Backed by
2 MiB pages, the same search at ``ef`` 160 took 1.71–1.80 ms p50 instead of 2.20 (1,000,000
synthetic 512-d vectors, ``M`` 32, 2-core EPYC; ``mmrag bench --sizes``).

hnswlib allocates that block itself (``malloc``, which maps a block this large on its own) and
fills it while loading, so it is found afterwards as the anonymous mapping that appeared, of
the size hnswlib asked for, and collapsed into huge pages by ``madvise(MADV_COLLAPSE)``
(Linux 6.1): 3.6 s of one core for 2.2 GiB, in a background thread at low priority so the
library opens meanwhile; the pages' contents do not change. Memory that is still to be
written (an index being built) only needs ``MADV_HUGEPAGE``. Where this is not Linux, the
kernel is older or THP is off, nothing happens: a search is just slower.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import threading
from pathlib import Path

log = logging.getLogger(__name__)

MADV_HUGEPAGE = 14
MADV_COLLAPSE = 25
HUGE_PAGE = 2 << 20
MIN_BYTES = 64 << 20
"""Blocks smaller than this are left alone: the TLB covers them well enough (an index of
25,000 photos), and a collapse is not worth a thread."""

_MAPS = Path("/proc/self/maps")


def anonymous_mappings() -> set[tuple[int, int]]:
    """The process's anonymous memory mappings as (start, end) addresses; empty where
    ``/proc/self/maps`` does not exist."""
    try:
        text = _MAPS.read_text()
    except OSError:
        return set()
    found = set()
    for line in text.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 5 or (len(fields) == 6 and not fields[5].strip()):
            start, end = (int(x, 16) for x in fields[0].split("-"))
            found.add((start, end))
    return found


def _uncovered(after: set[tuple[int, int]],
               before: set[tuple[int, int]]) -> list[tuple[int, int]]:
    """The address ranges of the mappings *after* that no mapping *before* covered."""
    old = sorted(before)
    found, i = [], 0
    for start, end in sorted(after):
        while i < len(old) and old[i][1] <= start:
            i += 1
        cursor, j = start, i
        while j < len(old) and old[j][0] < end:
            if old[j][0] > cursor:
                found.append((cursor, old[j][0]))
            cursor, j = max(cursor, old[j][1]), j + 1
        if cursor < end:
            found.append((cursor, end))
    return found


@functools.cache
def _madvise() -> ctypes._CFuncPtr | None:
    name = ctypes.util.find_library("c")
    if name is None or not hasattr(os, "sched_getaffinity"):  # not Linux
        return None
    try:
        function = ctypes.CDLL(name, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    function.restype = ctypes.c_int
    return function


def back_with_huge_pages(before: set[tuple[int, int]], size: int,
                         filled: bool) -> threading.Thread | None:
    """Ask for huge pages for the block of *size* bytes that was mapped since *before*
    (:func:`anonymous_mappings` taken then).

    Args:
        before: the anonymous mappings before the native call that allocated the block.
        size: the bytes it asked for. The block is the one range of addresses mapped since
            *before*, of at least that size and at most a quarter more (the kernel merges
            neighbouring anonymous mappings: hnswlib's smaller arrays allocated with it join
            it), else the one new mapping of such a size (it may lie where another thread's
            memory was freed meanwhile). None or several: nothing is done.
        filled: True when the block has been written already (an index loaded from its
            file): its pages are collapsed in a background thread. False: only advised,
            so the pages it is about to write come huge.

    Returns:
        The collapsing thread (a daemon; tests join it), or None.
    """
    if size < MIN_BYTES:
        return None
    madvise = _madvise()
    after = anonymous_mappings()
    found = None
    for ranges in (_uncovered(after, before), after - before):
        blocks = [(start, end) for start, end in ranges
                  if size <= end - start <= size * 1.25 + 2 * HUGE_PAGE]
        if len(blocks) == 1:
            found = blocks[0]
            break
    if madvise is None or found is None:
        return None
    start, end = found
    start = -(-start // HUGE_PAGE) * HUGE_PAGE  # whole huge pages inside the block
    end = end // HUGE_PAGE * HUGE_PAGE
    if end <= start or madvise(start, end - start, MADV_HUGEPAGE) != 0:
        return None
    if not filled:
        return None

    def collapse() -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except OSError:
            pass
        if madvise(start, end - start, MADV_COLLAPSE) != 0:
            log.debug("huge pages: MADV_COLLAPSE failed (%s)", os.strerror(ctypes.get_errno()))

    thread = threading.Thread(target=collapse, name="huge pages", daemon=True)
    thread.start()
    return thread
