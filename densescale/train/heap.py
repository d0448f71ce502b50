"""Keep freed memory in the process heap while training on CPU (glibc).

glibc serves allocations above its mmap threshold from a fresh ``mmap`` and gives them back to
the kernel on ``free``, and it trims the top of the heap once enough is free there. A training
step allocates and frees the same large activations every step (a bert-mini feed-forward output
of 48 passages x 180 tokens x 1024 floats is 35 MiB, above the 32 MiB ceiling of glibc's
adaptive threshold), so the kernel maps, page-faults and zeroes them again step after step:
8,600-64,000 minor faults and 0.04-0.39 s of system time per bert-mini step measured here
(bench/RESULTS.md, issue 16). CUDA has torch's caching allocator for this; CPU tensors use
``malloc``. ``retained_heap`` raises glibc's mmap and trim thresholds for the duration of the
training steps, so after the first steps every activation is reused from the heap (0-6 faults
per step measured); afterwards it sets them to where glibc's own adaptation settles
(32 MiB / 64 MiB) and trims the heap, giving the memory back. The arithmetic is untouched; only
where the bytes live changes. The heap keeps the run's peak, not shrinking between steps.

``TrainConfig.retain_heap`` (off by default): on bert-mini it measured +1.0-1.3% pairs per
CPU-second (two of three rounds; the third was noise), while sentence-transformers' MNRL gained
6-21% from the same setting (its steps allocate far more), so it is an option.

Elsewhere than glibc (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import platform
from collections.abc import Iterator
from contextlib import contextmanager

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4
RETAIN = 1 << 30  # allocations up to 1 GiB come from the heap, which keeps up to 2 GiB free
RETAIN_TRIM = (1 << 31) - 1  # (mallopt takes a C int)
GLIBC_SETTLED = (32 << 20, 64 << 20)  # where glibc's adaptive thresholds end up (64-bit)
MMAP_MAX_DEFAULT = 65536


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


@contextmanager
def retained_heap(enabled: bool = True) -> Iterator[bool]:
    """Within the block, freed memory stays in the heap (glibc only); yields whether it does.

    Example:
        >>> with retained_heap() as on:
        ...     run_training_steps()
    """
    libc = _glibc() if enabled else None
    if libc is None:
        yield False
        return
    no_mmap = not libc.mallopt(M_MMAP_THRESHOLD, RETAIN)
    if no_mmap:  # a glibc that refuses so high a threshold: no mmap at all instead
        libc.mallopt(M_MMAP_MAX, 0)
    libc.mallopt(M_TRIM_THRESHOLD, RETAIN_TRIM)
    try:
        yield True
    finally:
        if no_mmap:
            libc.mallopt(M_MMAP_MAX, MMAP_MAX_DEFAULT)
        libc.mallopt(M_MMAP_THRESHOLD, GLIBC_SETTLED[0])
        libc.mallopt(M_TRIM_THRESHOLD, GLIBC_SETTLED[1])
        libc.malloc_trim(0)
