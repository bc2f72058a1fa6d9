"""`xl save` and `xl restore`: the toolstack's side (libxl_domain_suspend()
and libxc's xc_domain_save(); libxl_domain_create_restore() and
xc_domain_restore()), through dom0's hypercalls and xenstore. The file's
bytes are xl/savefile.py's.

Save. The toolstack writes "suspend" to the guest's control/shutdown and
runs the machine until the guest has acknowledged it (the node cleared)
and then shut down with reason suspend (hv/guest/suspend.py is the
kernel's side), giving up after 60 s of virtual time for each, as libxl
does. It then reads the domain as libxc does: the P2M through the frame
list the kernel named in shared_info, every page by its pfn, shared_info,
each online vCPU's context (XEN_DOMCTL_getvcpucontext; vCPU 0's rdx holds
start_info's frame, written to the file as its pfn), and writes the file
with the config. Then the domain is destroyed, or with -c resumed: vCPU
0's rax becomes 1 (libxc's modify_returncode), XEN_DOMCTL_resumedomain
undoes the shutdown and XS_RESUME lets xenstored announce the next one;
with -p it is paused first. A save that fails resumes the domain the same
way, and leaves no file behind.

Restore. The whole file is read and checked first. Then a new domain:
created with the saved uuid, its memory populated at the image's pfns
(on new machine frames) and filled, the guest's P2M rewritten with the new
frames, new store and console channels, the reserved grant entries seeded,
start_info rewritten with the new frames and channels (libxc's
process_start_info()), shared_info's vCPU and arch parts copied with every
port masked and nothing pending (handle_shared_info()), each vCPU's context
set (vCPU 0's rdx the new start_info frame), its xenstore entries and
devices made afresh as at create, and unpaused unless -p.

Where this differs from Xen:

* The kernel's own state is not in its pages but in Python objects (see
  hv/guest/kernel_state.py): saving freezes the domain's kernel object
  into the file, and restoring makes the thawed one the new domain's
  kernel, as the pages it would live in are written.
* Domains serving devices to others (driver domains) are not saved, and
  a paused domain is refused at once rather than after libxl's timeout
  (its kernel can't answer).
* The config saved is the domain's as it is now (libxl_retrieve_domain_
  configuration()): its current name, uuid and memory target.
"""

from __future__ import annotations

import json
import os
import struct
import uuid as uuidlib
from dataclasses import replace

from hv.guest.kernel_state import KernelStateError, freeze, thaw
from hv.public.domctl import (
    XEN_DOMCTL_SCHEDOP_getinfo, XEN_DOMCTL_SCHEDOP_putinfo, XEN_DOMCTL_INTERFACE_VERSION, XEN_DOMCTL_createdomain, XEN_DOMCTL_destroydomain,
    XEN_DOMCTL_getdomaininfo, XEN_DOMCTL_getvcpucontext, XEN_DOMCTL_getvcpuinfo,
    XEN_DOMCTL_max_mem, XEN_DOMCTL_max_vcpus, XEN_DOMCTL_pausedomain, XEN_DOMCTL_resumedomain,
    XEN_DOMCTL_setvcpucontext, XEN_DOMCTL_unpausedomain, XEN_DOMINF_dying, XEN_DOMINF_paused,
    XEN_DOMINF_shutdown, XEN_DOMINF_shutdownmask, XEN_DOMINF_shutdownshift, XenDomctl,
    XenDomctlCreatedomain, XenDomctlGetvcpuinfo, XenDomctlMaxMem, XenDomctlMaxVcpus,
    XenDomctlSchedCredit, XenDomctlVcpucontext,
)
from hv.public.grant_table import GNTTAB_RESERVED_CONSOLE, GNTTAB_RESERVED_XENSTORE
from hv.public.memory import XENMEM_populate_physmap, XenMemoryReservation
from hv.public.sched import SHUTDOWN_NAMES, SHUTDOWN_suspend
from hv.public.xen import (
    HYPERVISOR_domctl, HYPERVISOR_memory_op, PAGE_SHIFT, PAGE_SIZE, SHINFO_EVTCHN_MASK,
    SHINFO_EVTCHN_PENDING, SHINFO_VCPU_INFO, VCPU_INFO_SIZE, VCPUINFO_PENDING_SEL, VGCF_online,
    XEN_LEGACY_MAX_VCPUS, ArchSharedInfo, SharedInfo, StartInfo, VcpuGuestContext,
)
from hv.xen.version import XEN_MAJOR, XEN_MINOR
from hv.xenstore.errors import XsError
from xl import savefile
from xl.device import device_add
from xl.devspec import DevSpecError
from xl.dombuild import (
    MAX_EVTCHN_PORT, MAX_GRANT_FRAMES, MAX_MAPTRACK_FRAMES, MAXMEM_SLACK_KIB, SUPERPAGE_ORDER,
    BuiltDomain, _alloc_unbound, _seed_grants, uuid_text,
)
from xl.domain_store import make_domain_entries, remove_domain_entries
from xl.domconfig import libxl_json, with_defaults
from xl.info import start_time_text
from xl.privcmd import HypercallError
from xl.toolstack import ToolstackError

NS_PER_S = 1_000_000_000
# libxl's waits: for the guest to acknowledge, then to suspend.
SUSPEND_TIMEOUT_NS = 60 * NS_PER_S
# How often the toolstack looks again while it waits (virtual time).
POLL_NS = 1_000_000
INVALID_P2M_ENTRY = (1 << 64) - 1
ENTRIES_PER_PAGE = PAGE_SIZE // 8
ARCH = SharedInfo.offsetof("arch")
ARCH_MAX_PFN = ARCH + ArchSharedInfo.offsetof("max_pfn")
ARCH_P2M_FLL = ARCH + ArchSharedInfo.offsetof("pfn_to_mfn_frame_list_list")
ZERO_PAGE = bytes(PAGE_SIZE)
_U64 = struct.Struct("<Q")


def _domctl(ts, cmd: int, domid: int, u=None, what: str = "domctl") -> XenDomctl:
    op = XenDomctl(cmd=cmd, interface_version=XEN_DOMCTL_INTERFACE_VERSION, domain=domid, u=u)
    return ts.pc.hypercall(HYPERVISOR_domctl, op, what=what)[1]


def _dominfo(ts, domid: int):
    try:
        info = _domctl(ts, XEN_DOMCTL_getdomaininfo, domid, what="getdomaininfo").u
    except HypercallError:
        info = None
    if info is None or info.domain != domid:
        raise ToolstackError(f"domain {domid} has gone")
    return info


# ---------------------------------------------------------------- save
def save(ts, domain, path: str | None, checkpoint: bool = False, leave_paused: bool = False,
         config: dict | None = None) -> dict:
    """Save ``domain`` to ``path`` (None: do everything but write the
    file, as a replayed journal does). The answer: the domain's id, the
    file's size, and xl's header numbers."""
    domid = ts.domid_of(domain)
    if domid == 0:
        raise ToolstackError("dom0 can't be saved")
    info = _dominfo(ts, domid)
    if info.flags & (XEN_DOMINF_shutdown | XEN_DOMINF_dying):
        reason = (info.flags >> XEN_DOMINF_shutdownshift) & XEN_DOMINF_shutdownmask
        raise ToolstackError(f"domain {domid} has shut down ({SHUTDOWN_NAMES.get(reason, reason)}): "
                             "only a running domain can be saved")
    if info.flags & XEN_DOMINF_paused:
        raise ToolstackError(f"domain {domid} is paused, so its kernel can't answer the suspend "
                             "request: unpause it first (xl save -p leaves it paused afterwards)")
    if _serves_devices(ts, domid):
        raise ToolstackError(f"domain {domid} serves devices to other domains; saving a driver "
                             "domain is not supported")
    kept = config if config is not None else ts.config_of(domid)
    if kept is None:
        raise ToolstackError("unable to retrieve domain configuration")
    saved_config = _config_now(ts, domid, info, kept, config is not None)
    out = _open_for_writing(path)
    try:
        _suspend(ts, domid)
        try:
            data, header = savefile.save_file(saved_config, _capture(ts, domid))
            if out is not None:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
                out.close()
        except (ToolstackError, OSError) as e:
            _resume(ts, domid)
            raise ToolstackError(f"Failed to save domain, resuming domain: {_why(e)}") from None
    except BaseException:
        if out is not None:
            out.close()
            os.unlink(path)
        raise
    if checkpoint or leave_paused:
        if leave_paused:
            _domctl(ts, XEN_DOMCTL_pausedomain, domid, what="pausedomain")
        _resume(ts, domid)
    else:
        ts.destroy(domid)
    return {"domid": domid, "bytes": len(data), "info": list(header)}


def _why(e: Exception) -> str:
    return f"{e.filename}: {e.strerror}" if isinstance(e, OSError) and e.filename else str(e)


def _open_for_writing(path: str | None):
    if path is None:
        return None
    try:
        return open(path, "wb")
    except OSError as e:
        raise ToolstackError(f"Failed to open temp file {path} for writing: {e.strerror}") from None


def _serves_devices(ts, domid: int) -> bool:
    try:
        return bool(ts.xs.directory(f"/local/domain/{domid}/backend"))
    except XsError:
        return False


def _config_now(ts, domid: int, info, kept: dict, given: bool) -> dict:
    """libxl_retrieve_domain_configuration(): the domain as it is now, as
    libxl JSON, with this toolstack's own config under "xenlab"."""
    config = {key: value for key, value in kept.items() if key != "paused"}
    if not given:
        config["name"] = ts.name_of(domid) or config.get("name")
        config["uuid"] = uuid_text(bytes(info.handle))
        try:
            config["memory"] = int(ts.xs.read(f"/local/domain/{domid}/memory/target")) // 1024
        except (XsError, ValueError):
            pass
    try:
        shaped = libxl_json(with_defaults(config))
    except (KeyError, TypeError, ValueError, DevSpecError) as e:
        raise ToolstackError(f"the config can't be written as libxl JSON: {e}") from None
    return {**shaped, "xenlab": config}


def _suspend(ts, domid: int) -> None:
    """Ask the guest to suspend and wait until it has (libxl's
    domain_suspend_common_pvcontrol_suspending() and _wait_guest())."""
    node = f"/local/domain/{domid}/control/shutdown"
    ts.xs.write(node, "suspend")
    if not _wait(ts, lambda: _read(ts, node) != "suspend"):
        if _read(ts, node) == "suspend":
            ts.xs.write(node, "")
            raise ToolstackError("guest didn't acknowledge suspend, cancelling request")
    if not _wait(ts, lambda: _dominfo(ts, domid).flags & XEN_DOMINF_shutdown):
        raise ToolstackError("guest did not suspend, timed out")
    info = _dominfo(ts, domid)
    reason = (info.flags >> XEN_DOMINF_shutdownshift) & XEN_DOMINF_shutdownmask
    if reason != SHUTDOWN_suspend:
        raise ToolstackError(f"guest we were suspending has shut down with unexpected reason "
                             f"code {reason}")


def _read(ts, path: str) -> str | None:
    try:
        return ts.xs.read(path).decode(errors="replace")
    except XsError:
        return None


def _wait(ts, done) -> bool:
    """Run the machine until ``done()``, for 60 s of virtual time at most."""
    host = ts.host
    deadline = host.now + SUSPEND_TIMEOUT_NS
    while not done():
        if host.now >= deadline:
            return False
        host.run(until=min(deadline, host.now + POLL_NS))
    return True


def _capture(ts, domid: int) -> savefile.DomainImage:
    """What xc_domain_save() reads of a suspended PV domain."""
    pc = ts.pc
    frames = pc.xen.frames
    info = _dominfo(ts, domid)
    d = pc.xen.domains.get(domid)
    shared_info = bytes(pc.peek_foreign(info.shared_info_frame))
    count = _U64.unpack_from(shared_info, ARCH_MAX_PFN)[0]
    fll = _U64.unpack_from(shared_info, ARCH_P2M_FLL)[0]
    if not count or not fll:
        raise ToolstackError("the guest has not said where its P2M is "
                             "(shared_info's pfn_to_mfn_frame_list_list is 0)")

    def frame(mfn: int, what: str):
        if frames.owner(mfn) is not d:
            raise ToolstackError(f"{what} is in frame {mfn:#x}, which is not the domain's")
        return pc.peek_foreign(mfn)

    leaves = -(-count // ENTRIES_PER_PAGE)
    mids = -(-leaves // ENTRIES_PER_PAGE)
    mid_mfns = struct.unpack_from(f"<{mids}Q", frame(fll, "the P2M's frame list list"))
    leaf_mfns: list[int] = []
    for mfn in mid_mfns:
        leaf_mfns += struct.unpack_from(f"<{ENTRIES_PER_PAGE}Q", frame(mfn, "the P2M's frame list"))
    leaf_mfns = leaf_mfns[:leaves]
    p2m: list[int] = []
    for mfn in leaf_mfns:
        p2m += struct.unpack_from(f"<{ENTRIES_PER_PAGE}Q", frame(mfn, "the P2M"))
    pages: dict[int, bytes | None] = {}
    for pfn, mfn in enumerate(p2m[:count]):
        if mfn == INVALID_P2M_ENTRY:
            continue                    # given back to Xen (XTAB): nothing to send
        data = frame(mfn, f"pfn {pfn:#x}")
        pages[pfn] = None if data == ZERO_PAGE else bytes(data)
    vcpus = {}
    for vcpu in range(info.max_vcpu_id + 1):
        got = _domctl(ts, XEN_DOMCTL_getvcpuinfo, domid, XenDomctlGetvcpuinfo(vcpu=vcpu),
                      what="getvcpuinfo").u
        if not got.online:
            continue                    # libxc saves online vCPUs only
        ctxt = _domctl(ts, XEN_DOMCTL_getvcpucontext, domid, XenDomctlVcpucontext(vcpu=vcpu),
                       what="getvcpucontext").u.ctxt
        if ctxt.gdt_ents:
            raise ToolstackError(f"vCPU {vcpu} has a GDT of its own, which a save can't carry here")
        if vcpu == 0:
            # The suspend record: start_info's frame, saved as its pfn.
            start_info_pfn = frames.gpfn(ctxt.user_regs.rdx)
            if start_info_pfn is None or frames.owner(ctxt.user_regs.rdx) is not d:
                raise ToolstackError("vCPU 0 names no start_info of the domain's (rdx)")
            ctxt = ctxt.replace(user_regs=ctxt.user_regs.replace(rdx=start_info_pfn))
        vcpus[vcpu] = ctxt.pack()
    if d.guest is None:
        raise ToolstackError("the domain runs no kernel this machine models")
    try:
        kernel_state = freeze(d.guest)
    except KernelStateError as e:
        raise ToolstackError(f"saving the kernel's state: {e}") from None
    return savefile.DomainImage(
        max_pfn=count - 1, p2m_frames=[frames.gpfn(mfn) for mfn in leaf_mfns], pages=pages,
        shared_info=shared_info, vcpus=vcpus, kernel_state=kernel_state,
        xen_version=(XEN_MAJOR, XEN_MINOR))


def _resume(ts, domid: int) -> None:
    """libxl_domain_resume(suspend_cancel=1): the suspend hypercall returns
    1 in the same domain, which goes on."""
    ctxt = _domctl(ts, XEN_DOMCTL_getvcpucontext, domid, XenDomctlVcpucontext(vcpu=0),
                   what="getvcpucontext").u.ctxt
    ctxt = ctxt.replace(user_regs=ctxt.user_regs.replace(rax=1))
    _domctl(ts, XEN_DOMCTL_setvcpucontext, domid, XenDomctlVcpucontext(vcpu=0, ctxt=ctxt),
            what="setvcpucontext")
    _domctl(ts, XEN_DOMCTL_resumedomain, domid, what="resumedomain")
    ts.xs.resume(domid)


# ---------------------------------------------------------------- restore
def restore(ts, data: bytes, paused: bool = False, config: dict | None = None,
            source: str = "the save file") -> dict:
    """A new domain from the bytes of a save file; nothing is made unless
    the whole file reads well."""
    try:
        saved = savefile.read_save_file(data)
    except savefile.SaveFileError as e:
        raise ToolstackError(f"{source}: {e}") from None
    cfg = dict(config if config is not None else saved.config["xenlab"])
    try:
        cfg = with_defaults(cfg)
    except (TypeError, ValueError) as e:
        raise ToolstackError(f"{source}: the saved config is damaged: {e}") from None
    name = cfg.get("name")
    if not name or not isinstance(name, str):
        raise ToolstackError(f"{source}: the config gives no name")
    if not cfg.get("uuid"):
        cfg["uuid"] = ts.new_uuid(name)         # a config given without one gets a new one
    if any(d["name"] == name for d in ts.list_domains()):
        raise ToolstackError(f"a domain named {name!r} already exists")
    image = saved.image
    try:
        vcpus = int(cfg["vcpus"])
        maxmem_kib = int(cfg["maxmem"]) * 1024
        memory_kib = int(cfg["memory"]) * 1024
        handle = uuidlib.UUID(cfg["uuid"]).bytes
        devices = ts._devices(name, cfg)
    except (DevSpecError, ValueError, TypeError, KeyError) as e:
        raise ToolstackError(f"{source}: {e}") from None
    if max(image.vcpus) >= vcpus:
        raise ToolstackError(f"{source}: the image has vCPU {max(image.vcpus)}, the config "
                             f"gives the domain {vcpus}")
    built = _build(ts, image, handle, vcpus, maxmem_kib)
    domid = built.domid
    try:
        make_domain_entries(ts.xs, domid, name=name, uuid=uuid_text(handle), memory_kib=memory_kib,
                            maxmem_kib=maxmem_kib, vcpus=vcpus, store_port=built.store_port,
                            store_mfn=built.store_mfn, console_port=built.console_port,
                            console_mfn=built.console_mfn, start_time=start_time_text(ts.pc))
        ts.xs.introduce(domid, built.store_mfn, built.store_port)
        for dev in devices:
            device_add(ts.xs, replace(dev, domid=domid))
        ts.xs.write(f"/libxl/{domid}/xenlab-config", json.dumps(cfg, sort_keys=True))
        if "cpu_weight" in cfg or "cap" in cfg:
            _sched_params(ts, domid, cfg)
    except (XsError, HypercallError, ToolstackError, ValueError) as e:
        remove_domain_entries(ts.xs, domid, uuid_text(handle))
        _domctl(ts, XEN_DOMCTL_destroydomain, domid, what="destroydomain")
        raise ToolstackError(f"restoring {name}: {e}") from None
    if not paused:
        _domctl(ts, XEN_DOMCTL_unpausedomain, domid, what="unpausedomain")
    return {"domid": domid, "name": name,
            "info": [saved.mandatory_flags, saved.optional_flags, saved.optional_data_len]}


def _sched_params(ts, domid: int, cfg: dict) -> None:
    """What the config sets of the credit scheduler, as at create."""
    now = ts._sched(domid, XEN_DOMCTL_SCHEDOP_getinfo, XenDomctlSchedCredit())
    ts._sched(domid, XEN_DOMCTL_SCHEDOP_putinfo, XenDomctlSchedCredit(
        weight=cfg.get("cpu_weight", now.weight), cap=cfg.get("cap", now.cap)))


def _build(ts, image: savefile.DomainImage, handle: bytes, vcpus: int,
           maxmem_kib: int) -> BuiltDomain:
    """The domain, built from the image (xc_domain_restore()), paused;
    destroyed again if any step fails."""
    pc = ts.pc
    try:
        created = _domctl(ts, XEN_DOMCTL_createdomain, 0, XenDomctlCreatedomain(
            handle=tuple(handle), max_vcpus=vcpus, max_evtchn_port=MAX_EVTCHN_PORT,
            max_grant_frames=MAX_GRANT_FRAMES, max_maptrack_frames=MAX_MAPTRACK_FRAMES,
            grant_opts=1), what="createdomain")
    except HypercallError as e:
        raise ToolstackError(f"restoring the domain: {e}") from None
    domid = created.domain
    try:
        _domctl(ts, XEN_DOMCTL_max_vcpus, domid, XenDomctlMaxVcpus(max=vcpus), what="max_vcpus")
        _domctl(ts, XEN_DOMCTL_max_mem, domid,
                XenDomctlMaxMem(max_memkb=maxmem_kib + MAXMEM_SLACK_KIB), what="max_mem")
        p2m = _populate(ts, domid, image)
        for pfn, data in image.pages.items():
            if data is not None:
                pc.map_foreign(p2m[pfn])[:] = data
        _rewrite_p2m(ts, image, p2m)
        store_port = _alloc_unbound(pc, domid, 0)
        console_port = _alloc_unbound(pc, domid, 0)
        info = _dominfo(ts, domid)
        start_info_pfn, store_mfn, console_mfn = _start_info(ts, image, p2m, info.shared_info_frame,
                                                             store_port, console_port)
        _seed_grants(pc, domid, {GNTTAB_RESERVED_CONSOLE: (0, console_mfn),
                                 GNTTAB_RESERVED_XENSTORE: (0, store_mfn)})
        _shared_info(ts, image, info.shared_info_frame)
        for vcpu, raw in sorted(image.vcpus.items()):
            ctxt = VcpuGuestContext.unpack(raw)
            if vcpu == 0:
                ctxt = ctxt.replace(user_regs=ctxt.user_regs.replace(rdx=p2m[start_info_pfn]))
            _domctl(ts, XEN_DOMCTL_setvcpucontext, domid, XenDomctlVcpucontext(
                vcpu=vcpu, ctxt=ctxt.replace(flags=ctxt.flags | VGCF_online)), what="setvcpucontext")
        d = pc.xen.domains.get(domid)
        d.guest = thaw(image.kernel_state, pc.xen, d)
    except (HypercallError, KernelStateError, ToolstackError, ValueError) as e:
        _domctl(ts, XEN_DOMCTL_destroydomain, domid, what="destroydomain")
        raise ToolstackError(f"restoring the domain: {e}") from None
    return BuiltDomain(domid, image.max_pfn + 1, start_info_pfn, store_mfn, store_port,
                       console_mfn, console_port)


def _populate(ts, domid: int, image: savefile.DomainImage) -> list[int]:
    """Memory at every pfn the image has, 2 MiB at a time where a whole
    aligned run is there; the new P2M (INVALID_P2M_ENTRY elsewhere)."""
    p2m = [INVALID_P2M_ENTRY] * (image.max_pfn + 1)
    run = 1 << SUPERPAGE_ORDER
    big, small = [], []
    present = image.pages
    for first in range(0, image.max_pfn + 1, run):
        pfns = range(first, min(first + run, image.max_pfn + 1))
        if len(pfns) == run and all(p in present for p in pfns):
            big.append(first)
        else:
            small += [p for p in pfns if p in present]
    for order, gpfns in ((SUPERPAGE_ORDER, big), (0, small)):
        if not gpfns:
            continue
        done, out = ts.pc.hypercall(HYPERVISOR_memory_op, XENMEM_populate_physmap,
                                    XenMemoryReservation(extent_start=tuple(gpfns), nr_extents=len(gpfns),
                                                         extent_order=order, domid=domid),
                                    what="populate_physmap")
        if done != len(gpfns):
            raise ToolstackError(f"populate_physmap: {done} of {len(gpfns)} extents of order {order} "
                                 "(the config's maxmem is below what the image holds?)")
        for gpfn, mfn in zip(gpfns, out.extent_start):
            for i in range(1 << order):
                p2m[gpfn + i] = mfn + i
    return p2m


def _rewrite_p2m(ts, image: savefile.DomainImage, p2m: list[int]) -> None:
    """The guest's P2M list, in its own frames, names the new frames."""
    for i, pfn in enumerate(image.p2m_frames):
        if pfn > image.max_pfn or p2m[pfn] == INVALID_P2M_ENTRY:
            raise ToolstackError(f"the P2M's frame {i} is at pfn {pfn:#x}, which the image lacks")
        entries = p2m[i * ENTRIES_PER_PAGE:(i + 1) * ENTRIES_PER_PAGE]
        ts.pc.map_foreign(p2m[pfn])[:len(entries) * 8] = struct.pack(f"<{len(entries)}Q", *entries)


def _start_info(ts, image: savefile.DomainImage, p2m: list[int], shared_info_frame: int,
                store_port: int, console_port: int) -> tuple[int, int, int]:
    """process_start_info(): the start_info vCPU 0's rdx names, rewritten
    for the new domain: its pfn, and the store's and console's frames."""
    def mfn_of(pfn: int, what: str) -> int:
        if not 0 <= pfn <= image.max_pfn or p2m[pfn] == INVALID_P2M_ENTRY:
            raise ToolstackError(f"{what} pfn {pfn:#x} out of range")
        return p2m[pfn]

    start_info_pfn = VcpuGuestContext.unpack(image.vcpus[0]).user_regs.rdx
    page = ts.pc.map_foreign(mfn_of(start_info_pfn, "Start Info"))
    si = StartInfo.unpack(bytes(page[:StartInfo.SIZE]))
    store_mfn = mfn_of(si.store_mfn, "XenStore")
    console_mfn = mfn_of(si.console_mfn, "Console")
    si = si.replace(store_mfn=store_mfn, store_evtchn=store_port, console_mfn=console_mfn,
                    console_evtchn=console_port, nr_pages=image.max_pfn + 1,
                    shared_info=shared_info_frame << PAGE_SHIFT, flags=0)
    page[:StartInfo.SIZE] = si.pack()
    return start_info_pfn, store_mfn, console_mfn


def _shared_info(ts, image: savefile.DomainImage, frame: int) -> None:
    """handle_shared_info(): the vCPUs' and arch parts come from the image;
    nothing is pending, every port is masked, and the P2M's frame list
    must be named again by the guest."""
    page = ts.pc.map_foreign(frame)
    old = image.shared_info
    vcpu_end = SHINFO_VCPU_INFO + XEN_LEGACY_MAX_VCPUS * VCPU_INFO_SIZE
    page[SHINFO_VCPU_INFO:vcpu_end] = old[SHINFO_VCPU_INFO:vcpu_end]
    page[ARCH:ARCH + ArchSharedInfo.SIZE] = old[ARCH:ARCH + ArchSharedInfo.SIZE]
    _U64.pack_into(page, ARCH_P2M_FLL, 0)
    words = SHINFO_EVTCHN_MASK - SHINFO_EVTCHN_PENDING
    page[SHINFO_EVTCHN_PENDING:SHINFO_EVTCHN_PENDING + words] = bytes(words)
    page[SHINFO_EVTCHN_MASK:SHINFO_EVTCHN_MASK + words] = b"\xff" * words
    for vcpu in range(XEN_LEGACY_MAX_VCPUS):
        _U64.pack_into(page, SHINFO_VCPU_INFO + vcpu * VCPU_INFO_SIZE + VCPUINFO_PENDING_SEL, 0)
