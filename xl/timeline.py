"""A domain's vCPUs' recent runstates as strips of cells, one letter a
cell, rebuilt from the machine's trace as xenalyze rebuilds them from
xentrace's records: Xen keeps only each vCPU's present state and its
totals, never the history.

The scheduler's context switches give the running stretches exactly.
What a vCPU was between them is inferred: blocked from its block (or poll)
until an event raises its upcall, runnable otherwise, offline while its
domain is paused by its controller or the vCPU is down. The vCPU's present
state, from its own record, ends the strip exactly. A stretch the trace
does not reach back to is left blank."""

from __future__ import annotations

from hv.public.vcpu import (
    RUNSTATE_blocked, RUNSTATE_offline, RUNSTATE_runnable, RUNSTATE_running,
)

# One letter per runstate, in RUNSTATE_* order; a blank for "not known";
# and a mark for a cell spent mostly otherwise in which the vCPU ran too
# (an idle guest's runs are microseconds long, and what one looks for).
LETTERS = "Rrbo"
UNKNOWN = " "
RAN_TOO = "+"


def runstate_changes(trace, d) -> list[list[tuple[int, int]]]:
    """Each vCPU's (time, runstate) changes, oldest first, from what the
    trace still holds of the domain's life."""
    labels = {f"d{d.domid}v{v.vcpu_id}": v.vcpu_id for v in d.vcpus}
    nr = len(d.vcpus)
    changes: list[list[tuple[int, int]]] = [[] for _ in range(nr)]
    blocked = [False] * nr
    running = [False] * nr
    paused = False
    first_seen = None
    for r in trace:
        if first_seen is None:
            first_seen = r.time
            if first_seen <= d.created_at:
                # The trace saw the domain made: its vCPUs begin offline.
                for vid in range(nr):
                    changes[vid].append((d.created_at, RUNSTATE_offline))
        if r.time < d.created_at:
            continue            # an earlier domain that had the same id
        kind = r.kind
        if kind == "sched":
            if r.name != "switch":
                continue
            _cpu, prev, nxt = r.args
            vid = labels.get(prev)
            if vid is not None:
                running[vid] = False
                after = (RUNSTATE_blocked if blocked[vid] else
                         RUNSTATE_offline if paused else RUNSTATE_runnable)
                changes[vid].append((r.time, after))
            vid = labels.get(nxt)
            if vid is not None:
                running[vid] = True
                blocked[vid] = False
                changes[vid].append((r.time, RUNSTATE_running))
            continue
        if r.domid != d.domid:
            continue
        vid = r.vcpu
        if kind == "vcpu" and 0 <= vid < nr:
            if r.name in ("block", "poll"):
                blocked[vid] = True
            elif r.name == "down":
                changes[vid].append((r.time, RUNSTATE_offline))
            elif r.name == "up":
                changes[vid].append((r.time, RUNSTATE_runnable))
        elif kind == "evtchn" and 0 <= vid < nr and "upcall" in str(r.result):
            # An upcall raised on a blocked vCPU is what wakes it.
            if blocked[vid] and not running[vid]:
                blocked[vid] = False
                changes[vid].append((r.time, RUNSTATE_offline if paused else RUNSTATE_runnable))
        elif kind == "domain" and r.name in ("pause", "unpause"):
            paused = bool(r.args)
            for other in range(nr):
                if not running[other]:
                    state = (RUNSTATE_offline if paused else
                             RUNSTATE_blocked if blocked[other] else RUNSTATE_runnable)
                    changes[other].append((r.time, state))
    return changes


def strip(changes: list[tuple[int, int]], present: tuple[int, int], start: int, cells: int,
          cell_ns: int) -> str:
    """``cells`` letters from ``start``, ``cell_ns`` each. ``present`` is
    the vCPU's own (state, since when), which overrides what was inferred
    after it. A cell shows the state the vCPU spent most of it in, or
    RAN_TOO when that was not running but it ran as well."""
    state, since = present
    known = [c for c in changes if c[0] < since] + [(since, state)]
    end = start + cells * cell_ns
    out = []
    i = 0
    for cell in range(cells):
        c0 = start + cell * cell_ns
        c1 = c0 + cell_ns
        spent = [0, 0, 0, 0]
        while i + 1 < len(known) and known[i + 1][0] <= c0:
            i += 1
        j = i
        while j < len(known) and known[j][0] < c1:
            t0 = max(known[j][0], c0)
            t1 = min(known[j + 1][0] if j + 1 < len(known) else end, c1)
            if t1 > t0:
                spent[known[j][1]] += t1 - t0
            j += 1
        most = max(range(4), key=lambda s: spent[s])
        if not spent[most]:
            out.append(UNKNOWN)
        elif most != RUNSTATE_running and spent[RUNSTATE_running]:
            out.append(RAN_TOO)
        else:
            out.append(LETTERS[most])
    return "".join(out)


def timelines(trace, d, now: int, cells: int, cell_ns: int) -> dict:
    """Every vCPU's strip ending at ``now``, with where it starts."""
    start = now - cells * cell_ns
    changes = runstate_changes(trace, d)
    return {"start_ns": start, "cell_ns": cell_ns, "cells": cells,
            "strips": [strip(changes[v.vcpu_id], (v.runstate, v.state_entry_time), start,
                             cells, cell_ns) for v in d.vcpus]}
