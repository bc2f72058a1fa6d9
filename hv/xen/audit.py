"""The machine's invariants, checked from scratch (in the spirit of Xen's
audit code): every test ends a scenario by calling ``audit``.

It recomputes, from the mappings, pins and page tables that exist, what
every frame's reference and type counts must be, and compares; it checks
that frames are free or owned exactly once, that the P2M and M2P agree,
that interdomain channels are paired, and that grant pins and flags agree
with the mappings that hold them.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from hv.public.grant_table import (
    GNTMAP_device_map, GNTMAP_host_map, GNTMAP_readonly, GTF_reading, GTF_writing,
)
from hv.public.vcpu import RUNSTATE_runnable, RUNSTATE_running
from hv.public.xen import PTE_MFN_MASK, PAGE_SHIFT, _PAGE_PRESENT, _PAGE_RW
from hv.xen.domain import DOMDYING_alive, DOMDYING_dead, VPF_migrating
from hv.xen.event_channel import (
    ECS_FREE, ECS_INTERDOMAIN, ECS_PIRQ, ECS_RESERVED, ECS_VIRQ, virq_is_global,
)
from hv.xen.grant_table import (
    GNTPIN_devr_inc, GNTPIN_devw_inc, GNTPIN_hstr_inc, GNTPIN_hstw_inc, GNTPIN_write_mask,
)
from hv.xen.sched_credit import CSCHED_FLAG_UNIT_PARKED
from hv.xen.mm import (
    DOMHEAP, PAGE_TABLE_TYPES, PGT_gdt_page, PGT_l1_page_table, PGT_writable_page, XENHEAP,
)

if TYPE_CHECKING:
    from hv.xen.hypervisor import Xen


class AuditError(AssertionError):
    pass


def audit(xen: "Xen") -> list[str]:
    """Every invariant the machine breaks, one line each (empty when sound)."""
    problems: list[str] = []
    _audit_frames(xen, problems)
    _audit_domains_memory(xen, problems)
    _audit_references(xen, problems)
    _audit_grants(xen, problems)
    _audit_event_channels(xen, problems)
    _audit_vcpus(xen, problems)
    _audit_scheduler(xen, problems)
    return problems


def assert_clean(xen: "Xen") -> None:
    problems = audit(xen)
    if problems:
        raise AuditError("machine invariants broken:\n  " + "\n  ".join(problems[:40]))


# ---------------------------------------------------------------- frames
def _audit_frames(xen: "Xen", problems: list[str]) -> None:
    """Each frame of the heap's range is free or owned, never both, never
    neither."""
    heap = xen.heap
    spans = [(m, m + (1 << o), "free") for m, o in heap.free_blocks()]
    spans += [(r.start, r.end, f"d{r.tag[0].domid}") for r in xen.frames.m2p]
    spans.sort()
    free = sum(e - s for s, e, what in spans if what == "free")
    if free != heap.free_pages:
        problems.append(f"heap counts {heap.free_pages} free pages, its blocks hold {free}")
    pos = heap.first
    for start, end, what in spans:
        if start < pos:
            problems.append(f"frames {start:#x}-{end - 1:#x} ({what}) overlap frames before {pos:#x}")
        elif start > pos:
            problems.append(f"frames {pos:#x}-{start - 1:#x} are neither free nor owned")
        pos = max(pos, end)
    if pos != heap.end:
        problems.append(f"frames {pos:#x}-{heap.end - 1:#x} are neither free nor owned")


def _audit_domains_memory(xen: "Xen", problems: list[str]) -> None:
    m2p = xen.frames.m2p
    owned: dict[int, Counter] = {}
    for run in m2p:
        d, pool = run.tag
        owned.setdefault(id(d), Counter())[pool] += run.length
        if xen.domains.get(d.domid) is not d:
            problems.append(f"frames {run.start:#x}+{run.length} belong to d{d.domid}, "
                            "which is not a domain")
        if run.value is None or pool != DOMHEAP:    # the P2M mirrors the guest's RAM only
            continue
        back = list(d.p2m.runs(run.value, run.value + run.length))
        if sum(b.length for b in back) != run.length or any(
                b.value != run.start + (b.start - run.value) for b in back):
            problems.append(f"d{d.domid}: M2P gives mfns {run.start:#x}+{run.length} gpfns "
                            f"from {run.value:#x}, the P2M does not map them back")
    for d in xen.domains:
        counts = owned.get(id(d), Counter())
        if counts[DOMHEAP] != d.tot_pages:
            problems.append(f"d{d.domid}: tot_pages {d.tot_pages}, owns {counts[DOMHEAP]}")
        if counts[XENHEAP] != d.xenheap_pages:
            problems.append(f"d{d.domid}: xenheap_pages {d.xenheap_pages}, owns {counts[XENHEAP]}")
        for run in d.frames:
            for m in m2p.runs(run.start, run.end):
                if m.tag != (d, run.tag):
                    problems.append(f"d{d.domid}: its frame list has mfn {m.start:#x} "
                                    f"({run.tag}), the M2P gives it to d{m.tag[0].domid} "
                                    f"({m.tag[1]})")
        mine = sum(r.length for r in d.frames)
        if mine != counts[DOMHEAP] + counts[XENHEAP]:
            problems.append(f"d{d.domid}: its frame list holds {mine}, the M2P gives it "
                            f"{counts[DOMHEAP] + counts[XENHEAP]}")
        xen_pages = [("shared_info", d.shared_info_mfn)]
        if d.grant_table is not None:
            xen_pages += [("grant frame", m) for m in d.grant_table.frames]
        for what, mfn in xen_pages:
            hit = m2p.get(mfn)
            if d.shared_info is not None and (hit is None or hit[1] != (d, XENHEAP)):
                problems.append(f"d{d.domid}: its {what} {mfn:#x} is not Xen's page shared "
                                "with it")
        for run in d.p2m:
            for m in m2p.runs(run.value, run.value + run.length):
                d_owner, pool = m.tag
                if d_owner is not d or pool != DOMHEAP:
                    problems.append(f"d{d.domid}: gpfn {run.start:#x} maps mfn {m.start:#x}, "
                                    f"owned by d{d_owner.domid} ({pool})")
                expect = run.start + (m.start - run.value)
                if m.value != expect:
                    problems.append(f"d{d.domid}: P2M gives gpfn {expect:#x} mfn {m.start:#x}, "
                                    f"the M2P says gpfn {m.value}")
            covered = sum(m.length for m in m2p.runs(run.value, run.value + run.length))
            if covered != run.length:
                problems.append(f"d{d.domid}: gpfns {run.start:#x}+{run.length} map unowned frames")
        if d.is_dying == DOMDYING_dead and not d.tot_pages and not xen.frames.xenheap_in_use(d):
            problems.append(f"d{d.domid} is dead with nothing left, yet not destroyed")


# ---------------------------------------------------------------- references
def _audit_references(xen: "Xen", problems: list[str]) -> None:
    """Reference and type counts are exactly what mappings, pins and live
    page tables account for."""
    frames = xen.frames
    refs: Counter = Counter()
    types: dict[int, tuple[int, int]] = {}   # mfn -> (type, count)

    def take_type(mfn: int, type_: int) -> None:
        have = types.get(mfn)
        if have is not None and have[0] != type_:
            problems.append(f"mfn {mfn:#x} is used as two types")
        types[mfn] = (type_, (have[1] if have else 0) + 1)

    for d in xen.domains:
        gt = d.grant_table
        if gt is None:
            continue
        for m in gt.maptrack.values():
            ro = bool(m.flags & GNTMAP_readonly)
            for kind in (GNTMAP_device_map, GNTMAP_host_map):
                if m.flags & kind:
                    refs[m.mfn] += 1
                    if not ro:
                        take_type(m.mfn, PGT_writable_page)
    for run in frames.m2p:
        if run.tag[1] == XENHEAP:          # shared rw for good
            for mfn in range(run.start, run.end):
                take_type(mfn, PGT_writable_page)
    for d in xen.domains:
        for v in d.vcpus:
            for mfn in v.gdt_frames:
                refs[mfn] += 1
                take_type(mfn, PGT_gdt_page)
    for mfn, (_, info, _) in frames.special_frames().items():
        if info is None or info.type not in PAGE_TABLE_TYPES or not info.count:
            continue
        if info.pinned:
            refs[mfn] += 1
            take_type(mfn, info.type)
        for entry in frames.entries(mfn):
            if not entry & _PAGE_PRESENT:
                continue
            target = (entry & PTE_MFN_MASK) >> PAGE_SHIFT
            if info.type == PGT_l1_page_table and frames.is_io_frame(target):
                continue                    # I/O memory holds no reference
            refs[target] += 1
            if info.type == PGT_l1_page_table:
                if entry & _PAGE_RW:
                    take_type(target, PGT_writable_page)
            else:
                take_type(target, info.type - 1)

    special = frames.special_frames()
    for mfn in set(special) | set(refs) | set(types):
        if frames.owner(mfn) is None:
            problems.append(f"mfn {mfn:#x} is referenced but free")
            continue
        count, info, dropped = special.get(mfn, (frames.count(mfn), None, False))
        expect = (0 if dropped else 1) + refs[mfn]
        if count != expect:
            problems.append(f"mfn {mfn:#x}: count {count}, mappings and tables account "
                            f"for {expect}")
        if dropped and not refs[mfn]:
            problems.append(f"mfn {mfn:#x}: released by its owner and unused, yet not freed")
        want = types.get(mfn)
        have = (info.type, info.count) if info is not None else None
        if want != have:
            problems.append(f"mfn {mfn:#x}: type {have}, expected {want}")


# ---------------------------------------------------------------- grants
def _audit_grants(xen: "Xen", problems: list[str]) -> None:
    pins: dict[tuple[int, int], int] = Counter()
    holders: dict[tuple[int, int], set[int]] = {}
    for d in xen.domains:
        gt = d.grant_table
        if gt is None:
            continue
        views: Counter = Counter()
        for m in gt.maptrack.values():
            ro = bool(m.flags & GNTMAP_readonly)
            key = (m.domid, m.ref)
            if m.flags & GNTMAP_device_map:
                pins[key] += GNTPIN_devr_inc if ro else GNTPIN_devw_inc
            if m.flags & GNTMAP_host_map:
                pins[key] += GNTPIN_hstr_inc if ro else GNTPIN_hstw_inc
                views[(m.mfn, ro)] += 1
            holders.setdefault(key, set()).add(d.domid)
            if xen.domains.get(m.domid) is None:
                problems.append(f"d{d.domid} maps a grant of d{m.domid}, which is gone")
        have = {(mfn, ro): n for mfn, (r, w) in d.foreign_maps.items()
                for ro, n in ((True, r), (False, w)) if n}
        if have != dict(views):
            problems.append(f"d{d.domid}: host mappings {have} disagree with its maptrack {dict(views)}")
    for rd in xen.domains:
        gt = rd.grant_table
        if gt is None:
            continue
        for ref, act in gt.active.items():
            key = (rd.domid, ref)
            if act.pin != pins.get(key, 0):
                problems.append(f"d{rd.domid} ref {ref}: pin {act.pin:#x}, mappings hold "
                                f"{pins.get(key, 0):#x}")
            if holders.get(key, {act.domid}) != {act.domid}:
                problems.append(f"d{rd.domid} ref {ref}: mapped by {holders[key]}, active "
                                f"for d{act.domid}")
            if xen.frames.owner(act.mfn) is not rd:
                problems.append(f"d{rd.domid} ref {ref}: its frame {act.mfn:#x} changed owner")
            flags = gt.entry(ref)[0]
            if not flags & GTF_reading:
                problems.append(f"d{rd.domid} ref {ref}: in use but GTF_reading is clear")
            if bool(flags & GTF_writing) != bool(act.pin & GNTPIN_write_mask):
                problems.append(f"d{rd.domid} ref {ref}: GTF_writing {bool(flags & GTF_writing)}, "
                                f"writable pins {bool(act.pin & GNTPIN_write_mask)}")
        for key in pins:
            if key[0] == rd.domid and key[1] not in gt.active:
                problems.append(f"d{rd.domid} ref {key[1]} is mapped but not active")


# ---------------------------------------------------------------- event channels
def _audit_event_channels(xen: "Xen", problems: list[str]) -> None:
    for d in xen.domains:
        ed = d.evtchn
        if ed is None:
            continue
        active = 0
        if not ed.chans or ed.chans[0].state != ECS_RESERVED:
            problems.append(f"d{d.domid}: port 0 is not reserved")
        for chn in ed.chans[1:]:
            if chn.state in (ECS_FREE, ECS_RESERVED):
                continue
            active += 1
            if chn.port > ed.max_port:
                problems.append(f"d{d.domid} port {chn.port} is above max_evtchn_port")
            if chn.state == ECS_INTERDOMAIN:
                rd = chn.remote_dom
                if xen.domains.get(rd.domid) is not rd:
                    problems.append(f"d{d.domid} port {chn.port} is bound to a gone domain")
                    continue
                peer = rd.evtchn.chan(chn.remote_port)
                if (peer is None or peer.state != ECS_INTERDOMAIN or peer.remote_dom is not d
                        or peer.remote_port != chn.port):
                    problems.append(f"d{d.domid} port {chn.port} -> d{rd.domid}:{chn.remote_port} "
                                    "is not paired back")
            elif chn.state == ECS_VIRQ:
                owner = d.vcpus[0 if virq_is_global(chn.virq) else chn.notify_vcpu_id]
                if owner.virq_to_evtchn[chn.virq] != chn.port:
                    problems.append(f"d{d.domid} port {chn.port}: VIRQ {chn.virq} not recorded")
            elif chn.state == ECS_PIRQ:
                if ed.pirq_to_evtchn.get(chn.pirq) != chn.port:
                    problems.append(f"d{d.domid} port {chn.port}: PIRQ {chn.pirq} not recorded")
        if active != ed.active:
            problems.append(f"d{d.domid}: {ed.active} active ports counted, {active} found")
        for v in d.vcpus:
            for virq, port in enumerate(v.virq_to_evtchn):
                chn = ed.chan(port) if port else None
                if port and (chn is None or chn.state != ECS_VIRQ or chn.virq != virq):
                    problems.append(f"d{d.domid}v{v.vcpu_id}: VIRQ {virq} -> port {port}, "
                                    "which is not bound to it")
        for pirq, port in ed.pirq_to_evtchn.items():
            chn = ed.chan(port)
            if chn is None or chn.state != ECS_PIRQ or chn.pirq != pirq:
                problems.append(f"d{d.domid}: PIRQ {pirq} -> port {port}, not bound to it")
        if d.is_dying != DOMDYING_alive and active:
            problems.append(f"d{d.domid} is dying with {active} ports open")


# ---------------------------------------------------------------- scheduler
def _audit_scheduler(xen: "Xen", problems: list[str]) -> None:
    """Each pCPU runs one vCPU; every runnable vCPU not running waits on
    exactly its own pCPU's run queue; the counts, the idle mask and the
    credit scheduler's active lists say the same as the vCPUs do."""
    sched = xen.sched
    policy = sched.policy
    vcpus = [v for d in xen.domains for v in d.vcpus]
    queued = {}
    for pcpu in sched.pcpus:
        cpu, curr = pcpu.cpu, pcpu.curr
        if not curr.is_running or curr.processor != cpu or curr.runstate != RUNSTATE_running:
            problems.append(f"pCPU {cpu}: its current {curr!r} is not running there")
        runq = pcpu.sched_priv.runq
        for svc in runq:
            if id(svc.vcpu) in queued:
                problems.append(f"{svc.vcpu!r} is queued twice")
            queued[id(svc.vcpu)] = cpu
            if not svc.on_runq or svc.vcpu.processor != cpu:
                problems.append(f"{svc.vcpu!r} on pCPU {cpu}'s queue, says otherwise")
        idle_queued = sum(1 for svc in runq if svc.vcpu is pcpu.idle)
        if idle_queued != (0 if curr.is_idle else 1):
            problems.append(f"pCPU {cpu}: its idle vCPU is queued {idle_queued} times")
        ticking = pcpu.sched_priv.ticker is not None and not pcpu.sched_priv.ticker.cancelled
        sliced = pcpu.s_timer is not None and not pcpu.s_timer.cancelled
        # A busy pCPU ticks and has a slice; an idle one has no slice (and
        # ticks only until it first goes idle from work, as on Xen).
        if (not curr.is_idle and not ticking) or sliced == curr.is_idle:
            problems.append(f"pCPU {cpu}: {'idle' if curr.is_idle else 'busy'} with its tick "
                            f"{'on' if ticking else 'off'}, its slice timer {'on' if sliced else 'off'}")
        mine = sum(1 for v in vcpus if v.processor == cpu and v.runnable)
        if pcpu.sched_priv.nr_runnable != mine:
            problems.append(f"pCPU {cpu}: nr_runnable {pcpu.sched_priv.nr_runnable}, "
                            f"{mine} runnable vCPUs are its")
        if bool(policy.idlers >> cpu & 1) != curr.is_idle:
            problems.append(f"pCPU {cpu}: idle mask says {'idle' if curr.is_idle else 'busy'} wrong")
    for v in vcpus:
        waiting = v.runnable and not v.is_running
        if waiting != (id(v) in queued):
            problems.append(f"{v!r}: {'runnable and waiting' if waiting else 'not waiting'} "
                            f"but {'on' if id(v) in queued else 'on no'} run queue")
        if v.is_running and sched.pcpus[v.processor].curr is not v:
            problems.append(f"{v!r} says it runs on pCPU {v.processor}, which runs another")
        if (v.is_running or waiting) and not v.hard_affinity >> v.processor & 1:
            problems.append(f"{v!r} is on pCPU {v.processor}, outside its hard affinity")
        if v.pause_flags & VPF_migrating and not v.is_running:
            problems.append(f"{v!r} is marked migrating but is not running")
        if v.sched_priv.flags & CSCHED_FLAG_UNIT_PARKED and not v.pause_count:
            problems.append(f"{v!r} is parked by its cap but not paused")
    weight = 0
    for d in xen.domains:
        sdom = d.sched
        if sdom is None:
            continue
        active = [v.sched_priv for v in d.vcpus if v.sched_priv.active]
        if sorted(map(id, active)) != sorted(map(id, sdom.active_units)):
            problems.append(f"d{d.domid}: credit's active list disagrees with its vCPUs")
        if sdom.active != bool(sdom.active_units) or (sdom in policy.active_sdom) != sdom.active:
            problems.append(f"d{d.domid}: credit's active domain list disagrees")
        weight += sdom.weight * len(sdom.active_units)
    if weight != policy.weight:
        problems.append(f"credit weight {policy.weight}, active vCPUs weigh {weight}")


# ---------------------------------------------------------------- vCPUs
def _audit_vcpus(xen: "Xen", problems: list[str]) -> None:
    for d in xen.domains:
        if d.pollers != sum(v.polling for v in d.vcpus):
            problems.append(f"d{d.domid}: {d.pollers} pollers counted, "
                            f"{sum(v.polling for v in d.vcpus)} polling")
        if len(d.vcpus) not in (0, d.max_vcpus):
            problems.append(f"d{d.domid} has {len(d.vcpus)} of its {d.max_vcpus} vCPUs")
        for v in d.vcpus:
            if d.is_shutting_down and not (v.paused_for_shutdown and v.pause_count):
                problems.append(f"d{d.domid}v{v.vcpu_id} is not paused for the shutdown")
            if v.runnable != (v.runstate in (RUNSTATE_running, RUNSTATE_runnable)):
                problems.append(f"d{d.domid}v{v.vcpu_id}: runstate {v.runstate} but "
                                f"{'runnable' if v.runnable else 'not runnable'}")
            timers = (v.singleshot_timer, v.periodic_timer, v.poll_timer)
            if d.is_dying != DOMDYING_alive and any(t is not None for t in timers):
                problems.append(f"d{d.domid}v{v.vcpu_id} is dying with a timer armed")
            if v.periodic_timer is not None and not v.periodic_period:
                problems.append(f"d{d.domid}v{v.vcpu_id}: a periodic timer with no period")
