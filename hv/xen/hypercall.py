"""The hypercall table and its one boundary (the role of Xen's
arch/x86/hypercall.c and common/multicall.c).

A guest reaches the hypervisor only here: ``call(vcpu, number, *args)``.
Inside, errors are XenError; this is where they become Xen's negative
errno (ops that report how far a batch got, such as mmu_update, return the
errno of the element that stopped it beside the count). Every call is traced
with its arguments, its result and its output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from hv.public.errno import EFAULT, EINVAL, ENOSYS
from hv.public.xen import (
    HYPERCALL_NAMES, HYPERVISOR_callback_op, HYPERVISOR_console_io, HYPERVISOR_domctl, HYPERVISOR_sysctl,
    HYPERVISOR_event_channel_op, HYPERVISOR_grant_table_op, HYPERVISOR_memory_op,
    HYPERVISOR_mmu_update, HYPERVISOR_mmuext_op, HYPERVISOR_multicall, HYPERVISOR_platform_op,
    HYPERVISOR_sched_op, HYPERVISOR_set_gdt, HYPERVISOR_set_timer_op, HYPERVISOR_vcpu_op,
    HYPERVISOR_xen_version, MulticallEntry,
)
from hv.public import domctl as _domctl, sysctl as _sysctl, event_channel as _evtchn, grant_table as _gnttab
from hv.public import callback as _callback
from hv.public import memory as _memory, sched as _sched, vcpu as _vcpu, version as _version
from hv.public import xen as _xen
from hv.public.memory import MEMOP_CMD_MASK
from hv.xen.errors import XenError

if TYPE_CHECKING:
    from hv.xen.domain import VCPU
    from hv.xen.hypervisor import Xen


def _names(module, prefix: str) -> dict[int, str]:
    names: dict[int, str] = {}
    for name, value in vars(module).items():
        if name.startswith(prefix) and isinstance(value, int):
            names.setdefault(value, name[len(prefix):])
    return names


# Sub-op names, so the trace reads "event_channel_op:send".
_SUBOPS = {
    HYPERVISOR_event_channel_op: _names(_evtchn, "EVTCHNOP_"),
    HYPERVISOR_grant_table_op: _names(_gnttab, "GNTTABOP_"),
    HYPERVISOR_memory_op: _names(_memory, "XENMEM_"),
    HYPERVISOR_sched_op: _names(_sched, "SCHEDOP_"),
    HYPERVISOR_vcpu_op: _names(_vcpu, "VCPUOP_"),
    HYPERVISOR_xen_version: _names(_version, "XENVER_"),
    HYPERVISOR_console_io: _names(_xen, "CONSOLEIO_"),
    HYPERVISOR_callback_op: _names(_callback, "CALLBACKOP_"),
}
_DOMCTLS = _names(_domctl, "XEN_DOMCTL_")
_SYSCTLS = _names(_sysctl, "XEN_SYSCTL_")


_NAME_CACHE: dict[tuple, str] = {}


def call_name(nr: int, args: tuple) -> str:
    """How the trace names a call: the hypercall and, where it has one, its
    sub-op."""
    cmd = args[0] if args else None
    if nr in (HYPERVISOR_domctl, HYPERVISOR_sysctl):
        cmd = getattr(cmd, "cmd", None)
    key = (nr, cmd if isinstance(cmd, int) else None)
    name = _NAME_CACHE.get(key)
    if name is None:
        name = HYPERCALL_NAMES.get(nr, f"#{nr}")
        sub = key[1]
        if sub is not None and nr == HYPERVISOR_domctl:
            name = f"{name}:{_DOMCTLS.get(sub, sub)}"
        elif sub is not None and nr == HYPERVISOR_sysctl:
            name = f"{name}:{_SYSCTLS.get(sub, sub)}"
        elif sub is not None and nr in _SUBOPS:
            sub = sub & MEMOP_CMD_MASK if nr == HYPERVISOR_memory_op else sub
            name = f"{name}:{_SUBOPS[nr].get(sub, sub)}"
        if len(_NAME_CACHE) < 4096:
            _NAME_CACHE[key] = name
    return name


class Hypercall(NamedTuple):
    name: str
    fn: Callable
    min_args: int                # arguments after the vCPU
    max_args: int


class HypercallTable:
    def __init__(self, xen: "Xen"):
        self.xen = xen
        self._in_multicall = False
        entries = {
            HYPERVISOR_mmu_update: (xen.mmu.do_mmu_update, (1, 2)),
            HYPERVISOR_set_gdt: (xen.descriptor_tables.do_set_gdt, (2, 2)),
            HYPERVISOR_memory_op: (xen.memory.do_memory_op, (2, 2)),
            HYPERVISOR_multicall: (self.do_multicall, (1, 1)),
            HYPERVISOR_set_timer_op: (self.do_set_timer_op, (1, 1)),
            HYPERVISOR_platform_op: (xen.time.do_platform_op, (1, 1)),
            HYPERVISOR_callback_op: (xen.callbacks.do_callback_op, (2, 2)),
            HYPERVISOR_xen_version: (xen.version.do_xen_version, (1, 2)),
            HYPERVISOR_console_io: (xen.console.do_console_io, (3, 3)),
            HYPERVISOR_grant_table_op: (xen.gnttab.do_grant_table_op, (2, 2)),
            HYPERVISOR_vcpu_op: (xen.vcpu_ops.do_vcpu_op, (2, 3)),
            HYPERVISOR_mmuext_op: (xen.mmu.do_mmuext_op, (1, 2)),
            HYPERVISOR_sched_op: (xen.sched_ops.do_sched_op, (1, 3)),
            HYPERVISOR_event_channel_op: (xen.evtchn.do_event_channel_op, (2, 2)),
            HYPERVISOR_domctl: (self.do_domctl, (1, 1)),
            HYPERVISOR_sysctl: (xen.sysctl.do_sysctl, (1, 1)),
        }
        self.table: dict[int, Hypercall] = {
            nr: Hypercall(HYPERCALL_NAMES[nr], fn, *nargs) for nr, (fn, nargs) in entries.items()
        }

    def call(self, v: "VCPU", nr: int, *args) -> tuple[int, Any]:
        """Run hypercall ``nr`` for vCPU ``v``. Returns (rc, out): rc is what
        Xen returns in rax (a negative errno on failure), out is the argument
        as Xen leaves it (OUT fields filled in), or None."""
        xen = self.xen
        d = v.domain
        if d.is_dying:
            # A dying domain's vCPUs are paused for good: no code of its runs.
            raise RuntimeError(f"d{d.domid} is dying; its vCPUs cannot make hypercalls")
        entry = self.table.get(nr)
        xen.sched.this_cpu = v.processor
        trace = xen.trace
        record = None
        if trace.enabled:
            # Recorded before it runs, so that what it causes follows it; the
            # result is filled in after.
            trace.seq += 1
            record = [trace.seq, xen.clock.now, d.domid, v.vcpu_id, "hypercall",
                      call_name(nr, args), args, None, None]
            trace.append(record)
        if entry is None:
            rc, out = -ENOSYS, None
        else:
            _, fn, least, most = entry
            if not least <= len(args) <= most:
                rc, out = -EFAULT, None
            else:
                try:
                    rc, out = fn(v, *args)
                except XenError as e:
                    rc, out = -e.errno, None
        if record is not None:
            record[7] = rc
            record[8] = out
        if xen.deferred or xen.sched.softirq or xen.guest_cpu.pending:
            xen.process_pending()
        return rc, out

    def do_set_timer_op(self, v: "VCPU", timeout):
        return self.xen.sched.do_set_timer_op(v, timeout), None

    def do_domctl(self, v: "VCPU", op):
        return self.xen.domctl.do_domctl(v, op)

    def do_multicall(self, v: "VCPU", entries):
        """Run each entry in turn; each gets its own result. A multicall
        inside a multicall is refused."""
        if not isinstance(entries, (tuple, list)) or any(
                type(e) is not MulticallEntry for e in entries):
            raise XenError(EFAULT)
        if self._in_multicall:
            raise XenError(EINVAL)
        self._in_multicall = True
        try:
            results = []
            for entry in entries:
                # Unused argument words are NULL: a call takes the ones it needs.
                args = list(entry.args)
                while args and args[-1] is None:
                    args.pop()
                results.append(self.call(v, entry.op, *args))
        finally:
            self._in_multicall = False
        return 0, tuple(results)
