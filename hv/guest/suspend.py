"""A guest kernel's suspend and resume (Linux's drivers/xen/manage.c
do_suspend(), arch/x86/xen/suspend.c and the resume hooks they run).

The toolstack asks by writing "suspend" to control/shutdown. The kernel
acknowledges, stops its program where it is (freeze_processes()), and
waits until nothing it asked the store is still unanswered (xs_suspend()).
Then, on vCPU 0, it publishes where its P2M is (xen_build_mfn_list_list():
a frame listing the frames that list the P2M's own frames, named in
shared_info), turns start_info's store and console frames into
pseudo-physical numbers (xen_pv_pre_suspend()), and makes the suspend
hypercall: SCHEDOP_shutdown with SHUTDOWN_suspend, start_info's frame as
its third argument. The domain is then shut down for suspend and its
vCPUs stop; the toolstack copies it.

When vCPU 0 runs again, rax says where it is:

* 1: the suspend was cancelled (xl save -c, or a save that failed) and the
  same domain goes on. start_info's frames are put back, and nothing else
  changes (xenbus_dev_cancel() does nothing).
* 0: a new domain, restored from the image, with the same memory at the
  same pseudo-physical addresses on other machine frames, and nothing else
  of the old one. start_info, which the toolstack rewrote, names the new
  store and console. The kernel registers its callbacks again, binds its
  VIRQs and IPIs again (xen_irq_resume(): every old port is gone, and the
  toolstack left every port masked), maps its grant table again
  (gnttab_resume(): every old grant is gone), reconnects xenbus to the new
  store and registers each of its watches again (xs_resume()), and every
  frontend resumes (xenbus_dev_resume()): it lets go of its old rings and
  handshakes with the backend the toolstack made afresh.

Linux suspends under stop_machine with interrupts off. Here the suspend
runs as soon as the store has answered everything: as vCPU 0's next
operation, or at the end of the event that brought the last answer,
whichever comes first, so that a vCPU in the middle of a computation is
suspended too, and computes what it had left once it is resumed.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from hv.public.io.xs_wire import XS_WATCH
from hv.public.sched import SCHEDOP_block, SCHEDOP_shutdown, SHUTDOWN_suspend, SchedShutdown
from hv.public.xen import (
    HYPERVISOR_sched_op, HYPERVISOR_set_timer_op, PAGE_SHIFT, PAGE_SIZE, START_INFO_MAGIC,
    ArchSharedInfo, SharedInfo, StartInfo,
)
from hv.xenstore import ring

if TYPE_CHECKING:
    from hv.guest.kernel import PVKernel
    from hv.xen.domain import VCPU

FREEZING = "freezing"        # asked: the program is stopped, the store settling
SUSPENDED = "suspended"      # the hypercall made: what rax says comes next
# P2M entries in a frame; so many frames listed in each frame of the list.
ENTRIES_PER_PAGE = PAGE_SIZE // 8
ARCH = SharedInfo.offsetof("arch")
ARCH_MAX_PFN = ARCH + ArchSharedInfo.offsetof("max_pfn")
ARCH_P2M_FLL = ARCH + ArchSharedInfo.offsetof("pfn_to_mfn_frame_list_list")
STORE_MFN = StartInfo.offsetof("store_mfn")
CONSOLE_MFN = StartInfo.offsetof("console_mfn")
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")


def request(k: "PVKernel", v: "VCPU") -> None:
    """control/shutdown said "suspend" (the request is acknowledged)."""
    if k.suspending:
        return
    k.suspending = FREEZING
    k.xen.guest_cpu.kick(k.d.vcpus[0])


def try_suspend(k: "PVKernel", v: "VCPU") -> bool:
    """Suspend now if asked to, on vCPU 0, with the store settled."""
    if k.suspending != FREEZING or v.vcpu_id != 0 or k.xenbus.busy:
        return False
    _suspend(k, v)
    return True


def op_frozen(k: "PVKernel", v: "VCPU"):
    """vCPU 0's program, stopped for a suspend: wait for the store."""
    if try_suspend(k, v):
        return 0, False             # suspend_return has taken this op's place
    k.hypercall(v, HYPERVISOR_sched_op, SCHEDOP_block)
    return 0, False


def _suspend(k: "PVKernel", v: "VCPU") -> None:
    publish_p2m(k)
    si = k.start_info
    page = k.page(k.start_info_pfn)
    for offset, mfn in ((STORE_MFN, si.store_mfn), (CONSOLE_MFN, si.console_mfn)):
        _U64.pack_into(page, offset, k.xen.frames.gpfn(mfn))     # the M2P, read-only to guests
    k.suspending = SUSPENDED
    k.hypercall(v, HYPERVISOR_sched_op, SCHEDOP_shutdown, SchedShutdown(reason=SHUTDOWN_suspend),
                k.p2m_get(k.start_info_pfn))
    _park(k, v)


def publish_p2m(k: "PVKernel") -> None:
    """xen_build_mfn_list_list(): a top frame listing mid frames, each
    listing the frames of the P2M list, named in shared_info's arch part
    with the number of pfns; the toolstack reads the P2M through them."""
    leaves = -(-k.nr_pages // ENTRIES_PER_PAGE)
    mids = -(-leaves // ENTRIES_PER_PAGE)
    if len(k.p2m_fll) != 1 + mids:
        k.free_pages(k.p2m_fll)
        k.p2m_fll = k.alloc_pages(1 + mids)
    leaf_mfns = [k.p2m_get(k.p2m_pfn + i) for i in range(leaves)]
    mid_mfns = []
    for i, pfn in enumerate(k.p2m_fll[1:]):
        chunk = leaf_mfns[i * ENTRIES_PER_PAGE:(i + 1) * ENTRIES_PER_PAGE]
        k.page(pfn)[:] = struct.pack(f"<{len(chunk)}Q", *chunk).ljust(PAGE_SIZE, b"\0")
        mid_mfns.append(k.p2m_get(pfn))
    k.page(k.p2m_fll[0])[:] = struct.pack(f"<{mids}Q", *mid_mfns).ljust(PAGE_SIZE, b"\0")
    info = k.d.shared_info
    _U64.pack_into(info, ARCH_MAX_PFN, k.nr_pages)
    _U64.pack_into(info, ARCH_P2M_FLL, k.p2m_get(k.p2m_fll[0]))


def _park(k: "PVKernel", v: "VCPU") -> None:
    """vCPU 0 goes on from suspend_return when it runs again. An operation
    still taking its time (its effects done) becomes the time it has left."""
    from hv.guest.kernel import FOREVER
    st = k.vcpus[v.vcpu_id]
    if st.op_end is not None:
        left = FOREVER if st.op_end >= FOREVER else st.op_end - k.xen.clock.now
        if st.timer is not None:
            st.timer.cancel()
            st.timer = None
        st.op_end = None
        st.queue[0] = ("compute", max(left, 0))
    if st.queue[:1] == [("frozen",)]:
        st.queue[0] = ("suspend_return",)
    else:
        st.queue.insert(0, ("suspend_return",))


def op_suspend_return(k: "PVKernel", v: "VCPU"):
    """The suspend hypercall returns: to the same domain, or to a new one."""
    regs = v.context.user_regs
    if regs.rax:
        _resume_cancelled(k)
    else:
        _resume_new_domain(k, v)
    k.suspending = None
    return 0, True


def _resume_cancelled(k: "PVKernel") -> None:
    """xen_pv_post_suspend(cancelled): start_info's frames as they were."""
    si = k.start_info
    page = k.page(k.start_info_pfn)
    _U64.pack_into(page, STORE_MFN, si.store_mfn)
    _U64.pack_into(page, CONSOLE_MFN, si.console_mfn)


def _resume_new_domain(k: "PVKernel", v: "VCPU") -> None:
    from hv.guest.kernel import KernelPanic
    info = StartInfo.unpack(k.read(k.start_info_pfn, StartInfo.SIZE))
    if info.magic != START_INFO_MAGIC or info.shared_info >> PAGE_SHIFT != k.d.shared_info_mfn:
        raise KernelPanic("resumed with a start_info that is not this domain's")
    k.start_info = info
    k.op_callbacks(v)
    # xen_irq_resume(): no port of the old domain exists any more.
    k.handlers, k.irqs, k.listeners = {}, {}, {}
    k.bound = [0] * len(k.d.vcpus)
    for vcpu in range(len(k.vcpus)):
        k.op_bind_timer(v, vcpu)
        k.op_bind_ipi(v, vcpu)
    if k.gnttab is not None:
        k.gnttab.remap(v)
    _reconnect_xenbus(k, v, info)
    k.handlers[info.console_evtchn] = "console"
    k.unmask(v, info.console_evtchn)
    k.console_flush(v)
    if k.driver_timers:
        k.hypercall(v, HYPERVISOR_set_timer_op, min(k.driver_timers.values()))
    if k.deferred_grants:
        k.retry_deferred_grants(v)


def _reconnect_xenbus(k: "PVKernel", v: "VCPU", info: StartInfo) -> None:
    """xs_resume() and the frontends' resume: the new store's ring (what
    the old store had not yet read is dropped, as xb_init_comms() does),
    every device let go of its old backend and looking up its new one,
    and every watch registered again."""
    xb = k.xenbus
    xb.reconnect(info.store_evtchn, info.store_mfn)
    page = k.xen.frames.map_domain_page(k.d, xb.mfn, writable=True)
    _U32.pack_into(page, ring.RSP[1], _U32.unpack_from(page, ring.RSP[2])[0])
    k.handlers[info.store_evtchn] = "xenbus"
    k.unmask(v, info.store_evtchn)
    for bus in k.buses:
        if bus.frontend:
            bus.resume(v)
    for token, path in list(xb.watches.items()):
        xb.request(XS_WATCH, path + b"\0" + token + b"\0")
    k.xenbus_kick(v)
