"""Machine memory and the heap allocator (the role of Xen's
common/page_alloc.c).

MachineMemory holds the bytes of 4 KiB frames. A frame costs host memory only
once something writes it; until then it reads as zeros. Freeing a frame
scrubs it (drops its bytes), as Xen scrubs pages before reuse.

PageAllocator is a buddy allocator over frame numbers: free blocks of 2^order
frames per order, split on allocation and merged with their buddy on free.
It hands out the lowest free block, so the same requests always give the
same frames.
"""

from __future__ import annotations

import heapq

from hv.public.xen import PAGE_SIZE

ZERO_PAGE = bytes(PAGE_SIZE)
MAX_ORDER = 18          # x86: CONFIG_PAGEALLOC_MAX_ORDER, 2 * PAGETABLE_ORDER


class MachineMemory:
    def __init__(self, nr_frames: int):
        self.nr_frames = nr_frames
        self._frames: dict[int, bytearray] = {}

    def frame(self, mfn: int) -> bytearray:
        """The frame's bytes, writable; materialises it on first use."""
        page = self._frames.get(mfn)
        if page is None:
            if not 0 <= mfn < self.nr_frames:
                raise IndexError(f"mfn {mfn:#x} is beyond machine memory")
            page = self._frames[mfn] = bytearray(PAGE_SIZE)
        return page

    def peek(self, mfn: int) -> bytes | bytearray:
        """The frame's bytes for reading, without materialising it."""
        page = self._frames.get(mfn)
        return ZERO_PAGE if page is None else page

    def is_materialised(self, mfn: int) -> bool:
        return mfn in self._frames

    def scrub(self, mfn: int, count: int = 1) -> None:
        frames = self._frames
        if count <= len(frames):
            for m in range(mfn, mfn + count):
                frames.pop(m, None)
        else:
            end = mfn + count
            for m in [m for m in frames if mfn <= m < end]:
                del frames[m]

    @property
    def resident_frames(self) -> int:
        return len(self._frames)


class PageAllocator:
    """A buddy allocator over [first, first + count)."""

    def __init__(self, first: int, count: int, max_order: int = MAX_ORDER):
        self.max_order = max_order
        self.first = first
        self.end = first + count
        self._free: list[set[int]] = [set() for _ in range(max_order + 1)]
        self._lowest: list[list[int]] = [[] for _ in range(max_order + 1)]
        self.free_pages = 0
        self.total_pages = count
        self.free_range(first, count)

    def alloc(self, order: int, limit: int | None = None) -> int | None:
        """The first frame of a free, aligned block of 2^order frames, all
        below ``limit`` if one is given (a guest's address-width request)."""
        if not 0 <= order <= self.max_order:
            return None
        for have in range(order, self.max_order + 1):
            mfn = self._take_lowest(have)
            if mfn is None:
                continue
            if limit is None or mfn + (1 << order) <= limit:
                break
            self._put(mfn, have)    # the lowest of this size is too high
        else:
            return None
        while have > order:  # split, keeping the lower half
            have -= 1
            self._put(mfn + (1 << have), have)
        self.free_pages -= 1 << order
        return mfn

    def free(self, mfn: int, order: int) -> None:
        self.free_pages += 1 << order
        free = self._free
        while order < self.max_order:
            buddy = mfn ^ (1 << order)
            if buddy not in free[order]:
                break
            free[order].discard(buddy)  # its heap entry goes stale
            mfn = min(mfn, buddy)
            order += 1
        self._put(mfn, order)

    def free_range(self, mfn: int, count: int) -> None:
        """Free any range, as the largest aligned blocks that tile it."""
        end = mfn + count
        while mfn < end:
            order = (mfn & -mfn).bit_length() - 1 if mfn else self.max_order
            order = min(order, self.max_order)
            while mfn + (1 << order) > end:
                order -= 1
            self.free(mfn, order)
            mfn += 1 << order

    def is_free(self, mfn: int) -> bool:
        for order in range(self.max_order + 1):
            base = mfn & ~((1 << order) - 1)
            if base in self._free[order]:
                return True
        return False

    def free_blocks(self):
        """(mfn, order) of every free block, lowest first."""
        return sorted((m, o) for o, blocks in enumerate(self._free) for m in blocks)

    def _put(self, mfn: int, order: int) -> None:
        self._free[order].add(mfn)
        heapq.heappush(self._lowest[order], mfn)

    def _take_lowest(self, order: int) -> int | None:
        heap, free = self._lowest[order], self._free[order]
        while heap:
            mfn = heapq.heappop(heap)
            if mfn in free:
                free.discard(mfn)
                return mfn
        return None
