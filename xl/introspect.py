"""One domain laid open, for the dashboard's domain screen: its vCPUs,
memory, event channels, grant table and devices, as plain data.

Nothing here makes a hypercall, so neither the machine nor its trace
changes by being looked at. The shared pages (shared_info, the grant
table's frames, every ring) are read as dom0 reads them, through privcmd's
foreign mappings. The hypervisor's own records (each port's state, the
active grant entries and the mappers' maptrack, the scheduler's credit and
priority, a vCPU's runstate) are read from Xen's structures directly, as a
debugger reads them and as `xl debug-keys e`, `g` and `r` print them:
Xen has no interface for credit and priority at all, and its interfaces
for the rest (EVTCHNOP_status, getdomaininfo, GNTTABOP_setup_table) are
hypercalls, which the trace would record."""

from __future__ import annotations

import struct

from hv.public.event_channel import EVTCHN_2L_NR_CHANNELS
from hv.public.grant_table import (
    GRANT_ENTRIES_PER_PAGE_V1, GRANT_ENTRY_V1_SIZE, GTF_PAT, GTF_PCD, GTF_PWT, GTF_accept_transfer,
    GTF_permit_access, GTF_readonly, GTF_reading, GTF_sub_page, GTF_transfer_committed,
    GTF_transfer_completed, GTF_transitive, GTF_type_mask, GTF_writing, GNTMAP_device_map,
    GNTMAP_host_map, GNTMAP_readonly,
)
from hv.public.vcpu import RUNSTATE_NAMES
from hv.public.xen import (
    SHINFO_EVTCHN_MASK, SHINFO_EVTCHN_PENDING, SHINFO_VCPU_INFO, VCPU_INFO_SIZE,
    VCPUINFO_PENDING_SEL, VCPUINFO_UPCALL_MASK, VCPUINFO_UPCALL_PENDING, VIRQ_NAMES,
    XEN_LEGACY_MAX_VCPUS,
)
from hv.xen.event_channel import (
    ECS_FREE, ECS_INTERDOMAIN, ECS_IPI, ECS_PIRQ, ECS_RESERVED, ECS_UNBOUND, ECS_VIRQ,
)
from hv.xen.sched_credit import PRI_NAMES
from hv.xenstore.errors import XsError
from xl.privcmd import HypercallError
from xl.ringview import devices
from xl.timeline import timelines
from xl.toolstack import ToolstackError

_ENTRY = struct.Struct("<HHI")      # grant_entry_v1: flags, domid, frame
_SEL = struct.Struct("<Q")          # evtchn_pending_sel, one bit per 64 ports

# The flag bits each entry type gives meaning to (public/grant_table.h).
_ACCESS_BITS = ((GTF_readonly, "readonly"), (GTF_reading, "reading"), (GTF_writing, "writing"),
                (GTF_PWT, "PWT"), (GTF_PCD, "PCD"), (GTF_PAT, "PAT"), (GTF_sub_page, "sub_page"))
_TRANSFER_BITS = ((GTF_transfer_committed, "transfer_committed"),
                  (GTF_transfer_completed, "transfer_completed"))
_TYPES = {GTF_permit_access: "permit_access", GTF_accept_transfer: "accept_transfer",
          GTF_transitive: "transitive"}
_KINDS = {ECS_UNBOUND: "unbound", ECS_INTERDOMAIN: "interdomain", ECS_PIRQ: "pirq",
          ECS_VIRQ: "virq", ECS_IPI: "ipi"}

# The timeline the screen draws unless asked for another.
TIMELINE_CELLS = 60
TIMELINE_CELL_NS = 20_000_000


def grant_flag_names(flags: int) -> list[str]:
    """A v1 entry's flags by name: its type, then the bits that type uses."""
    kind = flags & GTF_type_mask
    if kind not in _TYPES:
        return ["invalid"] if not flags else ["invalid", f"{flags:#x}"]
    bits = _TRANSFER_BITS if kind == GTF_accept_transfer else _ACCESS_BITS
    return [_TYPES[kind]] + [name for bit, name in bits if flags & bit]


def find_domain(toolstack, domain):
    """The hypervisor's record of a domain named by name or id, found
    without a hypercall (the names are xenstore's)."""
    xen = toolstack.host.xen
    text = str(domain)
    if text.isdigit():
        d = xen.domains.get(int(text))
        if d is not None:
            return d
    else:
        for d in xen.domains:
            if toolstack.name_of(d.domid) == text:
                return d
    raise ToolstackError(f"{text} is an invalid domain identifier")


def domain_detail(toolstack, domain, cells: int = TIMELINE_CELLS,
                  cell_ns: int = TIMELINE_CELL_NS) -> dict:
    """Everything the domain screen shows of ``domain``, by name or id."""
    if not 1 <= cells <= 1000 or not 1_000 <= cell_ns <= 10**10:
        raise ToolstackError("a timeline has 1 to 1000 cells of 1 us to 10 s each")
    d = find_domain(toolstack, domain)
    xen = toolstack.host.xen
    now = xen.clock.now
    shinfo = _peek(toolstack.pc, d.shared_info_mfn) if d.shared_info_mfn else None
    table = grant_entries(toolstack.pc, d)
    strips = timelines(xen.trace, d, now, cells, cell_ns)
    return {
        "domid": d.domid, "name": toolstack.name_of(d.domid), "state": d.state_letters(),
        "paused": d.controller_pause_count > 0, "dying": bool(d.is_dying), "now_ns": now,
        "vcpus": vcpus(d, now, shinfo, strips["strips"]),
        "timeline": {k: strips[k] for k in ("start_ns", "cell_ns", "cells")},
        "memory": memory(toolstack, d),
        "evtchns": event_channels(d, shinfo),
        "grants": grants(xen, d, table),
        "devices": devices(toolstack, d, table),
    }


def _peek(pc, mfn: int) -> bytes | None:
    try:
        return bytes(pc.peek_foreign(mfn))
    except HypercallError:
        return None


def vcpus(d, now: int, shinfo: bytes | None, strips: list[str]) -> list[dict]:
    """Each vCPU as the scheduler holds it ('r' debug key), and its event
    flags in its vcpu_info."""
    rows = []
    for v in d.vcpus:
        svc = v.sched_priv
        sdom = getattr(svc, "sdom", None)
        pri = getattr(svc, "pri", None)
        state, _since, times = v.runstate_snapshot(now)
        row = {"vcpu": v.vcpu_id, "state": RUNSTATE_NAMES[state], "cpu": v.processor,
               "running": v.is_running, "credit": getattr(svc, "credit", None),
               "priority": PRI_NAMES.get(pri, "-" if pri is None else str(pri)),
               "weight": getattr(sdom, "weight", None), "cap": getattr(sdom, "cap", None),
               "runstate_ns": dict(zip(RUNSTATE_NAMES, times)), "timeline": strips[v.vcpu_id],
               "upcall_pending": None, "upcall_mask": None, "pending_sel": None}
        if shinfo is not None and v.vcpu_id < XEN_LEGACY_MAX_VCPUS:
            info = SHINFO_VCPU_INFO + v.vcpu_id * VCPU_INFO_SIZE
            row.update(upcall_pending=shinfo[info + VCPUINFO_UPCALL_PENDING],
                       upcall_mask=shinfo[info + VCPUINFO_UPCALL_MASK],
                       pending_sel=_SEL.unpack_from(shinfo, info + VCPUINFO_PENDING_SEL)[0])
        rows.append(row)
    return rows


def memory(toolstack, d) -> dict:
    """What the domain has and may have (Xen's counts), and what the
    toolstack asked its balloon for (memory/target)."""
    def node(name: str) -> int | None:
        try:
            return int(toolstack.xs.read(f"/local/domain/{d.domid}/memory/{name}"))
        except (XsError, ValueError):
            return None

    return {"current_kib": d.tot_pages * 4, "max_kib": d.max_pages * 4,
            "target_kib": node("target"), "static_max_kib": node("static-max")}


def event_channels(d, shinfo: bytes | None) -> list[dict]:
    """Every port in use, as `xl debug-keys e` lists them, with its
    pending and mask bits read from the shared_info page."""
    rows = []
    if d.evtchn is None:
        return rows
    for chn in d.evtchn.chans:
        if chn.state in (ECS_FREE, ECS_RESERVED) or chn.port >= EVTCHN_2L_NR_CHANNELS:
            continue
        port = chn.port
        row = {"port": port, "kind": _KINDS[chn.state], "vcpu": chn.notify_vcpu_id,
               "remote_dom": None, "remote_port": None, "virq": None, "pirq": None,
               "pending": None, "masked": None}
        if chn.state == ECS_UNBOUND:
            row["remote_dom"] = chn.remote_domid
        elif chn.state == ECS_INTERDOMAIN:
            row.update(remote_dom=chn.remote_dom.domid, remote_port=chn.remote_port)
        elif chn.state == ECS_VIRQ:
            row["virq"] = VIRQ_NAMES.get(chn.virq, str(chn.virq))
        elif chn.state == ECS_PIRQ:
            row["pirq"] = chn.pirq
        if shinfo is not None:
            byte, bit = port >> 3, 1 << (port & 7)
            row["pending"] = bool(shinfo[SHINFO_EVTCHN_PENDING + byte] & bit)
            row["masked"] = bool(shinfo[SHINFO_EVTCHN_MASK + byte] & bit)
        rows.append(row)
    return rows


def grant_entries(pc, d) -> dict[int, tuple[int, int, int]]:
    """The domain's grant entries in use (their flags not cleared), read
    from its table's frames through foreign mappings: ref -> (flags,
    domid, frame). An ended grant keeps its domid and frame; only its
    flags say it is over."""
    gt = d.grant_table
    out: dict[int, tuple[int, int, int]] = {}
    if gt is None:
        return out
    for index, mfn in enumerate(gt.frames):
        page = _peek(pc, mfn)
        if page is None:
            continue
        base = index * GRANT_ENTRIES_PER_PAGE_V1
        for slot in range(GRANT_ENTRIES_PER_PAGE_V1):
            entry = _ENTRY.unpack_from(page, slot * GRANT_ENTRY_V1_SIZE)
            if entry[0]:
                out[base + slot] = entry
    return out


def _pins(pin: int) -> dict:
    """The active entry's four 8-bit pin counters (GNTPIN_*)."""
    return {"host_rw": pin & 0xFF, "host_ro": pin >> 8 & 0xFF,
            "dev_rw": pin >> 16 & 0xFF, "dev_ro": pin >> 24 & 0xFF}


def _how(flags: int) -> str:
    kinds = [name for bit, name in ((GNTMAP_host_map, "host"), (GNTMAP_device_map, "dev"))
             if flags & bit]
    return "+".join(kinds) + (" ro" if flags & GNTMAP_readonly else " rw")


def grants(xen, d, table: dict[int, tuple[int, int, int]]) -> dict:
    """The grant entries in use, each with its decoded flags, Xen's active
    record of it ('g' debug key), and every mapping of it in the other
    domains' maptrack tables."""
    gt = d.grant_table
    if gt is None:
        return {"nr_frames": 0, "max_frames": 0, "entries": []}
    mapped: dict[int, list[dict]] = {}
    for other in xen.domains:
        ogt = other.grant_table
        if ogt is None:
            continue
        for handle, m in sorted(ogt.maptrack.items()):
            if m.domid == d.domid and m.flags:
                mapped.setdefault(m.ref, []).append(
                    {"domid": other.domid, "handle": handle, "how": _how(m.flags)})
    rows = []
    for ref in sorted(set(table) | set(gt.active)):
        flags, domid, frame = table.get(ref, (0, 0, 0))
        act = gt.active.get(ref)
        rows.append({"ref": ref, "flags": flags, "flag_names": grant_flag_names(flags),
                     "domid": domid, "frame": frame,
                     "active": None if act is None else {"domid": act.domid, "mfn": act.mfn,
                                                         **_pins(act.pin)},
                     "mapped_by": mapped.get(ref, [])})
    return {"nr_frames": gt.nr_grant_frames, "max_frames": gt.max_grant_frames, "entries": rows}
