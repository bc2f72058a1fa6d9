"""Virtual time and the event loop (the role of Xen's common/timer.c and
softirqs, in the shape of SimPy's core).

A heap of (time_ns, priority, seq, timer). Four verbs: schedule, peek, step,
run. Time only moves when the loop steps to the next timer, so the same
timers in the same order always give the same machine; wall-clock pacing is
for a wrapper outside hv/.
"""

from __future__ import annotations

import heapq
from typing import Any, Callable

NS_PER_US = 1_000
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
# The longest interval Xen's timers take (include/xen/time.h).
STIME_DELTA_MAX = (1 << 62) - 1


class Timer:
    """One scheduled callback. ``cancel()`` takes it out of the loop; a
    cancelled timer stays in the heap and is skipped when reached."""

    __slots__ = ("when", "priority", "seq", "fn", "args", "cancelled")

    def __init__(self, when: int, priority: int, seq: int, fn: Callable, args: tuple):
        self.when = when
        self.priority = priority
        self.seq = seq
        self.fn = fn
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    @property
    def active(self) -> bool:
        return not self.cancelled

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        state = " cancelled" if self.cancelled else ""
        return f"<Timer {self.when}ns p{self.priority} #{self.seq} {name}{state}>"


class EventLoop:
    """Nanosecond virtual time and the timers that drive it."""

    def __init__(self, now: int = 0):
        self.now = now
        self._heap: list[tuple[int, int, int, Timer]] = []
        self._seq = 0
        # Called after each timer runs (the hypervisor's pending work).
        self.after_event: Callable[[], None] | None = None

    def schedule(self, when: int, fn: Callable, *args: Any, priority: int = 0) -> Timer:
        """Run ``fn(*args)`` at absolute time ``when`` (never in the past).
        Among timers due at the same time, lower priority runs first, then
        the one scheduled first."""
        if when < self.now:
            when = self.now
        self._seq += 1
        timer = Timer(when, priority, self._seq, fn, args)
        heapq.heappush(self._heap, (when, priority, self._seq, timer))
        return timer

    def after(self, delay: int, fn: Callable, *args: Any, priority: int = 0) -> Timer:
        return self.schedule(self.now + max(0, delay), fn, *args, priority=priority)

    def peek(self) -> int | None:
        """The time of the next live timer, or None when there is none."""
        heap = self._heap
        while heap and heap[0][3].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def step(self) -> bool:
        """Advance to the next live timer and run it. False when idle."""
        if self.peek() is None:
            return False
        timer = heapq.heappop(self._heap)[3]
        self.now = timer.when
        timer.cancelled = True  # fired: no longer pending
        timer.fn(*timer.args)
        if self.after_event is not None:
            self.after_event()
        return True

    def run(self, until: int | None = None) -> int:
        """Run timers due at or before ``until`` (all of them when None),
        then leave the clock at ``until``. Returns how many ran."""
        ran = 0
        heap = self._heap
        heappop = heapq.heappop
        limit = until if until is not None else float("inf")
        while heap:
            when, _prio, _seq, timer = heap[0]
            if timer.cancelled:
                heappop(heap)
                continue
            if when > limit:
                break
            heappop(heap)               # step(), inline: this loop is the machine's pulse
            self.now = when
            timer.cancelled = True
            timer.fn(*timer.args)
            if self.after_event is not None:
                self.after_event()
            ran += 1
        if until is not None and until > self.now:
            self.now = until
        return ran

    def pending(self) -> int:
        return sum(1 for entry in self._heap if not entry[3].cancelled)
