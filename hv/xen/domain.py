"""Domains and vCPUs (the role of Xen's common/domain.c).

A domain is created paused (its controller pause count starts at one), is
unpaused by its toolstack, may shut down with a reason (its vCPUs stop; the
domain stays until the toolstack acts), and is destroyed in two steps: killing
releases everything it holds, and the domain finally disappears once the last
of its frames is free (another domain may still map one of them; until it
lets go the domain lingers, dying, as on Xen).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from hv.public.callback import CALLBACKTYPE_event, CALLBACKTYPE_failsafe, CALLBACKTYPE_syscall
from hv.public.errno import EEXIST, EINVAL, ENOMEM, EOVERFLOW
from hv.public.sched import SHUTDOWN_NAMES, SHUTDOWN_crash
from hv.public.vcpu import RUNSTATE_offline
from hv.public.xen import (
    DOMID_FIRST_RESERVED, DOMID_IDLE, DOMID_IO, DOMID_SELF, DOMID_XEN, NR_VIRQS, SHINFO_VCPU_INFO, VCPU_INFO_SIZE,
    VCPUINFO_UPCALL_MASK, XEN_LEGACY_MAX_VCPUS,
)
from hv.xen.errors import XenError
from hv.xen.rangemap import RangeMap

if TYPE_CHECKING:
    from hv.xen.hypervisor import Xen

DOMDYING_alive = 0
DOMDYING_dying = 1
DOMDYING_dead = 2

# vcpu.pause_flags
VPF_blocked = 1 << 0     # waiting for an event
VPF_down = 1 << 1        # offline (VCPUOP_down, or never brought up)
VPF_blocked_in_xen = 1 << 2
VPF_migrating = 1 << 3   # switched out to move to another pCPU

MAX_CONTROLLER_PAUSE = 255
# Physical IRQ numbers a domain's event channels may name.
NR_PIRQS = 256
# Xen's "no shutdown reason yet" (~0u): guests can only give 0..255.
SHUTDOWN_CODE_INVALID = 0xFFFFFFFF


class VCPU:
    __slots__ = (
        "vcpu_id", "domain", "pause_flags", "pause_count", "paused_for_shutdown",
        "virq_to_evtchn", "poll_evtchn", "polling",
        "is_initialised", "context", "runstate", "state_entry_time",
        "runstate_time", "processor", "is_running", "vcpu_info_offset",
        "singleshot_timer", "periodic_timer", "periodic_period", "periodic_last_event",
        "poll_timer", "affinity_overridden", "gdt_frames", "gdt_ents",
        "is_idle", "sched_priv", "hard_affinity", "soft_affinity", "saved_hard_affinity",
        "sched_entry_time",
        "callbacks", "nmi_pending", "nmi_masked",
    )

    def __init__(self, domain: "Domain", vcpu_id: int, now: int):
        self.vcpu_id = vcpu_id
        self.domain = domain
        self.pause_flags = VPF_down
        self.pause_count = 0
        self.paused_for_shutdown = False
        self.virq_to_evtchn = [0] * NR_VIRQS
        self.poll_evtchn = 0          # the one port polled; -1 when several
        self.polling = False          # its bit in Xen's d->poll_mask
        self.is_initialised = False
        self.context = None           # the VcpuGuestContext it was started with
        self.runstate = RUNSTATE_offline
        self.state_entry_time = now
        self.runstate_time = [0, 0, 0, 0]
        self.processor = 0
        self.affinity_overridden = False   # SCHEDOP_pin_override in force
        self.is_running = False
        self.vcpu_info_offset = SHINFO_VCPU_INFO + vcpu_id * VCPU_INFO_SIZE
        self.singleshot_timer = None
        self.periodic_timer = None
        self.periodic_period = 0
        self.periodic_last_event = 0
        self.poll_timer = None
        self.gdt_frames: tuple[int, ...] = ()
        self.gdt_ents = 0
        # Where the guest kernel takes events, failures, system calls
        # (CALLBACKTYPE_* -> address), from callback_op or its context.
        self.callbacks: dict[int, int] = {}
        # An NMI waiting for the guest (XEN_DOMCTL_sendtrigger), and whether
        # the guest is inside its NMI handler (until its iret).
        self.nmi_pending = False
        self.nmi_masked = False
        # Scheduling: set by the scheduler when the vCPU joins it.
        self.is_idle = False
        self.sched_priv = None
        self.hard_affinity = 0        # pCPUs it may run on (a cpumask)
        self.soft_affinity = 0        # pCPUs it would rather run on
        self.saved_hard_affinity = 0  # what a temporary pin put aside
        self.sched_entry_time = now   # when it was last switched in

    @property
    def runnable(self) -> bool:
        return not (self.pause_flags or self.pause_count or self.domain.pause_count)

    def runstate_change(self, new_state: int, now: int) -> None:
        old = self.runstate
        if old == new_state:
            return
        self.runstate_time[old] += now - self.state_entry_time
        self.runstate = new_state
        self.state_entry_time = now

    def runstate_snapshot(self, now: int) -> tuple[int, int, tuple[int, int, int, int]]:
        """(state, state_entry_time, time[4]) with the current state's time
        counted up to ``now`` (vcpu_runstate_get())."""
        times = list(self.runstate_time)
        times[self.runstate] += now - self.state_entry_time
        return self.runstate, self.state_entry_time, tuple(times)

    def __repr__(self) -> str:
        return f"<vcpu d{self.domain.domid}v{self.vcpu_id}>"


class Domain:
    def __init__(self, domid: int, now: int):
        self.domid = domid
        self.handle = bytes(16)            # the toolstack's UUID
        self.ssidref = 0
        self.is_privileged = False         # control domain (dom0)
        self.is_hardware_domain = False
        self.is_xenstore_domain = False
        self.time_offset_seconds = 0
        self.irq_caps: set[int] = set()    # pirqs it may bind (physical-device privilege)
        self.nr_pirqs = NR_PIRQS
        self.creation_finished = False
        self.created_at = now
        self.max_vcpus = 0
        self.vcpus: list[VCPU] = []
        # Memory.
        self.tot_pages = 0
        self.max_pages = 0
        self.xenheap_pages = 0
        self.frames = RangeMap()           # mfns it owns, tagged by pool
        self.p2m = RangeMap()              # gpfn -> mfn
        self.foreign_maps: dict[int, list[int]] = {}  # mfn -> [ro, rw] grant host mappings
        self.shared_info_mfn = 0
        self.shared_info: bytearray | None = None
        # Lifecycle.
        self.pause_count = 0
        self.controller_pause_count = 0
        self.is_shutting_down = False
        self.is_shut_down = False
        self.shutdown_code = SHUTDOWN_CODE_INVALID
        self.is_dying = DOMDYING_alive
        # Per-subsystem state, owned by each subsystem.
        self.evtchn = None
        # The modelled kernel running in it, if it runs one (hv/guest).
        self.guest = None
        self.pollers = 0                   # vCPUs in SCHEDOP_poll (Xen's poll_mask)
        self.grant_table = None
        self.sched = None
        self.watchdog_inuse: list[bool] = []
        self.watchdog_timers: list = []

    @property
    def has_physdev(self) -> bool:
        """Physical-device privilege, what a driver domain holds (Xen 2.0's
        DF_PHYSDEV): the hardware domain's, and any domain's granted an IRQ."""
        return self.is_hardware_domain or bool(self.irq_caps)

    def vcpu(self, vcpu_id: int) -> VCPU | None:
        """domain_vcpu(): None for an id it has no vCPU for."""
        if 0 <= vcpu_id < len(self.vcpus):
            return self.vcpus[vcpu_id]
        return None

    @property
    def online_vcpus(self) -> int:
        return sum(1 for v in self.vcpus if not v.pause_flags & VPF_down)

    def state_letters(self) -> str:
        """xl list's six state letters, r b p s <reason> d."""
        running = any(v.is_running for v in self.vcpus)
        online = [v for v in self.vcpus if not v.pause_flags & VPF_down]
        blocked = bool(online) and all(v.pause_flags & VPF_blocked for v in online)
        reason = "-"
        if self.is_shut_down:
            reason = "-rscwS"[self.shutdown_code] if self.shutdown_code <= 5 else "?"
        return "".join((
            "r" if running else "-",
            "b" if blocked and not running else "-",
            "p" if self.controller_pause_count > 0 else "-",
            "s" if self.is_shut_down else "-",
            reason if self.is_shut_down else "-",
            "d" if self.is_dying == DOMDYING_dead else "-",
        ))

    def __repr__(self) -> str:
        return f"<domain d{self.domid}>"


class DomainList:
    """Every domain the hypervisor knows, by id, with Xen's domid rover."""

    def __init__(self, xen: "Xen"):
        self.xen = xen
        self._by_id: dict[int, Domain] = {}
        self._rover = 0
        # Xen's pseudo-domains, owners of I/O memory and of Xen's own pages:
        # named by DOMID_IO and DOMID_XEN, never in the list, never running.
        self.dom_io = Domain(DOMID_IO, 0)
        self.dom_xen = Domain(DOMID_XEN, 0)
        # The idle domain: one idle vCPU per pCPU, what a pCPU runs when
        # it has nothing else.
        self.idle_domain = Domain(DOMID_IDLE, 0)

    # ------------------------------------------------------------ lookup
    def get(self, domid: int) -> Domain | None:
        """rcu_lock_domain_by_id()."""
        return self._by_id.get(domid)

    def by_any_id(self, caller: Domain, domid: int) -> Domain | None:
        """rcu_lock_domain_by_any_id(): DOMID_SELF names the caller."""
        return caller if domid == DOMID_SELF else self._by_id.get(domid)

    def __iter__(self) -> Iterator[Domain]:
        return iter(sorted(self._by_id.values(), key=lambda d: d.domid))

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, domid: int) -> bool:
        return domid in self._by_id

    def first_from(self, domid: int) -> Domain | None:
        """The domain with the lowest id at or above ``domid``."""
        ids = [i for i in self._by_id if i >= domid]
        return self._by_id[min(ids)] if ids else None

    @property
    def last_domid(self) -> int:
        """The id the rover last handed out."""
        return self._rover

    def allocate_domid(self, requested: int) -> int:
        """Xen's rule: an explicit id must be free; 0 (or any reserved id)
        asks for the next free one after the last handed out."""
        if 0 < requested < DOMID_FIRST_RESERVED:
            if requested in self._by_id:
                raise XenError(EEXIST)
            return requested
        dom = self._rover + 1
        while dom != self._rover:
            if dom >= DOMID_FIRST_RESERVED:
                dom = 1
                if dom == self._rover:
                    break
            if dom not in self._by_id:
                self._rover = dom
                return dom
            dom += 1
        raise XenError(ENOMEM)

    # ------------------------------------------------------------ lifecycle
    def domain_create(self, domid: int, max_vcpus: int, *, privileged: bool = False,
                      hardware: bool = False, max_evtchn_port: int = 1023,
                      max_grant_frames: int = -1, max_maptrack_frames: int = -1,
                      handle: bytes = bytes(16), ssidref: int = 0) -> Domain:
        xen = self.xen
        if not 1 <= max_vcpus <= XEN_LEGACY_MAX_VCPUS:
            raise XenError(EINVAL)
        d = Domain(domid, xen.clock.now)
        d.is_privileged = privileged
        d.is_hardware_domain = hardware
        d.handle = bytes(handle)
        d.ssidref = ssidref
        d.max_vcpus = max_vcpus
        d.controller_pause_count = 1
        d.pause_count = 1
        mfn = xen.frames.alloc_xenheap_page(d)
        if mfn is None:
            raise XenError(ENOMEM)
        d.shared_info_mfn = mfn
        d.shared_info = xen.ram.frame(mfn)
        xen.time.update_domain_wallclock_time(d)
        try:
            xen.evtchn.domain_init(d, max_evtchn_port)
            xen.gnttab.domain_init(d, max_grant_frames, max_maptrack_frames)
            xen.sched.domain_init(d)
            xen.sched_ops.domain_init(d)
        except XenError:
            xen.frames.free_xenheap_pages(d)
            raise
        self._by_id[domid] = d
        xen.trace.emit("domain", domid, -1, "create", (max_vcpus,), None)
        return d

    def vcpus_create(self, d: Domain) -> None:
        """Create the domain's vCPUs, all down, up to the number it was
        created with (XEN_DOMCTL_max_vcpus; until then it has none)."""
        for vcpu_id in range(len(d.vcpus), d.max_vcpus):
            v = VCPU(d, vcpu_id, self.xen.clock.now)
            d.vcpus.append(v)
            # Guests start with event upcalls masked.
            d.shared_info[v.vcpu_info_offset + VCPUINFO_UPCALL_MASK] = 1
            self.xen.sched.vcpu_init(v)
            if d.is_shutting_down:      # vcpu_check_shutdown()
                self.vcpu_pause_nosync(v)
                v.paused_for_shutdown = True

    def idle_vcpu_create(self, cpu: int) -> VCPU:
        """pCPU ``cpu``'s idle vCPU: always runnable, never a guest's."""
        v = VCPU(self.idle_domain, cpu, self.xen.clock.now)
        v.pause_flags = 0
        v.is_idle = True
        self.idle_domain.vcpus.append(v)
        return v

    def domain_pause(self, d: Domain) -> None:
        d.pause_count += 1
        if d.pause_count == 1:
            for v in d.vcpus:
                self.xen.sched.vcpu_sleep(v)

    def domain_unpause(self, d: Domain) -> None:
        d.pause_count -= 1
        if d.pause_count == 0:
            for v in d.vcpus:
                self.xen.sched.vcpu_wake(v)

    def pause_by_systemcontroller(self, d: Domain) -> None:
        if d.controller_pause_count + 1 > MAX_CONTROLLER_PAUSE:
            raise XenError(EOVERFLOW)
        d.controller_pause_count += 1
        self.domain_pause(d)
        self.xen.trace.emit("domain", d.domid, -1, "pause", d.controller_pause_count, None)

    def unpause_by_systemcontroller(self, d: Domain) -> None:
        if d.controller_pause_count - 1 < 0:
            raise XenError(EINVAL)
        d.controller_pause_count -= 1
        if d.controller_pause_count == 0:
            d.creation_finished = True
        self.domain_unpause(d)
        self.xen.trace.emit("domain", d.domid, -1, "unpause", d.controller_pause_count, None)

    def vcpu_pause_nosync(self, v: VCPU) -> None:
        v.pause_count += 1
        if v.pause_count == 1:
            self.xen.sched.vcpu_sleep(v)

    def vcpu_unpause(self, v: VCPU) -> None:
        v.pause_count -= 1
        if v.pause_count == 0:
            self.xen.sched.vcpu_wake(v)

    @staticmethod
    def arch_set_info_guest(v: VCPU, ctxt) -> None:
        """Give a vCPU its starting context: registers, and the callbacks
        the context names (arch_set_info_guest())."""
        v.context = ctxt
        v.is_initialised = True
        for kind, address in ((CALLBACKTYPE_event, ctxt.event_callback_eip),
                              (CALLBACKTYPE_failsafe, ctxt.failsafe_callback_eip),
                              (CALLBACKTYPE_syscall, ctxt.syscall_callback_eip)):
            if address:
                v.callbacks[kind] = address
            else:
                v.callbacks.pop(kind, None)

    def vcpu_reset(self, v: VCPU) -> None:
        """Back to a vCPU never started (vcpu_reset()): down, with no
        context and no GDT, neither blocked nor polling."""
        xen = self.xen
        self.vcpu_pause_nosync(v)
        xen.descriptor_tables.destroy_gdt(v)
        xen.sched.vcpu_down(v)
        xen.sched_ops.end_poll(v)
        v.context, v.is_initialised = None, False
        v.callbacks.clear()
        if v.affinity_overridden:
            xen.sched.vcpu_temporary_affinity(v, None)
        xen.guest_cpu.vcpu_reset(v)
        v.pause_flags &= ~VPF_blocked
        self.vcpu_unpause(v)

    def domain_shutdown(self, d: Domain, reason: int) -> None:
        """Stop the domain's vCPUs and tell the control domain why
        (domain_shutdown()). The first reason given sticks."""
        if d.shutdown_code == SHUTDOWN_CODE_INVALID:
            d.shutdown_code = reason
        if d.is_shutting_down:
            return
        d.is_shutting_down = True
        for v in d.vcpus:
            if not v.paused_for_shutdown:
                self.vcpu_pause_nosync(v)
            v.paused_for_shutdown = True
        d.is_shut_down = True
        name = SHUTDOWN_NAMES.get(d.shutdown_code, str(d.shutdown_code))
        self.xen.trace.emit("domain", d.domid, -1, "shutdown", name, None)
        if d.is_hardware_domain:
            self.xen.console.printk(f"Hardware Dom{d.domid} shutdown: {name}")
        self.xen.evtchn.send_global_virq_dom_exc()

    def domain_crash(self, d: Domain, why: str = "") -> None:
        if not d.is_shutting_down:
            self.xen.console.printk(f"Domain {d.domid} crashed{': ' + why if why else ''}")
        self.domain_shutdown(d, SHUTDOWN_crash)

    def domain_resume(self, d: Domain) -> None:
        """XEN_DOMCTL_resumedomain: undo a shutdown (a cancelled suspend)."""
        self.domain_pause(d)
        d.is_shutting_down = d.is_shut_down = False
        d.shutdown_code = SHUTDOWN_CODE_INVALID
        for v in d.vcpus:
            if v.paused_for_shutdown:
                v.paused_for_shutdown = False
                self.vcpu_unpause(v)
        self.domain_unpause(d)
        self.xen.trace.emit("domain", d.domid, -1, "resume", None, None)

    def domain_kill(self, d: Domain, caller: Domain | None) -> None:
        """Release everything the domain holds (domain_kill()). It is gone
        once its last frame is free; frames another domain still maps keep
        it, dying, until that domain lets go."""
        if d is caller:
            raise XenError(EINVAL)
        if d.is_dying != DOMDYING_alive:
            return
        xen = self.xen
        self.domain_pause(d)
        d.is_dying = DOMDYING_dying
        xen.trace.emit("domain", d.domid, -1, "dying", None, None)
        xen.sched.domain_kill(d)
        xen.sched_ops.domain_kill(d)
        xen.descriptor_tables.domain_kill(d)
        xen.evtchn.domain_destroy(d)
        xen.gnttab.domain_destroy(d)
        xen.frames.watched.add(d)
        xen.frames.relinquish(d)
        d.is_dying = DOMDYING_dead
        xen.trace.emit("domain", d.domid, -1, "dead", d.tot_pages, None)
        xen.evtchn.send_global_virq_dom_exc()
        self.complete_destroy_if_done(d)

    def complete_destroy_if_done(self, d: Domain) -> None:
        """A dead domain whose pages are all free, and whose shared
        hypervisor pages nobody holds, is finally gone, its id free again
        (complete_domain_destroy())."""
        xen = self.xen
        if (d.is_dying != DOMDYING_dead or d.tot_pages or xen.frames.xenheap_in_use(d)
                or self._by_id.get(d.domid) is not d):
            return
        xen.frames.watched.discard(d)
        xen.sched.domain_destroy(d)
        xen.console.domain_destroy(d)
        xen.gnttab.final_destroy(d)
        xen.frames.free_xenheap_pages(d)
        d.shared_info = None
        del self._by_id[d.domid]
        xen.trace.emit("domain", d.domid, -1, "destroyed", None, None)
        # The control domain learns the id is free again.
        xen.evtchn.send_global_virq_dom_exc()

    def dump(self) -> str:
        lines = ["'q' pressed -> dumping domain info"]
        for d in self:
            lines.append(
                f"General information for domain {d.domid}:\n"
                f"    dying={d.is_dying} pause_count={d.pause_count}\n"
                f"    nr_pages={d.tot_pages} xenheap_pages={d.xenheap_pages} "
                f"max_pages={d.max_pages}\n"
                f"    handle={d.handle.hex()} vm_assist=00000000")
            for v in d.vcpus:
                lines.append(
                    f"    VCPU{v.vcpu_id}: CPU{v.processor} [has={'T' if v.is_running else 'F'}] "
                    f"poll={v.poll_evtchn} upcall_pend={d.shared_info[v.vcpu_info_offset]:02x} "
                    f"upcall_mask={d.shared_info[v.vcpu_info_offset + 1]:02x} "
                    f"pause_count={v.pause_count} pause_flags={v.pause_flags:x}")
        return "\n".join(lines)

