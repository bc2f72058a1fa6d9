"""Runs of consecutive keys mapped to consecutive values (the role of Xen's
rangeset.c, extended with a value and a tag per run).

The P2M (gpfn -> mfn) and the M2P with page ownership (mfn -> gpfn, owner)
are both mostly long linear runs: a domain's memory is a few large extents.
Storing runs keeps a 1 TiB machine with a thousand domains in a few thousand
entries; a lookup is a bisect, and a change splits or merges runs locally.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any, Iterator, NamedTuple


class Run(NamedTuple):
    start: int
    length: int
    value: int | None   # value of ``start``; key k maps to value + (k - start)
    tag: Any

    @property
    def end(self) -> int:
        return self.start + self.length

    def value_at(self, key: int) -> int | None:
        return None if self.value is None else self.value + (key - self.start)


class RangeMap:
    __slots__ = ("_starts", "_runs", "_total")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._runs: list[Run] = []
        self._total = 0

    # ------------------------------------------------------------ queries
    def __len__(self) -> int:
        """How many keys are mapped."""
        return self._total

    def nr_runs(self) -> int:
        return len(self._runs)

    def find(self, key: int) -> Run | None:
        i = bisect_right(self._starts, key) - 1
        if i >= 0:
            run = self._runs[i]
            if key < run.start + run.length:
                return run
        return None

    def get(self, key: int) -> tuple[int | None, Any] | None:
        """(value, tag) for ``key``, or None when unmapped."""
        run = self.find(key)
        if run is None:
            return None
        return run.value_at(key), run.tag

    def runs(self, start: int = 0, end: int | None = None) -> Iterator[Run]:
        """The runs overlapping [start, end), clipped to it. They are read
        from the live map: a caller that changes the map while walking them
        takes a list() first."""
        runs = self._runs
        for i in range(max(0, bisect_right(self._starts, start) - 1), len(runs)):
            run = runs[i]
            if end is not None and run.start >= end:
                break
            if run.end <= start:
                continue
            lo = max(run.start, start)
            hi = run.end if end is None else min(run.end, end)
            yield Run(lo, hi - lo, run.value_at(lo), run.tag)

    def overlaps(self, start: int, length: int) -> bool:
        return next(self.runs(start, start + length), None) is not None

    # ------------------------------------------------------------ updates
    def set(self, start: int, length: int, value: int | None, tag: Any = None) -> None:
        """Map [start, start+length) to value.. (or to None), replacing what
        was there."""
        if length <= 0:
            return
        self.clear(start, length)
        i = bisect_right(self._starts, start)
        self._starts.insert(i, start)
        self._runs.insert(i, Run(start, length, value, tag))
        self._total += length
        self._merge_around(i)

    def clear(self, start: int, length: int) -> None:
        """Unmap [start, start+length)."""
        if length <= 0 or not self._runs:
            return
        end = start + length
        i = max(0, bisect_right(self._starts, start) - 1)
        starts, runs = self._starts, self._runs
        while i < len(runs):
            run = runs[i]
            if run.start >= end:
                break
            if run.end <= start:
                i += 1
                continue
            pieces = []
            if run.start < start:
                pieces.append(Run(run.start, start - run.start, run.value, run.tag))
            if run.end > end:
                pieces.append(Run(end, run.end - end, run.value_at(end), run.tag))
            removed = run.length - sum(p.length for p in pieces)
            self._total -= removed
            runs[i:i + 1] = pieces
            starts[i:i + 1] = [p.start for p in pieces]
            i += len(pieces)

    def _merge_around(self, i: int) -> None:
        runs, starts = self._runs, self._starts
        if i + 1 < len(runs) and _joins(runs[i], runs[i + 1]):
            a, b = runs[i], runs[i + 1]
            runs[i:i + 2] = [Run(a.start, a.length + b.length, a.value, a.tag)]
            del starts[i + 1]
        if i > 0 and _joins(runs[i - 1], runs[i]):
            a, b = runs[i - 1], runs[i]
            runs[i - 1:i + 1] = [Run(a.start, a.length + b.length, a.value, a.tag)]
            del starts[i]

    def __iter__(self) -> Iterator[Run]:
        return iter(list(self._runs))

    def __repr__(self) -> str:
        return f"RangeMap({self._runs!r})"


def _joins(a: Run, b: Run) -> bool:
    if a.end != b.start or a.tag != b.tag:
        return False
    if a.value is None or b.value is None:
        return a.value is None and b.value is None
    return a.value + a.length == b.value
