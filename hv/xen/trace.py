"""The trace buffer (the role of xentrace and common/trace.c): every
hypercall, event delivery and domain state change, stamped with virtual
time, in a bounded ring that views and the stepper read."""

from __future__ import annotations

from collections import deque
from typing import Any, Iterator, NamedTuple

from hv.public.xen import DOMID_XEN


class TraceRecord(NamedTuple):
    seq: int
    time: int          # virtual ns
    domid: int         # who acted (DOMID_XEN for the hypervisor itself)
    vcpu: int          # -1 when no vCPU acted
    kind: str          # hypercall, evtchn, domain, vcpu, memory, grant, console
    name: str
    args: Any          # frozen structures, ints or tuples: never mutable
    result: Any
    out: Any = None    # a hypercall's arguments as Xen left them

    def format(self) -> str:
        secs, ns = divmod(self.time, 1_000_000_000)
        who = "xen" if self.domid == DOMID_XEN else f"d{self.domid}"
        if self.vcpu >= 0:
            who += f"v{self.vcpu}"
        text = f"[{secs:5d}.{ns:09d}] {who:<8} {self.kind:<9} {self.name}"
        args = self.args
        if self.kind == "hypercall" and ":" in self.name and args:
            args = args[1:]         # the sub-op is in the name already
        if args is not None and args != ():
            shown = args[0] if isinstance(args, tuple) and len(args) == 1 else args
            text += f" {_brief(shown)}"
        if self.result is not None:
            text += f" = {_brief(self.result)}"
        if self.out is not None and args:
            changed = _changes(args[-1], self.out)
            if changed:
                text += f" -> {changed}"
        return text


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 160 else text[:157] + "..."


def _changes(before: Any, after: Any) -> str:
    """What Xen wrote back: the fields of a structure (or of each in a
    batch) that differ from what the guest passed in."""
    if isinstance(before, tuple) and isinstance(after, tuple) and len(before) == len(after):
        parts = [_changes(b, a) for b, a in zip(before, after)]
        return "; ".join(p or "-" for p in parts) if any(parts) else ""
    fields = getattr(after, "FIELDS", None)
    if fields is None or type(before) is not type(after):
        return "" if after is before else _brief(after)
    return ", ".join(f"{f.name}={getattr(after, f.name)!r}" for f in fields
                     if getattr(after, f.name) != getattr(before, f.name))


class TraceBuffer:
    """A bounded ring of records with a running sequence number, so a reader
    can ask for everything since the last record it saw.

    Records are kept as plain lists (cheap on the hot path, and a result can
    be filled in after what the call caused has been recorded) and handed
    out as TraceRecords."""

    def __init__(self, clock, capacity: int = 65536):
        self._clock = clock
        self._records: deque[list] = deque(maxlen=capacity)
        self.seq = 0
        self.enabled = True

    def emit(self, kind: str, domid: int, vcpu: int, name: str,
             args: Any = None, result: Any = None) -> None:
        if self.enabled:
            self.seq += 1
            self._records.append(
                [self.seq, self._clock.now, domid, vcpu, kind, name, args, result, None])

    def append(self, record: list) -> None:
        """Add a record a caller built itself (the hypercall door does, to
        fill its result in once the call returns)."""
        self._records.append(record)

    def since(self, seq: int) -> list[TraceRecord]:
        """Records with a sequence number above ``seq`` still in the ring."""
        records = self._records
        if not records or records[-1][0] <= seq:
            return []
        first = records[0][0]
        start = max(0, seq - first + 1)
        return [TraceRecord._make(records[i]) for i in range(start, len(records))]

    def __iter__(self) -> Iterator[TraceRecord]:
        return (TraceRecord._make(r) for r in list(self._records))

    def __len__(self) -> int:
        return len(self._records)

    @property
    def capacity(self) -> int:
        return self._records.maxlen or 0

    def clear(self) -> None:
        self._records.clear()
