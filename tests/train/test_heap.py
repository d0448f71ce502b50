"""densescale.train.heap: freed activations stay in the heap during training (glibc)."""

from __future__ import annotations

import platform
import resource

import pytest
import torch

from densescale.train.heap import retained_heap

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def _faults_of_second_alloc(mib: int = 40) -> int:
    """Minor page faults of allocating and touching ``mib`` MiB right after freeing as much."""
    n = mib * (1 << 20) // 4
    torch.empty(n).fill_(1.0)  # allocated, touched, freed
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.empty(n).fill_(2.0)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not GLIBC, reason="glibc's allocator only")
def test_a_freed_large_tensor_is_reused_without_page_faults():
    pages = 40 * (1 << 20) // 4096
    with retained_heap() as on:
        assert on
        inside = _faults_of_second_alloc()
    after = _faults_of_second_alloc()  # thresholds back where glibc settles: mmap per 40 MiB
    assert inside < pages // 10, inside
    assert after > pages // 2, after


def test_disabled_is_a_no_op():
    with retained_heap(False) as on:
        assert on is False


def test_train_summary_says_whether_the_heap_was_retained(tmp_path, squad_path):
    from densescale.train import TrainConfig, train

    for retain, want in ((True, GLIBC), (False, False)):
        out = tmp_path / str(retain)
        s = train(TrainConfig(data=str(squad_path), model="bert-tiny", init="scratch", steps=2,
                              batch_size=4, negatives=8, train_size=64, eval_split=None,
                              passage_max_len=32, out=str(out),
                              **({"retain_heap": True} if retain else {})),
                  progress=False)
        assert s.heap_retained is want
