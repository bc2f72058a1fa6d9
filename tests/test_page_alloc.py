"""Machine memory and the buddy heap."""

import pytest

from hv.xen.page_alloc import MachineMemory, PageAllocator, ZERO_PAGE


def test_a_frame_costs_memory_only_once_written():
    mem = MachineMemory(1 << 20)
    assert mem.peek(12345) == ZERO_PAGE and mem.resident_frames == 0
    mem.frame(12345)[0:3] = b"abc"
    assert mem.resident_frames == 1 and mem.peek(12345)[:3] == b"abc"
    mem.scrub(12345)
    assert mem.resident_frames == 0 and mem.peek(12345) == ZERO_PAGE


def test_scrubbing_a_large_range_drops_only_its_frames():
    mem = MachineMemory(1 << 20)
    for mfn in (10, 20, 5000, 9000):
        mem.frame(mfn)[0] = 1
    mem.scrub(0, 6000)
    assert mem.resident_frames == 1 and mem.is_materialised(9000)


def test_frames_beyond_the_machine_do_not_exist():
    mem = MachineMemory(16)
    with pytest.raises(IndexError):
        mem.frame(16)


def test_allocation_is_aligned_lowest_first_and_deterministic():
    heap = PageAllocator(0, 1024, max_order=8)
    assert heap.alloc(0) == 0
    assert heap.alloc(0) == 1
    assert heap.alloc(2) == 4              # next aligned block of 4
    assert heap.alloc(8) == 256
    assert heap.free_pages == 1024 - 1 - 1 - 4 - 256


def test_freed_buddies_merge_back_into_one_block():
    heap = PageAllocator(0, 256, max_order=8)
    got = [heap.alloc(0) for _ in range(256)]
    assert sorted(got) == list(range(256)) and heap.alloc(0) is None
    for mfn in reversed(got):
        heap.free(mfn, 0)
    assert heap.free_blocks() == [(0, 8)] and heap.free_pages == 256


def test_a_range_not_aligned_to_powers_of_two_is_tiled_exactly():
    heap = PageAllocator(3, 13, max_order=8)
    blocks = heap.free_blocks()
    assert sum(1 << o for _, o in blocks) == 13
    assert [(m, o) for m, o in blocks] == [(3, 0), (4, 2), (8, 3)]
    assert not heap.is_free(2) and heap.is_free(3) and heap.is_free(15) and not heap.is_free(16)


def test_exhaustion_and_impossible_orders_return_none():
    heap = PageAllocator(0, 8, max_order=3)
    assert heap.alloc(4) is None and heap.alloc(-1) is None
    assert heap.alloc(3) == 0 and heap.alloc(0) is None
