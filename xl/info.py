"""What `xl info`, `xl uptime` and `xl dmesg` read, the way libxl reads it:
Xen's version and host facts through xen_version and sysctl hypercalls
from dom0, a domain's start time from its /vm entry."""

from __future__ import annotations

import time

from hv.public.domctl import XEN_SCHEDULER_CREDIT, XEN_SCHEDULER_CREDIT2
from hv.public.sysctl import (
    XEN_SYSCTL_INTERFACE_VERSION, XEN_SYSCTL_PHYSCAP_directio, XEN_SYSCTL_PHYSCAP_gnttab_v1,
    XEN_SYSCTL_PHYSCAP_gnttab_v2, XEN_SYSCTL_PHYSCAP_hap, XEN_SYSCTL_PHYSCAP_hvm,
    XEN_SYSCTL_PHYSCAP_iommu_hap_pt_share, XEN_SYSCTL_PHYSCAP_pv, XEN_SYSCTL_PHYSCAP_shadow,
    XEN_SYSCTL_PHYSCAP_vmtrace, XEN_SYSCTL_PHYSCAP_vpmu, XEN_SYSCTL_debug_keys,
    XEN_SYSCTL_physinfo, XEN_SYSCTL_readconsole, XEN_SYSCTL_sched_id, XenSysctl,
    XenSysctlDebugKeys, XenSysctlPhysinfo, XenSysctlReadconsole, XenSysctlSchedId,
)
from hv.public.version import (
    XENVER_capabilities, XENVER_changeset, XENVER_commandline, XENVER_compile_info,
    XENVER_extraversion, XENVER_pagesize, XENVER_platform_parameters, XENVER_version,
    XenCapabilitiesInfo, XenChangesetInfo, XenCommandline, XenCompileInfo, XenExtraversion,
    XenPlatformParameters,
)
from hv.public.xen import HYPERVISOR_sysctl, HYPERVISOR_xen_version
from xl.privcmd import Privcmd

SCHEDULER_NAMES = {XEN_SCHEDULER_CREDIT: "credit", XEN_SCHEDULER_CREDIT2: "credit2"}
# libxl's console reader asks for this much at a time.
CONSOLE_READ_CHUNK = 16384
NS_PER_S = 1_000_000_000


def sysctl(pc: Privcmd, cmd: int, u, what: str):
    op = XenSysctl(cmd=cmd, interface_version=XEN_SYSCTL_INTERFACE_VERSION, u=u)
    return pc.hypercall(HYPERVISOR_sysctl, op, what=what)[1].u


def _text(raw) -> str:
    return bytes(raw).split(b"\0", 1)[0].decode(errors="replace")


def _virt_caps(caps: int) -> str:
    """output_physinfo()'s virt_caps: each word with its leading space."""
    hvm, pv, directio = (caps & XEN_SYSCTL_PHYSCAP_hvm, caps & XEN_SYSCTL_PHYSCAP_pv,
                         caps & XEN_SYSCTL_PHYSCAP_directio)
    words = [(pv, "pv"), (hvm, "hvm"), (hvm and directio, "hvm_directio"),
             (pv and directio, "pv_directio"), (caps & XEN_SYSCTL_PHYSCAP_hap, "hap"),
             (caps & XEN_SYSCTL_PHYSCAP_shadow, "shadow"),
             (caps & XEN_SYSCTL_PHYSCAP_iommu_hap_pt_share, "iommu_hap_pt_share"),
             (caps & XEN_SYSCTL_PHYSCAP_vmtrace, "vmtrace"), (caps & XEN_SYSCTL_PHYSCAP_vpmu, "vpmu"),
             (caps & XEN_SYSCTL_PHYSCAP_gnttab_v1, "gnttab-v1"),
             (caps & XEN_SYSCTL_PHYSCAP_gnttab_v2, "gnttab-v2")]
    return "".join(f" {word}" for present, word in words if present)


def host_info(pc: Privcmd, nodename: str) -> list[tuple[str, str]]:
    """`xl info`'s fields, in its order (xl_info.c: node, physinfo, Xen,
    xend_config_format). dom0 here is this machine's modelled kernel."""
    pi = sysctl(pc, XEN_SYSCTL_physinfo, XenSysctlPhysinfo(), "physinfo")
    sched = sysctl(pc, XEN_SYSCTL_sched_id, XenSysctlSchedId(), "sched_id").sched_id

    def ver(cmd, arg_type=None):
        arg = arg_type() if arg_type else None
        return pc.hypercall(HYPERVISOR_xen_version, cmd, arg, what="xen_version")

    version = ver(XENVER_version)[0]
    major, minor = version >> 16, version & 0xFFFF
    extra = _text(ver(XENVER_extraversion, XenExtraversion)[1].extraversion)
    compile_info = ver(XENVER_compile_info, XenCompileInfo)[1]
    pagesize = ver(XENVER_pagesize)[0]
    per_mib = (1 << 20) // pagesize
    return [
        ("host", nodename), ("release", "xenlab"), ("version", "PV kernel model"),
        ("machine", "x86_64"),
        ("nr_cpus", str(pi.nr_cpus)), ("max_cpu_id", str(pi.max_cpu_id)),
        ("nr_nodes", str(pi.nr_nodes)), ("cores_per_socket", str(pi.cores_per_socket)),
        ("threads_per_core", str(pi.threads_per_core)),
        ("cpu_mhz", f"{pi.cpu_khz // 1000}.{pi.cpu_khz % 1000:03d}"),
        ("hw_caps", ":".join(f"{word:08x}" for word in pi.hw_cap)),
        ("virt_caps", _virt_caps(pi.capabilities)),
        ("total_memory", str(pi.total_pages // per_mib)),
        ("free_memory", str((pi.free_pages - pi.outstanding_pages) // per_mib)),
        ("sharing_freed_memory", "0"), ("sharing_used_memory", "0"),
        ("outstanding_claims", str(pi.outstanding_pages // per_mib)),
        ("free_cpus", "0"),
        ("xen_major", str(major)), ("xen_minor", str(minor)), ("xen_extra", extra),
        ("xen_version", f"{major}.{minor}{extra}"),
        ("xen_caps", _text(ver(XENVER_capabilities, XenCapabilitiesInfo)[1].info)),
        ("xen_scheduler", SCHEDULER_NAMES.get(sched, str(sched))),
        ("xen_pagesize", str(pagesize)),
        ("platform_params", f"virt_start=0x{ver(XENVER_platform_parameters, XenPlatformParameters)[1].virt_start:x}"),
        ("xen_changeset", _text(ver(XENVER_changeset, XenChangesetInfo)[1].info)),
        ("xen_commandline", _text(ver(XENVER_commandline, XenCommandline)[1].cmdline)),
        ("cc_compiler", _text(compile_info.compiler)),
        ("cc_compile_by", _text(compile_info.compile_by)),
        ("cc_compile_domain", _text(compile_info.compile_domain)),
        ("cc_compile_date", _text(compile_info.compile_date)),
        ("build_id", ""),
        ("xend_config_format", "4"),
    ]


def numa_lines(pc: Privcmd) -> list[str]:
    """`xl info -n`'s tables (output_topologyinfo, output_numainfo): one
    socket, one node, no PCI devices."""
    pi = sysctl(pc, XEN_SYSCTL_physinfo, XenSysctlPhysinfo(), "physinfo")
    lines = ["cpu_topology           :", "cpu:    core    socket     node"]
    lines += [f"{cpu:3d}:    {cpu:4d}     {0:4d}     {0:4d}" for cpu in range(pi.nr_cpus)]
    lines += ["device topology        :", "device           node", "No device topology data available"]
    lines += ["numa_info              :", "node:    memsize    memfree    distances",
              f"{0:4d}:    {pi.total_pages >> 8:6d}     {pi.free_pages >> 8:6d}      10"]
    return lines


def render_info(fields: list[tuple[str, str]], only: str | None = None,
                numa: list[str] | None = None) -> str:
    """maybe_printf(): every line; or, given a name, the value of each line
    that starts with it (so `xl info xen_` gives every xen_* value)."""
    lines = [f"{name:<23}:{value}" if name == "virt_caps" else f"{name:<23}: {value}"
             for name, value in fields]
    if numa:
        after = [name for name, _ in fields].index("free_cpus") + 1
        lines[after:after] = numa
    if only is None or numa:
        return "\n".join(lines)
    picked = []
    for line in lines:
        colon = line.find(":")
        if line.startswith(only) and line[colon + 1:colon + 2] == " ":
            picked.append(line[colon + 2:])
    return "\n".join(picked)


def read_console(pc: Privcmd, clear: bool) -> bytes:
    """`xl dmesg`: the hypervisor's console ring, read the way libxl's
    console reader does, a chunk at a time from where the last one ended."""
    out, index, incremental = bytearray(), 0, 0
    while True:
        rc = sysctl(pc, XEN_SYSCTL_readconsole,
                    XenSysctlReadconsole(clear=int(clear), incremental=incremental, index=index,
                                         count=CONSOLE_READ_CHUNK), "readconsole")
        if not rc.count:
            return bytes(out)
        out += rc.buffer[:rc.count]
        index, incremental = rc.index, 1


def debug_keys(pc: Privcmd, keys: str) -> None:
    data = keys.encode()
    sysctl(pc, XEN_SYSCTL_debug_keys, XenSysctlDebugKeys(keys=data, nr_keys=len(data)),
           "debug_keys")


def uptime_text(seconds: int, short: bool) -> str:
    """xl_info.c's uptime_to_string()."""
    day, rest = divmod(int(seconds), 86400)
    hour, rest = divmod(rest, 3600)
    minute, sec = divmod(rest, 60)
    days = f"{day} days, " if day > 1 else "1 day, " if day == 1 else ""
    return f"{days}{hour:2d}:{minute:02d}" + ("" if short else f":{sec:02d}")


def wallclock_seconds(pc: Privcmd) -> int:
    """gettimeofday() in dom0: the host's wall clock."""
    return pc.xen.time.wallclock_ns() // NS_PER_S


def start_time_text(pc: Privcmd) -> str:
    """libxl's /vm/<uuid>/start_time: seconds and hundredths."""
    sec, ns = divmod(pc.xen.time.wallclock_ns(), NS_PER_S)
    return f"{sec}.{ns // 10_000_000:02d}"


def clock_text(seconds: int) -> str:
    """current_time_to_string(): the time of day, %H:%M:%S."""
    return time.strftime("%H:%M:%S", time.gmtime(seconds))
