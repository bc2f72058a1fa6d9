"""What xentop reads (the role of libxenstat): the host's memory and pCPUs,
each domain's state, CPU time, memory and vCPUs, and the counters of the
vifs and vbds that dom0's backends serve; answered as plain data, the
same each time for the same machine, for `xl top` to render.

libxenstat asks Xen with xc_physinfo, xc_domain_getinfolist and
xc_vcpu_getinfo. Every call through the hypercall door is traced, and a
view refreshing every second must leave no mark on the trace it may be
showing, so this takes those hypercalls' answers from the handlers they
run (Sysctl.physinfo, Sysctl.getdomaininfolist, Domctl.getvcpuinfo)
without passing the door: the same figures, and the machine untouched.

Its network and block figures libxenstat reads in dom0: /proc/net/dev
for each vif<domid>.<n>, and /sys/bus/xen-backend/devices/vbd-<domid>-
<dev>/statistics. Here dom0's netback and blkback keep the same counters.
As with xentop, a device served by a driver domain other than dom0 is not
counted.
"""

from __future__ import annotations

import weakref

from hv.guest.blkback import Blkback
from hv.guest.netback import Netback
from hv.public.domctl import (
    XEN_DOMINF_blocked, XEN_DOMINF_dying, XEN_DOMINF_paused, XEN_DOMINF_running,
    XEN_DOMINF_shutdown, XEN_DOMINF_shutdownmask, XEN_DOMINF_shutdownshift, XenDomctlGetvcpuinfo,
)
from hv.public.sysctl import XenSysctlGetdomaininfolist, XenSysctlPhysinfo
from hv.public.sched import SHUTDOWN_crash
from hv.public.vcpu import RUNSTATE_running
from hv.xen.version import XEN_EXTRA, XEN_MAJOR, XEN_MINOR
from xl.info import clock_text

# How many domains libxenstat asks for at a time.
DOMAIN_CHUNK_SIZE = 256
PAGE_SIZE = 4096
# getdomaininfo's max_pages for a domain without a limit.
UINT_MAX = 0xFFFFFFFF
# blkback's backend type, as libxenstat numbers it (xentop prints "BlkBack").
VBD_TYPE_BLKBACK = 1
# Each xenstored's domain names as last read, with the store's generation
# then: every change to the store moves its generation on, so names read
# at the generation it still has are the names now.
_names: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def node(toolstack, vcpus: bool = True) -> dict:
    """One xenstat_get_node(): the host, and every domain whose name can
    be read (one that has none is being destroyed, and left out, as
    libxenstat leaves it). Each vCPU's time and whether it is online
    only with ``vcpus`` (its XENSTAT_VCPU collector): a domain always
    says how many it has."""
    xen = toolstack.host.xen
    physinfo = xen.sysctl.physinfo(XenSysctlPhysinfo())
    domains = []
    infos = _domain_infos(xen)
    names = _domain_names(toolstack, [info.domain for info in infos])
    for info in infos:
        name = names[info.domain]
        if not name:
            continue
        domains.append(_domain(xen, toolstack.pc.vcpu, info, name, vcpus))
    _collect_devices(xen, {d["domid"]: d for d in domains})
    return {
        "now_ns": xen.clock.now,
        "time_of_day": clock_text(xen.time.wallclock_ns() // 1_000_000_000),
        "xen_version": f"{XEN_MAJOR}.{XEN_MINOR}{XEN_EXTRA}",
        "cpus": physinfo.nr_cpus,
        "cpu_hz": physinfo.cpu_khz * 1000,
        "tot_mem": physinfo.total_pages * PAGE_SIZE,
        "free_mem": physinfo.free_pages * PAGE_SIZE,
        "pcpu_idle_ns": pcpu_idle_ns(xen),
        "domains": domains,
    }


def _domain_infos(xen) -> list:
    infos, first = [], 0
    while True:
        got = xen.sysctl.getdomaininfolist(XenSysctlGetdomaininfolist(
            first_domain=first, max_domains=DOMAIN_CHUNK_SIZE))
        infos += got.buffer
        if got.num_domains < DOMAIN_CHUNK_SIZE:
            return infos
        first = got.buffer[-1].domain + 1


def _domain_names(toolstack, domids: list[int]) -> dict[int, str]:
    """/local/domain/<domid>/name of each, read as libxenstat reads them,
    unless the store has not changed since they last were."""
    xenstored = toolstack.host.xenstored
    generation = xenstored.db.generation
    generation_then, names = _names.get(xenstored, (None, {}))
    if generation_then != generation or any(domid not in names for domid in domids):
        names = {domid: toolstack.name_of(domid) for domid in domids}
        _names[xenstored] = (generation, names)
    return names


def _domain(xen, caller, info, name: str, with_vcpus: bool) -> dict:
    vcpus = []
    if with_vcpus:
        d = xen.domains.get(info.domain)
        for i in range(info.max_vcpu_id + 1):
            _, out = xen.domctl.getvcpuinfo(caller, d, XenDomctlGetvcpuinfo(vcpu=i))
            vcpus.append({"online": bool(out.online), "ns": out.cpu_time})
    return {
        "domid": info.domain, "name": name, **_state(info.flags),
        "cpu_ns": info.cpu_time,
        "cur_mem": info.tot_pages * PAGE_SIZE,
        "max_mem": None if info.max_pages == UINT_MAX else info.max_pages * PAGE_SIZE,
        "ssid": info.ssidref, "num_vcpus": info.max_vcpu_id + 1,
        "vcpus": vcpus, "networks": [], "vbds": [],
    }


def _state(flags: int) -> dict:
    """xenstat_domain_dying() and the others: a shut-down domain is
    crashed when its reason was a crash, else shut down."""
    shutdown = bool(flags & XEN_DOMINF_shutdown)
    crash = (flags >> XEN_DOMINF_shutdownshift) & XEN_DOMINF_shutdownmask == SHUTDOWN_crash
    return {"dying": bool(flags & XEN_DOMINF_dying), "shutdown": shutdown and not crash,
            "blocked": bool(flags & XEN_DOMINF_blocked), "crashed": shutdown and crash,
            "paused": bool(flags & XEN_DOMINF_paused), "running": bool(flags & XEN_DOMINF_running)}


def pcpu_idle_ns(xen) -> list[int]:
    """Each pCPU's idle time, what XEN_SYSCTL_getcpuinfo gives `xentop -p`
    (get_cpu_idle_time(): how long its idle vCPU has run). The machine's
    sysctl has no getcpuinfo, so this reads the idle vCPUs' runstates in
    the model itself."""
    now = xen.clock.now
    return [pcpu.idle.runstate_snapshot(now)[2][RUNSTATE_running] for pcpu in xen.sched.pcpus]


def _collect_devices(xen, by_domid: dict[int, dict]) -> None:
    kernel = xen.hardware_domain.guest
    for bus in getattr(kernel, "buses", ()):
        for dev in bus.devices.values():
            domain = by_domid.get(dev.otherend_id)
            if domain is None or dev.removed:
                continue
            if isinstance(dev, Netback):
                domain["networks"].append(_vif_counters(dev))
            elif isinstance(dev, Blkback):
                domain["vbds"].append(_vbd_statistics(dev))


def _vif_counters(dev: Netback) -> dict:
    """The vif as dom0's /proc/net/dev shows it, from dom0's side: what
    the guest sent (netback's tx ring) the vif received, and what netback
    put on the guest's rx ring the vif transmitted."""
    s = dev.stats
    return {"id": dev.devid,
            "rbytes": s["tx_bytes"], "rpackets": s["tx_packets"],
            "rerrs": s["tx_errors"], "rdrop": s["tx_dropped"],
            "tbytes": s["rx_bytes"], "tpackets": s["rx_packets"],
            "terrs": s["rx_errors"], "tdrop": s["rx_dropped"]}


def _vbd_statistics(dev: Blkback) -> dict:
    """blkback's statistics/ directory: requests out of order (waiting for
    a free slot), reads, writes, and the sectors each moved."""
    s = dev.stats
    return {"dev": dev.devid, "type": VBD_TYPE_BLKBACK, "error": False,
            "oo_reqs": s["oo_req"], "rd_reqs": s["rd_req"], "wr_reqs": s["wr_req"],
            "rd_sects": s["rd_sect"], "wr_sects": s["wr_sect"]}
