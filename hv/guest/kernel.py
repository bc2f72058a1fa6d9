"""A paravirtualised kernel in miniature (the role of Linux's arch/x86/xen
and drivers/xen, as far as this machine needs them).

It boots the way the interface manual describes: it reads its start_info
page, registers its event callback, maps shared_info, binds VIRQ_TIMER and a
wake-up IPI for each vCPU, brings its other vCPUs up, and opens event
delivery. From then on it learns of events only through upcalls: it clears
evtchn_upcall_pending, takes the selector word, and for each pending,
unmasked port clears the pending bit and calls the port's handler. When it
has nothing to do it blocks (SCHEDOP_block); to sleep it sets a one-shot
timer first. Its console is console_io for dom0 and the console ring for
everyone else.

Console input (what the backend puts in the ring's ``in`` half) is taken
when the console's event fires, kept in ``console_in``, and echoed back to
the console's output byte for byte, as a terminal echoes what is typed, so
whoever is attached sees it; no program reads it.

What it does besides is its program (hv/guest/workload.py), run on vCPU 0.
Asked to suspend (control/shutdown says "suspend"), it stops the program
and suspends its domain, and it goes on in the domain it finds itself in
afterwards, the same one or a restored one: hv/guest/suspend.py.

Everything a vCPU still has to do is a queue of operations, plain tuples,
next first: the boot steps, the program's operations, a compute in
progress. One operation is what stepping a paused domain runs. Operations
that take time (computing) end on a timer while the vCPU runs and pause
while it does not.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from hv.guest.image import EVENT_CALLBACK, FAILSAFE_CALLBACK, NMI_CALLBACK, SECONDARY_ENTRY, va_to_pfn
from hv.guest.image import read_module
from hv.guest.workload import WorkloadError, parse_workload
from hv.guest.grant_table import GrantTableFull, GuestGrantTable
from hv.guest import suspend
from hv.guest.xenbus import Xenbus
from hv.guest.xenbus_probe import XenbusBus, device_of
from hv.public.io.xs_wire import (
    XENSTORE_PAYLOAD_MAX, XS_DIRECTORY, XS_ERROR, XS_MKDIR, XS_READ, XS_RM, XS_UNWATCH, XS_WATCH, XS_WRITE,
)
from hv.public.callback import (
    CALLBACKOP_register, CALLBACKTYPE_event, CALLBACKTYPE_failsafe, CALLBACKTYPE_nmi,
    CallbackRegister,
)
from hv.public.event_channel import (
    EVTCHNOP_alloc_unbound, EVTCHNOP_bind_interdomain, EVTCHNOP_bind_ipi, EVTCHNOP_bind_virq,
    EVTCHNOP_close, EVTCHNOP_send, EVTCHNOP_unmask, EvtchnAllocUnbound, EvtchnBindInterdomain,
    EvtchnBindIpi, EvtchnBindVirq, EvtchnClose, EvtchnSend, EvtchnUnmask,
)
from hv.public.grant_table import (
    GNTMAP_host_map, GNTMAP_readonly, GNTST_general_error, GNTST_okay, GNTTABOP_map_grant_ref,
    GNTTABOP_unmap_grant_ref, GnttabMapGrantRef, GnttabUnmapGrantRef,
)
from hv.public.io.console import XenconsInterface
from hv.public.io.xenbus import XenbusStateClosed, XenbusStateClosing, XenbusStateConnected
from hv.public.memory import (
    XENMEM_decrease_reservation, XENMEM_populate_physmap, XenMemoryReservation,
)
from hv.public.sched import (
    SCHEDOP_block, SCHEDOP_shutdown, SHUTDOWN_crash, SHUTDOWN_poweroff, SHUTDOWN_reboot,
    SchedShutdown,
)
from hv.public.vcpu import VCPUOP_down, VCPUOP_initialise, VCPUOP_is_up, VCPUOP_up
from hv.public.xen import (
    CONSOLEIO_write, DOMID_SELF, HYPERVISOR_callback_op, HYPERVISOR_console_io,
    HYPERVISOR_event_channel_op, HYPERVISOR_grant_table_op, HYPERVISOR_memory_op,
    HYPERVISOR_sched_op,
    HYPERVISOR_set_timer_op, HYPERVISOR_vcpu_op, PAGE_SHIFT, PAGE_SIZE, SHINFO_EVTCHN_MASK,
    SHINFO_EVTCHN_PENDING, SIF_INITDOMAIN, SIF_MOD_START_PFN, START_INFO_MAGIC,
    VCPUINFO_PENDING_SEL, VCPUINFO_TIME, VCPUINFO_UPCALL_MASK, VCPUINFO_UPCALL_PENDING,
    VGCF_in_kernel, VIRQ_TIMER, CpuUserRegs, StartInfo, VcpuGuestContext, VcpuTimeInfo,
    pvclock_scale_delta,
)

if TYPE_CHECKING:
    from hv.xen.domain import VCPU, Domain
    from hv.xen.hypervisor import Xen

# A compute that never ends (burn 100%).
FOREVER = 1 << 62
# What fetching a program operation costs: enough that a program that only
# loops still moves time on.
OP_COST = 1_000
# Burn's duty cycle period.
BURN_PERIOD = 10_000_000
# Giving pages back or taking them: so many a hypercall, so long a page.
BALLOON_BATCH = 256
BALLOON_NS_PER_PAGE = 100
# Grant table frames a kernel asks for at first, and at most.
GRANT_FRAMES_FIRST = 4
GRANT_FRAMES_MAX = 32
# Operations a kernel's deferred work (a backend's ring processing, say)
# may run ahead of: the vCPU is waiting or between program steps.
# Where the kernel maps other domains' grants (Linux's vmalloc area).
MAP_AREA = 0xFFFFC90000000000
PREEMPTIBLE = frozenset(("idle", "program", "sleep_until", "xs_wait", "dev"))
# A timer may fire a little before the guest's own clock says the deadline
# came (the TSC scale truncates): close enough is there.
TIMER_SLACK = 1_000
INVALID_P2M_ENTRY = (1 << 64) - 1

_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_RING_IDX = struct.Struct("<IIII")
_CONS_IN = XenconsInterface.offsetof("in_")
_CONS_IN_SIZE = 1024
_CONS_OUT = XenconsInterface.offsetof("out")
_CONS_IDX = XenconsInterface.offsetof("in_cons")
_CONS_OUT_SIZE = 2048


DEFERRED_RETRY_NS = 1_000_000_000
# What a secondary vCPU does first when it comes up.
SECONDARY_BOOT = (("nmi_callback",), ("enable_events",))
# The magic SysRq keys the kernel answers, by Linux's help names.
SYSRQ_ACTIONS = {"b": "reboot", "c": "crash", "m": "show-memory-usage", "o": "poweroff",
                 "s": "sync", "t": "show-task-states"}


class GrantReaper:
    """The driver timer that tries the deferred grant revocations again."""

    def __init__(self, k: "PVKernel"):
        self.k = k

    def do_work(self, v: "VCPU") -> int:
        self.k.retry_deferred_grants(v)
        return 0


class KernelPanic(Exception):
    """Something the kernel cannot go on from: it crashes its domain."""


class VcpuState:
    """What one vCPU of the kernel has to do, and where it is in it."""

    __slots__ = ("queue", "op_end", "left", "timer", "timer_port", "ipi_port", "ticks", "offline")

    def __init__(self, queue: list):
        self.queue = queue
        self.op_end: int | None = None    # when the timed op in progress ends
        self.left: int | None = None      # its remaining time while switched out
        self.timer = None
        self.timer_port = 0
        self.ipi_port = 0
        self.ticks = 0                    # VIRQ_TIMER events taken
        self.offline = False              # cpu/N/availability said "offline"


class PVKernel:
    def __init__(self, xen: "Xen", d: "Domain", start_info_va: int):
        self.xen = xen
        self.d = d
        self.start_info_pfn = va_to_pfn(start_info_va)
        self.start_info: StartInfo | None = None
        self.program: tuple = ()
        self.pc = 0
        self.burn = 0                     # duty cycle every vCPU burns at (%)
        self.handlers: dict[int, str] = {}
        # Ports whose events go to a process rather than a driver (what
        # /dev/xen/evtchn does): xenstored's, in dom0.
        self.listeners: dict[int, object] = {}
        # Ports bound to vCPUs other than 0, as a bit per port: each vCPU
        # handles its own ports, vCPU 0 every other (cpu_evtchn_mask).
        self.bound: list[int] = [0] * len(d.vcpus)
        self.console_out = b""            # output not yet in the ring
        self.console_in = b""             # everything typed at the console
        self.p2m_pfn = 0
        self.nr_pages = 0
        self.ballooned: list[int] = []    # pfns given back, lowest first
        self.reserved: set[int] = set()   # pfns the kernel never gives back
        self.xenbus: Xenbus | None = None
        self.xsd: tuple[int, int] | None = None      # dom0: (store mfn, port) for xenstored
        self.xs_log: list[tuple[str, str, str]] = []   # (verb, path, outcome)
        self.allocated: set[int] = set()  # pfns the kernel took for itself (rings, buffers)
        self._views: dict[int, bytearray] = {}
        self.free_pfns: list[int] = []
        self.next_pfn = 1
        self.gnttab: GuestGrantTable | None = None
        self.hostname = ""                        # the name the toolstack gave the domain
        self.irqs: dict[int, object] = {}         # port -> the device it interrupts
        self.work: dict[object, None] = {}        # devices with deferred work, in order
        self.driver_timers: dict[object, int] = {}   # device -> when its work is due
        self.buses: list[XenbusBus] = []
        self.map_va: dict[int, int] = {}          # grant handle -> where it is mapped
        self.free_vas: list[int] = []
        self.next_va = MAP_AREA
        self.deferred_grants: list[tuple[int, int]] = []   # (ref, pfn) still mapped by the other end
        self.reaper = GrantReaper(self)
        self.suspending: str | None = None        # where a suspend is (hv/guest/suspend.py)
        self.p2m_fll: list[int] = []              # the P2M's frame list pages, once published
        boot = [("start_info",), ("callbacks",), ("shared_info",)]
        boot += [("bind_timer", i) for i in range(len(d.vcpus))]
        boot += [("bind_ipi", i) for i in range(len(d.vcpus))]
        boot += [("up", i) for i in range(1, len(d.vcpus))]
        boot += [("enable_events",), ("banner",), ("xenbus_init",)]
        self.vcpus = [VcpuState(boot if i == 0 else list(SECONDARY_BOOT))
                      for i in range(len(d.vcpus))]

    # ------------------------------------------------------------ memory
    def page(self, pfn: int, writable: bool = True) -> bytearray:
        """A page of the kernel's own memory through its direct map (the
        page tables a builder made, which the P2M mirrors). The drivers'
        own pages are looked up once and kept until their frame changes."""
        view = self._views.get(pfn)
        if view is not None:
            return view
        mfn = self.xen.p2m.lookup(self.d, pfn)
        if mfn is None:
            raise KernelPanic(f"pfn {pfn:#x} is not mapped")
        view = self.xen.frames.map_domain_page(self.d, mfn, writable=writable)
        if writable and pfn in self.allocated:
            self._views[pfn] = view
        return view

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_views"] = {}          # views of frames are this process's objects
        return state

    def read(self, pfn: int, length: int) -> bytes:
        out = bytearray()
        while len(out) < length:
            out += self.page(pfn, writable=False)[:min(PAGE_SIZE, length - len(out))]
            pfn += 1
        return bytes(out)

    def p2m_set(self, pfn: int, mfn: int) -> None:
        """Keep the kernel's own P2M list (mfn_list) up to date."""
        self._views.pop(pfn, None)
        slot = pfn * 8
        _U64.pack_into(self.page(self.p2m_pfn + slot // PAGE_SIZE), slot % PAGE_SIZE, mfn)

    def p2m_get(self, pfn: int) -> int:
        slot = pfn * 8
        return _U64.unpack_from(self.page(self.p2m_pfn + slot // PAGE_SIZE, False),
                                slot % PAGE_SIZE)[0]

    # ------------------------------------------------------------ time
    def now(self, v: "VCPU") -> int:
        """System time as the guest reads it: its vcpu_time_info, and the
        TSC, under the version protocol."""
        info = self.d.shared_info
        at = v.vcpu_info_offset + VCPUINFO_TIME
        while True:
            version = _U32.unpack_from(info, at)[0]
            t = VcpuTimeInfo.unpack(info, at)
            if not version & 1 and _U32.unpack_from(info, at)[0] == version:
                break
        tsc = self.xen.time.tsc_at(self.xen.clock.now)      # rdtsc
        return t.system_time + pvclock_scale_delta(tsc - t.tsc_timestamp, t.tsc_to_system_mul,
                                                   t.tsc_shift)

    # ------------------------------------------------------------ the queue
    def next_op(self, v: "VCPU") -> tuple:
        st = self.vcpus[v.vcpu_id]
        if (self.suspending == suspend.FREEZING and v.vcpu_id == 0
                and (not st.queue or st.queue[0][0] in PREEMPTIBLE)):
            st.queue.insert(0, ("frozen",))
        if self.work and v.vcpu_id == 0 and (not st.queue or st.queue[0][0] in PREEMPTIBLE):
            st.queue.insert(0, ("work",))
        if not st.queue:
            st.queue.extend(self._more_work(v))
        return st.queue[0]

    def _more_work(self, v: "VCPU") -> list:
        if self.burn:
            if self.burn == 100:
                return [("compute", FOREVER)]
            on = BURN_PERIOD * self.burn // 100
            return [("compute", on), ("sleep", BURN_PERIOD - on)]
        if v.vcpu_id == 0 and self.pc < len(self.program):
            return [("program",)]
        return [("idle",)]

    def has_work(self, v: "VCPU") -> bool:
        return bool(self.burn) or (v.vcpu_id == 0 and (self.pc < len(self.program)
                                                       or bool(self.work)))

    def execute(self, v: "VCPU", op: tuple) -> tuple[int, bool]:
        """Run the op at the head of ``v``'s queue: (how long it takes, 0
        for no time; whether it is done). An op not done stays first."""
        try:
            return getattr(self, "op_" + op[0])(v, *op[1:])
        except KernelPanic as e:
            self.panic(v, str(e))
            return 0, False

    def hypercall(self, v: "VCPU", nr: int, *args):
        return self.xen.hypercall(v, nr, *args)

    def must(self, v: "VCPU", what: str, nr: int, *args):
        rc, out = self.hypercall(v, nr, *args)
        if rc < 0:
            raise KernelPanic(f"{what} failed: {rc}")
        return out

    def panic(self, v: "VCPU", why: str) -> None:
        self.console_write(v, f"Kernel panic - not syncing: {why}\n")
        self.hypercall(v, HYPERVISOR_sched_op, SCHEDOP_shutdown, SchedShutdown(reason=SHUTDOWN_crash))

    # ------------------------------------------------------------ boot
    def op_start_info(self, v: "VCPU"):
        info = StartInfo.unpack(self.read(self.start_info_pfn, StartInfo.SIZE))
        if info.magic != START_INFO_MAGIC:
            raise KernelPanic(f"start_info at pfn {self.start_info_pfn:#x} has no magic")
        self.start_info = info
        self.nr_pages = info.nr_pages
        self.p2m_pfn = va_to_pfn(info.mfn_list)
        lines: list[str] = []
        if info.flags & SIF_MOD_START_PFN and info.mod_len:
            lines = read_module(self.read(info.mod_start, info.mod_len)) or []
            self.reserved.update(range(info.mod_start,
                                       info.mod_start + (info.mod_len + PAGE_SIZE - 1) // PAGE_SIZE))
        self.reserved.update(range(self.p2m_pfn, self.p2m_pfn + (self.nr_pages * 8 + PAGE_SIZE - 1)
                                   // PAGE_SIZE))
        self.reserved.add(self.start_info_pfn)
        if not info.flags & SIF_INITDOMAIN:
            self.reserved.update(range(self.start_info_pfn, self.nr_pages))   # store, console
            self.handlers[info.console_evtchn] = "console"
            self.xenbus = Xenbus(info.store_evtchn, info.store_mfn)
            self.handlers[info.store_evtchn] = "xenbus"
        try:
            self.program = parse_workload(lines)
        except WorkloadError as e:
            raise KernelPanic(f"workload {e}") from None
        return 0, True

    def op_callbacks(self, v: "VCPU"):
        """Where Xen enters the kernel: events, failsafe returns, and (on
        the boot vCPU, as Linux's xen_enable_nmi()) NMIs."""
        for kind, address in ((CALLBACKTYPE_event, EVENT_CALLBACK),
                              (CALLBACKTYPE_failsafe, FAILSAFE_CALLBACK),
                              (CALLBACKTYPE_nmi, NMI_CALLBACK)):
            self.must(v, "callback_op", HYPERVISOR_callback_op, CALLBACKOP_register,
                      CallbackRegister(type=kind, address=address))
        return 0, True

    def op_nmi_callback(self, v: "VCPU"):
        """A secondary vCPU takes NMIs too: its own callback."""
        self.must(v, "callback_op", HYPERVISOR_callback_op, CALLBACKOP_register,
                  CallbackRegister(type=CALLBACKTYPE_nmi, address=NMI_CALLBACK))
        return 0, True

    def op_shared_info(self, v: "VCPU"):
        """Map shared_info: a PV kernel's page tables may map it as its own."""
        if self.start_info.shared_info >> PAGE_SHIFT != self.d.shared_info_mfn:
            raise KernelPanic("start_info names a shared_info that is not ours")
        return 0, True

    def op_bind_timer(self, v: "VCPU", vcpu: int):
        out = self.must(v, "bind VIRQ_TIMER", HYPERVISOR_event_channel_op, EVTCHNOP_bind_virq,
                        EvtchnBindVirq(virq=VIRQ_TIMER, vcpu=vcpu))
        self.vcpus[vcpu].timer_port = out.port
        self.handlers[out.port] = "timer"
        self.bind_to(vcpu, out.port)
        self.unmask(v, out.port)
        return 0, True

    def op_bind_ipi(self, v: "VCPU", vcpu: int):
        out = self.must(v, "bind IPI", HYPERVISOR_event_channel_op, EVTCHNOP_bind_ipi,
                        EvtchnBindIpi(vcpu=vcpu))
        self.vcpus[vcpu].ipi_port = out.port
        self.handlers[out.port] = "ipi"
        self.bind_to(vcpu, out.port)
        self.unmask(v, out.port)
        return 0, True

    def bind_to(self, vcpu: int, port: int) -> None:
        if vcpu:
            self.bound[vcpu] |= 1 << port

    def op_up(self, v: "VCPU", vcpu: int):
        """Start a secondary vCPU at the kernel's secondary entry, with the
        callbacks in its context."""
        ctxt = VcpuGuestContext(flags=VGCF_in_kernel, user_regs=CpuUserRegs(rip=SECONDARY_ENTRY),
                                event_callback_eip=EVENT_CALLBACK,
                                failsafe_callback_eip=FAILSAFE_CALLBACK)
        self.must(v, "VCPUOP_initialise", HYPERVISOR_vcpu_op, VCPUOP_initialise, vcpu, ctxt)
        self.must(v, "VCPUOP_up", HYPERVISOR_vcpu_op, VCPUOP_up, vcpu)
        return 0, True

    def op_enable_events(self, v: "VCPU"):
        """Open event delivery (what local_irq_enable() does on Xen)."""
        self.d.shared_info[v.vcpu_info_offset + VCPUINFO_UPCALL_MASK] = 0
        return 0, True

    def op_banner(self, v: "VCPU"):
        self.console_write(v, f"xenlab PV kernel: domain {self.d.domid}, {self.nr_pages} pages, "
                              f"{len(self.d.vcpus)} vCPUs\n")
        return 0, True

    def op_xenbus_init(self, v: "VCPU"):
        """Dom0 makes its own store page and channel, for the xenstored it
        will run to find (Linux's xenbus_init() for a local store, which
        /proc/xen/xsd_kva and xsd_port show); then every kernel starts its
        frontend and backend buses."""
        if self.start_info.flags & SIF_INITDOMAIN:
            pfn = self.alloc_pages(1)[0]
            self.page(pfn)[:] = bytes(PAGE_SIZE)
            port = self.alloc_unbound(v, 0)
            mfn = self.p2m_get(pfn)
            self.xenbus = Xenbus(port, mfn)
            self.handlers[port] = "xenbus"
            self.xsd = (mfn, port)
        if self.xenbus is None:
            return 0, True
        self.xs(v, XS_READ, b"name\0", self._named)
        from hv.guest.drivers import BACKENDS, FRONTENDS
        self.buses = [XenbusBus(True, FRONTENDS), XenbusBus(False, BACKENDS)]
        for bus in self.buses:
            bus.start(self, v)
        if not self.start_info.flags & SIF_INITDOMAIN:
            self.xenbus.watchers[b"control:shutdown"] = self._shutdown_event
            self.xs(v, XS_WATCH, b"control/shutdown\0control:shutdown\0")
            self.xenbus.watchers[b"balloon:target"] = self._target_event
            self.xs(v, XS_WATCH, b"memory/target\0balloon:target\0")
            self.xenbus.watchers[b"cpu:hotplug"] = self._cpu_event
            self.xs(v, XS_WATCH, b"cpu\0cpu:hotplug\0")
            self.xenbus.watchers[b"control:sysrq"] = self._sysrq_event
            self.xs(v, XS_WATCH, b"control/sysrq\0control:sysrq\0")
        return 0, True

    # ------------------------------------------------------------ vCPU hotplug
    def _cpu_event(self, v: "VCPU", path: bytes) -> None:
        """Linux's drivers/xen/cpu_hotplug.c: the toolstack changed
        cpu/N/availability (or the watch fired first, for every vCPU)."""
        parts = path.decode(errors="replace").split("/")
        which = [int(parts[1])] if len(parts) > 1 and parts[1].isdigit() else range(len(self.vcpus))
        for n in which:
            if 0 < n < len(self.vcpus):      # vCPU 0 never goes offline
                self.xs(v, XS_READ, f"cpu/{n}/availability\0".encode(), self._availability, n)

    def _availability(self, v: "VCPU", ok: bool, value: bytes, n: int) -> None:
        st = self.vcpus[n]
        if not ok or value not in (b"online", b"offline") or st.offline == (value == b"offline"):
            return
        if value == b"offline":
            # cpu_down(): the vCPU is told by IPI to stop what it does and
            # take itself down (play_dead).
            st.offline = True
            self.hypercall(v, HYPERVISOR_event_channel_op, EVTCHNOP_send, EvtchnSend(port=st.ipi_port))
        else:
            st.offline = False
            if self.hypercall(v, HYPERVISOR_vcpu_op, VCPUOP_is_up, n)[0] == 0:
                self.must(v, "VCPUOP_up", HYPERVISOR_vcpu_op, VCPUOP_up, n)
                self.kernel_log(v, f"smpboot: CPU {n} is now online")

    def _stop_this_cpu(self, v: "VCPU") -> None:
        """This vCPU was asked to go offline: what it was doing is dropped
        (Linux moves its tasks elsewhere) and it goes down next."""
        st = self.vcpus[v.vcpu_id]
        if st.timer is not None:
            st.timer.cancel()
        st.timer = st.op_end = st.left = None
        st.queue = [("play_dead",), ("enable_events",)]

    def op_play_dead(self, v: "VCPU"):
        """VCPUOP_down on itself; when brought up again it goes on from here."""
        if self.vcpus[v.vcpu_id].offline:
            self.kernel_log(v, f"smpboot: CPU {v.vcpu_id} is now offline")
            self.must(v, "VCPUOP_down", HYPERVISOR_vcpu_op, VCPUOP_down, v.vcpu_id)
        return 0, True

    def _target_event(self, v: "VCPU", _path: bytes) -> None:
        self.xs(v, XS_READ, b"memory/target\0", self._target)

    def _target(self, v: "VCPU", ok: bool, value: bytes) -> None:
        """The balloon driver (Linux's drivers/xen/balloon.c): the toolstack
        set memory/target (KiB); the kernel gives pages back or takes them
        until it holds that much."""
        try:
            pages = int(value) >> (PAGE_SHIFT - 10) if ok else None
        except ValueError:
            pages = None
        if pages is None or pages == self.nr_pages - len(self.ballooned) or pages <= 0:
            return
        queue = self.vcpus[0].queue
        at = 0 if not queue or queue[0][0] in PREEMPTIBLE else 1
        queue.insert(at, ("balloon", pages))
        self.xen.guest_cpu.kick(self.d.vcpus[0])

    def _named(self, v: "VCPU", ok: bool, value: bytes) -> None:
        self.hostname = value.decode(errors="replace") if ok else f"domain{self.d.domid}"

    def _shutdown_event(self, v: "VCPU", _path: bytes) -> None:
        self.xs(v, XS_READ, b"control/shutdown\0", self._shutdown_requested)

    def _shutdown_requested(self, v: "VCPU", ok: bool, value: bytes) -> None:
        """The toolstack asks the guest to shut itself down (Linux's
        drivers/xen/manage.c): the request is acknowledged by clearing the
        node, then the kernel shuts down with the reason asked for."""
        if ok and value == b"suspend":
            if not self.suspending:
                self.xs(v, XS_WRITE, b"control/shutdown\0")
                self.console_write(v, "xenlab PV kernel: suspend requested by the toolstack\n")
                suspend.request(self, v)
            return
        reason = {b"poweroff": SHUTDOWN_poweroff, b"halt": SHUTDOWN_poweroff,
                  b"reboot": SHUTDOWN_reboot}.get(value if ok else b"")
        if reason is None:
            return
        self.xs(v, XS_WRITE, b"control/shutdown\0")
        self.console_write(v, f"xenlab PV kernel: {value.decode()} requested by the toolstack\n")
        self.hypercall(v, HYPERVISOR_sched_op, SCHEDOP_shutdown, SchedShutdown(reason=reason))

    # ------------------------------------------------------------ sysrq
    def _sysrq_event(self, v: "VCPU", _path: bytes) -> None:
        self.xs(v, XS_READ, b"control/sysrq\0", self._sysrq)

    def _sysrq(self, v: "VCPU", ok: bool, value: bytes) -> None:
        """`xl sysrq`: the toolstack wrote one key to control/sysrq; the
        kernel empties the node and handles the key (manage.c's
        sysrq_handler, then handle_sysrq())."""
        if not ok or len(value) != 1:
            return
        self.xs(v, XS_WRITE, b"control/sysrq\0")
        key = chr(value[0])
        action = SYSRQ_ACTIONS.get(key)
        if action is None:
            self.kernel_log(v, "sysrq: HELP : " + " ".join(f"{name}({k})" for k, name in
                                                          sorted(SYSRQ_ACTIONS.items())))
            return
        getattr(self, "_sysrq_" + action.replace("-", "_"))(v)

    def _sysrq_reboot(self, v: "VCPU") -> None:
        self.kernel_log(v, "sysrq: Resetting")
        self.hypercall(v, HYPERVISOR_sched_op, SCHEDOP_shutdown, SchedShutdown(reason=SHUTDOWN_reboot))

    def _sysrq_poweroff(self, v: "VCPU") -> None:
        self.kernel_log(v, "sysrq: Power Off")
        self.hypercall(v, HYPERVISOR_sched_op, SCHEDOP_shutdown, SchedShutdown(reason=SHUTDOWN_poweroff))

    def _sysrq_crash(self, v: "VCPU") -> None:
        self.kernel_log(v, "sysrq: Trigger a crash")
        self.panic(v, "sysrq triggered crash")

    def _sysrq_sync(self, v: "VCPU") -> None:
        self.kernel_log(v, "sysrq: Emergency Sync")
        self.kernel_log(v, "Emergency Sync complete")

    def _sysrq_show_memory_usage(self, v: "VCPU") -> None:
        self.kernel_log(v, "sysrq: Show Memory")
        held = self.nr_pages - len(self.ballooned)
        self.kernel_log(v, f"{self.nr_pages} pages RAM, {held} pages held, "
                           f"{len(self.ballooned)} pages ballooned out, "
                           f"{len(self.allocated)} pages kernel buffers")

    def _sysrq_show_task_states(self, v: "VCPU") -> None:
        self.kernel_log(v, "sysrq: Show State")
        for n, st in enumerate(self.vcpus):
            doing = " ".join(map(str, st.queue[0])) if st.queue else "nothing"
            state = "offline" if st.offline else doing
            self.kernel_log(v, f"CPU{n}: {state}")
        where = f"line {self.pc + 1} of {len(self.program)}" if self.pc < len(self.program) else "finished"
        self.kernel_log(v, f"program: {where}")

    # ------------------------------------------------------------ devices
    def device(self, devclass: str, name: str):
        """The frontend a program names: the device, None while it may yet
        come, or why it can't be used."""
        bus = self.buses[0] if self.buses else None
        if bus is None:
            return "no xenbus"
        dev = bus.find(devclass, name)
        if dev is None:
            return "No such device" if bus.settled else None
        if dev.state == XenbusStateConnected:
            return dev
        if dev.state in (XenbusStateClosing, XenbusStateClosed):
            return dev.failed or "the device is closed"
        return None

    def wait(self, v: "VCPU", cost: int = 0):
        """An operation that is not done: it runs again after ``cost`` of
        CPU, or once the vCPU has been woken."""
        if cost:
            self.vcpus[v.vcpu_id].queue.insert(0, ("compute", cost))
        else:
            self.hypercall(v, HYPERVISOR_sched_op, SCHEDOP_block)
        return 0, False

    def op_dev(self, v: "VCPU", verb: str, *args):
        """A program's operation on a device (dd, ping, tpm ...): the
        driver that owns the verb runs it, and says when it is done."""
        from hv.guest.drivers import PROGRAM_OPS
        return PROGRAM_OPS[verb](self, v, *args)

    # ------------------------------------------------------------ for drivers
    def alloc_pages(self, count: int) -> list[int]:
        """Pages of the kernel's own memory for its rings and buffers: taken
        from the bottom, never given back to Xen while held."""
        out = []
        limit = self.ballooned[0] if self.ballooned else self.nr_pages
        while len(out) < count:
            if self.free_pfns:
                pfn = self.free_pfns.pop()
            else:
                pfn = self.next_pfn
                while pfn in self.reserved or pfn in self.allocated:
                    pfn += 1
                if pfn >= limit:
                    self.free_pages(out)
                    raise KernelPanic(f"out of memory for {count} pages")
                self.next_pfn = pfn + 1
            self.allocated.add(pfn)
            out.append(pfn)
        return out

    def free_pages(self, pfns) -> None:
        for pfn in pfns:
            self._views.pop(pfn, None)
            self.allocated.discard(pfn)
            self.free_pfns.append(pfn)

    def grant_table(self, v: "VCPU") -> GuestGrantTable:
        if self.gnttab is None:
            self.gnttab = GuestGrantTable(self.xen, v, GRANT_FRAMES_FIRST)
        return self.gnttab

    def grant_access(self, v: "VCPU", domid: int, pfn: int, readonly: bool) -> int:
        """gnttab_grant_foreign_access(): a reference for one of our pages,
        the table growing when it is full."""
        gt = self.grant_table(v)
        try:
            return gt.grant_foreign_access(domid, self.p2m_get(pfn), readonly)
        except GrantTableFull:
            if len(gt.frames) >= GRANT_FRAMES_MAX:
                raise KernelPanic("grant table full") from None
            gt.expand(min(GRANT_FRAMES_MAX, 2 * len(gt.frames)))
            return gt.grant_foreign_access(domid, self.p2m_get(pfn), readonly)

    def map_grants(self, v: "VCPU", domid: int, refs, readonly: bool) -> list[tuple[int, int, int]]:
        """Map other domains' grants into our address space, one hypercall
        for the lot: for each ref (status, handle, mfn), and the place it
        is mapped at kept with the handle for the unmap."""
        flags = GNTMAP_host_map | (GNTMAP_readonly if readonly else 0)
        ops = []
        for ref in refs:
            if self.free_vas:
                va = self.free_vas.pop()
            else:
                va = self.next_va
                self.next_va += PAGE_SIZE
            ops.append(GnttabMapGrantRef(host_addr=va, flags=flags, ref=ref, dom=domid))
        rc, out = self.hypercall(v, HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref, tuple(ops))
        if rc < 0:
            out = [op.replace(status=GNTST_general_error) for op in ops]
        result = []
        for op in out:
            if op.status == GNTST_okay:
                self.map_va[op.handle] = op.host_addr
                result.append((GNTST_okay, op.handle, op.dev_bus_addr >> PAGE_SHIFT))
            else:
                self.free_vas.append(op.host_addr)
                result.append((op.status, -1, 0))
        return result

    def unmap_grants(self, v: "VCPU", handles) -> None:
        ops = tuple(GnttabUnmapGrantRef(host_addr=self.map_va.pop(h), handle=h) for h in handles)
        if ops:
            self.hypercall(v, HYPERVISOR_grant_table_op, GNTTABOP_unmap_grant_ref, ops)
            self.free_vas.extend(op.host_addr for op in ops)

    def mapped(self, mfn: int, writable: bool) -> bytearray:
        """A frame we mapped from another domain, through our mapping."""
        return self.xen.frames.map_domain_page(self.d, mfn, writable=writable)

    def end_access(self, v: "VCPU", ref: int, pfn: int = 0) -> None:
        """gnttab_end_foreign_access(): revoke a grant and free its page; a
        grant the other end still maps is revoked (and the page freed)
        later, once it lets go, never under its feet: it is tried again on
        the next store traffic, and each second (Linux's deferred list)."""
        if self.gnttab.end_foreign_access(ref, readonly=False):
            if pfn:
                self.free_pages([pfn])
            return
        self.deferred_grants.append((ref, pfn))
        if v.vcpu_id == 0 and self.reaper not in self.driver_timers:
            self.call_at(v, self.now(v) + DEFERRED_RETRY_NS, self.reaper)

    def retry_deferred_grants(self, v: "VCPU") -> None:
        waiting, self.deferred_grants = self.deferred_grants, []
        for ref, pfn in waiting:
            self.end_access(v, ref, pfn)

    def alloc_unbound(self, v: "VCPU", remote: int) -> int:
        port = self.must(v, "alloc_unbound", HYPERVISOR_event_channel_op, EVTCHNOP_alloc_unbound,
                         EvtchnAllocUnbound(dom=DOMID_SELF, remote_dom=remote)).port
        self.unmask(v, port)
        return port

    def bind_interdomain(self, v: "VCPU", remote: int, remote_port: int) -> int:
        """The local port, or a negative errno (a frontend's word is not
        to be trusted)."""
        rc, out = self.hypercall(v, HYPERVISOR_event_channel_op, EVTCHNOP_bind_interdomain,
                                 EvtchnBindInterdomain(remote_dom=remote, remote_port=remote_port))
        if rc < 0:
            return rc
        self.unmask(v, out.local_port)
        return out.local_port

    def unmask(self, v: "VCPU", port: int) -> None:
        """unmask_evtchn(): open a port left masked (a restore masks them
        all); Xen raises again one that went pending meanwhile."""
        info = self.d.shared_info
        at, bit = port >> 3, 1 << (port & 7)
        if not info[SHINFO_EVTCHN_MASK + at] & bit:
            return
        if info[SHINFO_EVTCHN_PENDING + at] & bit:
            self.hypercall(v, HYPERVISOR_event_channel_op, EVTCHNOP_unmask, EvtchnUnmask(port=port))
        else:
            info[SHINFO_EVTCHN_MASK + at] &= ~bit & 0xFF

    def notify(self, v: "VCPU", port: int) -> None:
        self.hypercall(v, HYPERVISOR_event_channel_op, EVTCHNOP_send, EvtchnSend(port=port))

    def close_port(self, v: "VCPU", port: int) -> None:
        self.irqs.pop(port, None)
        self.hypercall(v, HYPERVISOR_event_channel_op, EVTCHNOP_close, EvtchnClose(port=port))

    def call_at(self, v: "VCPU", when: int, dev) -> None:
        """A driver timer (Linux's timer_list on top of Xen's one-shot
        timer): ``dev``'s work runs once the guest's clock reaches
        ``when``."""
        self.driver_timers[dev] = when
        self.hypercall(v, HYPERVISOR_set_timer_op, min(self.driver_timers.values()))

    def run_driver_timers(self, v: "VCPU") -> None:
        now = self.now(v) + TIMER_SLACK
        for dev, when in list(self.driver_timers.items()):
            if when <= now:
                del self.driver_timers[dev]
                self.queue_work(dev)
        if self.driver_timers:
            self.hypercall(v, HYPERVISOR_set_timer_op, min(self.driver_timers.values()))

    def queue_work(self, dev) -> None:
        """Ask for ``dev.do_work`` to run on vCPU 0, in its time."""
        if dev not in self.work:
            self.work[dev] = None
            self.xen.guest_cpu.kick(self.d.vcpus[0])

    def op_work(self, v: "VCPU"):
        dev = next(iter(self.work))
        del self.work[dev]
        return dev.do_work(v), True

    def cmdline_has(self, word: str) -> bool:
        return word.encode() in self.start_info.cmd_line.split()

    def kernel_log(self, v: "VCPU", text: str) -> None:
        self.console_write(v, text + "\n")

    # ------------------------------------------------------------ running
    def op_program(self, v: "VCPU"):
        """Take the program's next operation."""
        st = self.vcpus[v.vcpu_id]
        op = self.program[self.pc]
        self.pc += 1
        verb = op[0]
        if verb == "loop":
            self.pc = 0
        elif verb == "idle":
            self.pc = len(self.program)
        elif verb == "burn":
            self.burn = op[1]
            self.pc = len(self.program)
            st.queue[1:1] = [("kick", i) for i in range(1, len(self.d.vcpus))]
        elif verb == "echo":
            st.queue[1:1] = [("echo", op[1] + "\n")]
        elif verb == "balloon":
            st.queue[1:1] = [("balloon", op[1] >> PAGE_SHIFT)]
        elif verb == "crash":
            st.queue[1:1] = [("crash",)]
        elif verb == "xs":
            st.queue[1:1] = [("xs_send",) + op[1:]]
        elif verb == "dev":
            st.queue[1:1] = [op]
        else:                               # compute, sleep, shutdown
            st.queue[1:1] = [op]
        return OP_COST, False

    def op_compute(self, v: "VCPU", ns: int):
        return ns, not ns

    def op_sleep(self, v: "VCPU", ns: int):
        self.vcpus[v.vcpu_id].queue[0] = ("sleep_until", self.now(v) + ns)
        return 0, False

    def op_sleep_until(self, v: "VCPU", deadline: int):
        if self.now(v) + TIMER_SLACK >= deadline:
            return 0, True
        self.hypercall(v, HYPERVISOR_set_timer_op, deadline)
        self.hypercall(v, HYPERVISOR_sched_op, SCHEDOP_block)
        return 0, False

    def op_idle(self, v: "VCPU"):
        """Nothing to do: block until an event says otherwise (or the next
        driver timer is due)."""
        if self.has_work(v):
            return 0, True
        if v.vcpu_id == 0 and self.driver_timers:
            self.hypercall(v, HYPERVISOR_set_timer_op, min(self.driver_timers.values()))
        self.hypercall(v, HYPERVISOR_sched_op, SCHEDOP_block)
        return 0, False

    def op_kick(self, v: "VCPU", vcpu: int):
        """Wake another vCPU with its IPI."""
        self.hypercall(v, HYPERVISOR_event_channel_op, EVTCHNOP_send,
                       EvtchnSend(port=self.vcpus[vcpu].ipi_port))
        return 0, True

    def op_echo(self, v: "VCPU", text: str):
        self.console_write(v, text)
        return 0, True

    def op_shutdown(self, v: "VCPU", reason: int):
        self.hypercall(v, HYPERVISOR_sched_op, SCHEDOP_shutdown, SchedShutdown(reason=reason))
        return 0, True

    def op_frozen(self, v: "VCPU"):
        return suspend.op_frozen(self, v)

    def op_suspend_return(self, v: "VCPU"):
        return suspend.op_suspend_return(self, v)

    def op_crash(self, v: "VCPU"):
        raise KernelPanic("crash requested by the workload")

    # ------------------------------------------------------------ xenstore
    def op_xs_send(self, v: "VCPU", verb: str, path: str, value: str):
        xb = self.xenbus
        if xb is None:
            self.console_write(v, f"xs-{verb} {path}: no xenstore ring\n")
            return 0, True
        p = path.encode()
        type_, payload = {
            "read": (XS_READ, p + b"\0"), "write": (XS_WRITE, p + b"\0" + value.encode()),
            "mkdir": (XS_MKDIR, p + b"\0"), "rm": (XS_RM, p + b"\0"),
            "ls": (XS_DIRECTORY, p + b"\0"), "watch": (XS_WATCH, p + b"\0" + p + b"\0"),
            "unwatch": (XS_UNWATCH, p + b"\0" + p + b"\0"),
        }[verb]
        if len(payload) > XENSTORE_PAYLOAD_MAX:
            # Refused before it is sent, as xenbus and libxenstore do: the
            # store would drop the connection over it.
            self.xs_log.append((verb, path, "E2BIG"))
            self.console_write(v, f"xs-{verb} {path}: E2BIG\n")
            return 0, True
        req_id = xb.request(type_, payload)
        self.vcpus[v.vcpu_id].queue[0] = ("xs_wait", req_id, verb, path)
        self.xenbus_kick(v)
        return 0, False

    def op_xs_wait(self, v: "VCPU", req_id: int, verb: str, path: str):
        """Wait for the reply, sending what is left of the request as the
        ring makes room."""
        xb = self.xenbus
        reply = xb.replies.pop(req_id, None)
        if reply is None:
            if xb.broken:
                raise KernelPanic("xenbus: the store sent garbage")
            self.hypercall(v, HYPERVISOR_sched_op, SCHEDOP_block)
            return 0, False
        type_, payload = reply
        if type_ == XS_ERROR:
            outcome = payload.rstrip(b"\0").decode(errors="replace")
        elif verb == "read":
            outcome = payload.decode(errors="replace")
        elif verb == "ls":
            outcome = " ".join(c.decode(errors="replace") for c in payload.split(b"\0")[:-1])
        else:
            outcome = payload.rstrip(b"\0").decode(errors="replace")
        self.xs_log.append((verb, path, outcome))
        sep = " =" if verb == "read" and type_ != XS_ERROR else ":"
        self.console_write(v, f"xs-{verb} {path}{sep} {outcome}\n")
        return 0, True

    def xs(self, v: "VCPU", type_: int, payload: bytes, then=None, *ctx) -> None:
        """Send a request; ``then(v, ok, payload, *ctx)`` gets its reply."""
        self.xenbus.request(type_, payload, then, ctx)
        self.xenbus_kick(v)

    def xs_list(self, v: "VCPU", path: str, then, *ctx) -> None:
        self.xs(v, XS_DIRECTORY, path.encode() + b"\0", then, *ctx)

    def xenbus_kick(self, v: "VCPU") -> None:
        """Move both rings on and tell the store when either moved; then
        hand replies and events to whoever waits for them."""
        xb = self.xenbus
        page = self.xen.frames.map_domain_page(self.d, xb.mfn, writable=True)
        seen = len(xb.events)
        moved, calls = xb.read(page)
        moved = xb.write(page) or moved
        if moved:
            self.notify(v, xb.port)
        for path, _token in xb.events[seen:]:
            self.xs_log.append(("watch-event", path.decode(errors="replace"), ""))
            self.console_write(v, f"xs-watch-event {path.decode(errors='replace')}\n")
        for then, args in calls:
            try:
                then(v, *args)
            except KernelPanic as e:
                # A driver that can't go on (no memory, a full grant
                # table) fails its device, as Linux's xenbus_dev_fatal().
                dev = device_of(then)
                if dev is None:
                    raise
                dev.fatal(v, str(e))
        if self.deferred_grants and calls:
            self.retry_deferred_grants(v)
        if self.suspending == suspend.FREEZING:
            suspend.try_suspend(self, v)

    # ------------------------------------------------------------ console
    def console_write(self, v: "VCPU", text: str) -> None:
        self.console_out += text.encode()
        self.console_flush(v)

    def console_flush(self, v: "VCPU") -> bool:
        """Dom0 writes to Xen's console; the others fill their console ring
        and notify its port. What does not fit waits for the backend.
        True when the backend was notified."""
        data = self.console_out
        if not data or self.start_info is None:
            return False
        if self.start_info.flags & SIF_INITDOMAIN:
            self.hypercall(v, HYPERVISOR_console_io, CONSOLEIO_write, len(data), data)
            self.console_out = b""
            return False
        ring = self.xen.frames.map_domain_page(self.d, self.start_info.console_mfn, writable=True)
        _in_cons, _in_prod, out_cons, out_prod = _RING_IDX.unpack_from(ring, _CONS_IDX)
        room = _CONS_OUT_SIZE - ((out_prod - out_cons) & 0xFFFFFFFF)
        sent = data[:max(0, room)]
        for i, byte in enumerate(sent):
            ring[_CONS_OUT + (out_prod + i) % _CONS_OUT_SIZE] = byte
        _U32.pack_into(ring, _CONS_IDX + 12, (out_prod + len(sent)) & 0xFFFFFFFF)
        self.console_out = data[len(sent):]
        if sent:
            self.hypercall(v, HYPERVISOR_event_channel_op, EVTCHNOP_send,
                           EvtchnSend(port=self.start_info.console_evtchn))
        return bool(sent)

    def console_event(self, v: "VCPU") -> None:
        """The backend moved the ring: what it typed comes in (and is
        echoed), what waited for room goes out, and the backend hears
        that there is room for more input."""
        typed = self.console_read()
        self.console_out += typed
        if not self.console_flush(v) and typed:
            self.hypercall(v, HYPERVISOR_event_channel_op, EVTCHNOP_send,
                           EvtchnSend(port=self.start_info.console_evtchn))

    def console_read(self) -> bytes:
        """Take everything in the ``in`` ring. Indices further apart than
        the ring is long are not the backend's to make: the ring is left
        as it is."""
        ring = self.xen.frames.map_domain_page(self.d, self.start_info.console_mfn, writable=True)
        in_cons, in_prod, _out_cons, _out_prod = _RING_IDX.unpack_from(ring, _CONS_IDX)
        size = (in_prod - in_cons) & 0xFFFFFFFF
        if not size or size > _CONS_IN_SIZE:
            return b""
        start = in_cons % _CONS_IN_SIZE
        first = min(size, _CONS_IN_SIZE - start)
        data = bytes(ring[_CONS_IN + start:_CONS_IN + start + first]) + \
            bytes(ring[_CONS_IN:_CONS_IN + size - first])
        _U32.pack_into(ring, _CONS_IDX, in_prod)
        self.console_in += data
        return data

    # ------------------------------------------------------------ balloon
    def op_balloon(self, v: "VCPU", target: int):
        """Move toward ``target`` pages one batch at a time; done when there
        or when Xen will not go further."""
        held = self.nr_pages - len(self.ballooned)
        if held > target:
            count = self._balloon_out(v, min(held - target, BALLOON_BATCH))
        elif held < target:
            count = self._balloon_in(v, min(target - held, BALLOON_BATCH))
        else:
            return 0, True
        if not count:
            return 0, True
        self.vcpus[v.vcpu_id].queue.insert(1, ("balloon", target))
        return count * BALLOON_NS_PER_PAGE, True

    def _balloon_out(self, v: "VCPU", count: int) -> int:
        given = set(self.ballooned)
        pfns = []
        pfn = self.nr_pages - 1
        while len(pfns) < count and pfn >= 0:
            if pfn not in given and pfn not in self.reserved and pfn not in self.allocated:
                pfns.append(pfn)
            pfn -= 1
        mfns = tuple(self.p2m_get(p) for p in pfns)
        done, _ = self.hypercall(v, HYPERVISOR_memory_op, XENMEM_decrease_reservation,
                                 XenMemoryReservation(extent_start=mfns, nr_extents=len(mfns),
                                                      domid=DOMID_SELF))
        for p in pfns[:max(done, 0)]:
            self.p2m_set(p, INVALID_P2M_ENTRY)
        self.ballooned = sorted(given | set(pfns[:max(done, 0)]))
        return max(done, 0)

    def _balloon_in(self, v: "VCPU", count: int) -> int:
        pfns = tuple(self.ballooned[:count])
        done, out = self.hypercall(v, HYPERVISOR_memory_op, XENMEM_populate_physmap,
                                   XenMemoryReservation(extent_start=pfns, nr_extents=len(pfns),
                                                        domid=DOMID_SELF))
        done = max(done, 0)
        for pfn, mfn in zip(pfns[:done], out.extent_start[:done] if done else ()):
            self.p2m_set(pfn, mfn)
        self.ballooned = self.ballooned[done:]
        return done

    # ------------------------------------------------------------ events
    def upcall_deliverable(self, v: "VCPU") -> bool:
        info = self.d.shared_info
        off = v.vcpu_info_offset
        return (bool(info[off + VCPUINFO_UPCALL_PENDING]) and not info[off + VCPUINFO_UPCALL_MASK]
                and CALLBACKTYPE_event in v.callbacks)

    def upcall(self, v: "VCPU") -> tuple[tuple[int, ...], int]:
        """The event callback (xen_evtchn_do_upcall()). Xen masked events
        when it delivered it; the kernel opens them again when done.
        Returns (the ports handled, the selector bits taken)."""
        info = self.d.shared_info
        off = v.vcpu_info_offset
        info[off + VCPUINFO_UPCALL_MASK] = 1
        handled = []
        taken = 0
        while info[off + VCPUINFO_UPCALL_PENDING]:
            info[off + VCPUINFO_UPCALL_PENDING] = 0
            sel = _U64.unpack_from(info, off + VCPUINFO_PENDING_SEL)[0]
            _U64.pack_into(info, off + VCPUINFO_PENDING_SEL, 0)
            taken |= sel
            while sel:
                word = (sel & -sel).bit_length() - 1
                sel &= sel - 1
                pending = _U64.unpack_from(info, SHINFO_EVTCHN_PENDING + word * 8)[0]
                masked = _U64.unpack_from(info, SHINFO_EVTCHN_MASK + word * 8)[0]
                ready = pending & ~masked & self._mine(v.vcpu_id, word)
                while ready:
                    bit = (ready & -ready).bit_length() - 1
                    ready &= ready - 1
                    port = word * 64 + bit
                    info[SHINFO_EVTCHN_PENDING + (port >> 3)] &= ~(1 << (port & 7)) & 0xFF
                    self.handle_port(v, port)
                    handled.append(port)
        info[off + VCPUINFO_UPCALL_MASK] = 0
        return tuple(handled), taken

    def _mine(self, vcpu: int, word: int) -> int:
        """The ports of selector word ``word`` this vCPU handles."""
        if vcpu:
            return self.bound[vcpu] >> (word * 64) & 0xFFFFFFFFFFFFFFFF
        others = 0
        for mask in self.bound:
            others |= mask
        return ~(others >> (word * 64)) & 0xFFFFFFFFFFFFFFFF

    def nmi(self, v: "VCPU") -> None:
        """The NMI handler: nothing claims it, so Linux's
        unknown_nmi_error() reports it and carries on."""
        self.kernel_log(v, f"Uhhuh. NMI received for unknown reason 00 on CPU {v.vcpu_id}.")
        self.kernel_log(v, "Dazed and confused, but trying to continue")

    def handle_port(self, v: "VCPU", port: int) -> None:
        listener = self.listeners.get(port)
        if listener is not None:
            listener(v, port)
            return
        dev = self.irqs.get(port)
        if dev is not None:
            dev.interrupt(v, port)
            return
        kind = self.handlers.get(port)
        if kind == "timer":
            self.vcpus[v.vcpu_id].ticks += 1
            if v.vcpu_id == 0 and self.driver_timers:
                self.run_driver_timers(v)
        elif kind == "ipi":
            st = self.vcpus[v.vcpu_id]
            if st.offline and st.queue[:1] != [("play_dead",)]:
                self._stop_this_cpu(v)
        elif kind == "console":
            self.console_event(v)
        elif kind == "xenbus":
            self.xenbus_kick(v)
