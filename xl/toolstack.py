"""The toolstack (libxl's role): what `xl` commands ask of a host, done the
way libxl does it, through dom0's hypercalls and xenstore, and answered as
plain data for the command (or the dashboard) to render."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid as uuidlib
import platform

from hv.public.domctl import (
    XEN_DOMCTL_SENDTRIGGER_INIT, XEN_DOMCTL_SENDTRIGGER_NMI, XEN_DOMCTL_SENDTRIGGER_POWER,
    XEN_DOMCTL_SENDTRIGGER_RESET, XEN_DOMCTL_SENDTRIGGER_SLEEP, XEN_DOMCTL_sendtrigger,
    XenDomctlSendtrigger,
    XEN_DOMCTL_INTERFACE_VERSION, XEN_DOMCTL_getdomaininfo, XEN_DOMCTL_getvcpuaffinity,
    XEN_DOMCTL_getvcpuinfo, XEN_DOMCTL_max_mem, XEN_DOMCTL_pausedomain, XenDomctlMaxMem,
    XEN_DOMCTL_SCHEDOP_getinfo,
    XEN_DOMCTL_SCHEDOP_putinfo, XEN_DOMCTL_scheduler_op, XEN_DOMCTL_setvcpuaffinity,
    XEN_DOMCTL_unpausedomain, XEN_SCHEDULER_CREDIT, XenDomctlSchedCredit, XenDomctlSchedulerOp,
    XEN_VCPUAFFINITY_HARD, XEN_VCPUAFFINITY_SOFT, XenctlBitmap, XenDomctlGetvcpuinfo,
    XenDomctlVcpuaffinity, XEN_DOMINF_blocked,
    XEN_DOMINF_dying, XEN_DOMINF_paused, XEN_DOMINF_running, XEN_DOMINF_shutdown,
    XEN_DOMINF_shutdownmask, XEN_DOMINF_shutdownshift, XenDomctl,
)
from hv.public.errno import errno_name
from hv.public.sysctl import XEN_SYSCTL_getdomaininfolist, XenSysctlGetdomaininfolist
from hv.public.xen import HYPERVISOR_domctl
from hv.xenstore.client import XsClient
from hv.xenstore.errors import XsError
from xl.device import (
    Device, backend_closed, device_add, device_destroy, device_request_close, list_devices,
)
from xl.dombuild import create_pv_domain, destroy_domain, uuid_text
from xl.devspec import DevSpecError, parse_disk, parse_vif, parse_vtpm
from xl import info as hostinfo
from xl.domain_store import in_transaction, remove_domain_entries, rm_if_there
from xl.cpulist import vcpu_affinities
from xl.domconfig import libxl_json, with_defaults
from xl.privcmd import HypercallError, Privcmd


class ToolstackError(Exception):
    """A request the toolstack refuses, or the machine refused: one line."""

# xl_info.c's letters for a shut-down domain's reason (poweroff, reboot,
# suspend, crash, watchdog, soft reset).
SHUTDOWN_REASON_LETTERS = "-rscwS"


def shutdown_reason(flags: int) -> int | None:
    """The SHUTDOWN_* code of a domain that has shut down, else None."""
    if not flags & XEN_DOMINF_shutdown:
        return None
    return (flags >> XEN_DOMINF_shutdownshift) & XEN_DOMINF_shutdownmask


def state_letters(flags: int) -> str:
    """The six letters `xl list` prints for a domain's state."""
    shutdown = bool(flags & XEN_DOMINF_shutdown)
    reason = (flags >> XEN_DOMINF_shutdownshift) & XEN_DOMINF_shutdownmask if shutdown else 0
    return "".join((
        "r" if flags & XEN_DOMINF_running else "-",
        "b" if flags & XEN_DOMINF_blocked else "-",
        "p" if flags & XEN_DOMINF_paused else "-",
        "s" if shutdown else "-",
        SHUTDOWN_REASON_LETTERS[reason] if reason < len(SHUTDOWN_REASON_LETTERS) else "?",
        "d" if flags & XEN_DOMINF_dying else "-",
    ))


def format_cpumap(mask: int, nr_cpus: int) -> str:
    """xl's print_bitmap(): all, none, or ranges such as 0-3,5."""
    full = (1 << nr_cpus) - 1
    if mask & full == full:
        return "all"
    if not mask & full:
        return "none"
    parts, cpu = [], 0
    while cpu < nr_cpus:
        if mask >> cpu & 1:
            end = cpu
            while end + 1 < nr_cpus and mask >> (end + 1) & 1:
                end += 1
            parts.append(str(cpu) if end == cpu else f"{cpu}-{end}")
            cpu = end + 1
        else:
            cpu += 1
    return ",".join(parts)


# Which config key says what to do after each shutdown reason (poweroff,
# reboot, suspend, crash, watchdog, soft reset), and the default.
AFTER_SHUTDOWN = {0: ("on_poweroff", "destroy"), 1: ("on_reboot", "restart"),
                  3: ("on_crash", "destroy"), 4: ("on_watchdog", "destroy"),
                  5: ("on_soft_reset", "restart")}


# How many domains libxl_list_domain() asks for at a time.
LIST_BATCH = 1024

# libxl_trigger's names; s3resume goes through the device model, which a
# PV guest has none of.
TRIGGERS = {"nmi": XEN_DOMCTL_SENDTRIGGER_NMI, "reset": XEN_DOMCTL_SENDTRIGGER_RESET,
            "init": XEN_DOMCTL_SENDTRIGGER_INIT, "power": XEN_DOMCTL_SENDTRIGGER_POWER,
            "sleep": XEN_DOMCTL_SENDTRIGGER_SLEEP, "s3resume": None}


# Devices asked to close, waiting for their backends: <domid>-<class>-<devid>.
DETACHING = "/libxl/xenlab-detach"


class Toolstack:
    def __init__(self, host):
        self.host = host
        self.pc = Privcmd(host.xen)
        self.xs = XsClient(host.xenstored)
        # Domains shutting down are looked for only after xenstored said
        # one changed (the watch also fires once now, for a first look).
        self.xs.watch("@releaseDomain", "shutdowns")

    def domain_infos(self) -> list:
        """Every domain, as libxl_list_domain() asks for them: up to 1024
        at a time with XEN_SYSCTL_getdomaininfolist, from the id after the
        last one it was given."""
        infos = []
        domid = 0
        while True:
            got = hostinfo.sysctl(self.pc, XEN_SYSCTL_getdomaininfolist, XenSysctlGetdomaininfolist(
                first_domain=domid, max_domains=LIST_BATCH), "getdomaininfolist")
            infos += got.buffer
            if got.num_domains < LIST_BATCH:
                return infos
            domid = got.buffer[-1].domain + 1

    def name_of(self, domid: int) -> str:
        try:
            return self.xs.read(f"/local/domain/{domid}/name").decode(errors="replace")
        except XsError:
            return ""

    def list_domains(self) -> list[dict]:
        """`xl list`: name, id, memory, vCPUs, state and CPU time of each."""
        return [{"domid": info.domain, "name": self.name_of(info.domain),
                 "mem_mib": (info.tot_pages + info.outstanding_pages) * 4 // 1024,
                 "vcpus": info.nr_online_vcpus, "state": state_letters(info.flags),
                 "cpu_time_s": info.cpu_time / 1e9, "uuid": uuid_text(bytes(info.handle)),
                 "shutdown_reason": shutdown_reason(info.flags)}
                for info in self.domain_infos()]

    def list_long(self, domain=None) -> list[dict]:
        """`xl list -l`: each domain's config in libxl_domain_config's shape,
        as libxl keeps it; a domain with none kept (dom0) is left out."""
        domids = [self.domid_of(domain)] if domain is not None else \
            [d.domain for d in self.domain_infos()]
        rows = []
        for domid in domids:
            config = self.config_of(domid)
            if config is not None:
                rows.append({"domid": domid, "config": libxl_json(config, self.host.xen.nr_cpus)})
        return rows

    # ------------------------------------------------------------ create
    def create(self, config: dict) -> int:
        """Build and start a domain from a parsed config (the keys of
        xl.cfg: name, memory, maxmem, vcpus, workload, disk, vif, vtpm,
        cpu_weight, cap, driver_domain);
        nothing is left behind when it fails."""
        name = config.get("name")
        if not name:
            raise ToolstackError("the config gives no name")
        if any(d["name"] == name for d in self.list_domains()):
            raise ToolstackError(f"a domain named {name!r} already exists")
        config = with_defaults(config)
        paused = bool(config.pop("paused", False))
        memory = int(config.get("memory", 128))
        if not config.get("uuid"):
            config = {**config, "uuid": self.new_uuid(name)}
        try:
            devices = self._devices(name, config)
            built = create_pv_domain(self.pc, self.xs, name=name, memory_kib=memory * 1024,
                                     uuid=uuidlib.UUID(config["uuid"]).bytes,
                                     maxmem_kib=int(config.get("maxmem", memory)) * 1024,
                                     max_vcpus=int(config["maxvcpus"]), vcpus=int(config["vcpus"]),
                                     cmdline=str(config.get("cmdline", "")),
                                     workload=list(config.get("workload", ["idle"])),
                                     devices=devices, unpause=False)
        except (DevSpecError, ValueError) as e:
            raise ToolstackError(str(e)) from None
        except HypercallError as e:
            raise ToolstackError(f"creating {name}: {e}") from None
        try:
            self._finish_build(built.domid, config)
        except Exception:
            self.destroy(built.domid)        # nothing half-made stays
            raise
        if not paused:              # `xl create -p` leaves it as built, never run
            self._domctl(XEN_DOMCTL_unpausedomain, built.domid, "unpausing the new domain")
        return built.domid

    def _finish_build(self, domid: int, config: dict) -> None:
        """What libxl does before a new domain first runs."""
        # Kept where libxl keeps its own, for what happens when it shuts down.
        self.xs.write(f"/libxl/{domid}/xenlab-config", json.dumps(config, sort_keys=True))
        if config.get("driver_domain"):
            # libxl__domain_make: a driver domain runs its own libxl and
            # device models, and gets directories of its own for them.
            for rel in ("libxl", "device-model"):
                path = f"/local/domain/{domid}/{rel}"
                self.xs.mkdir(path)
                self.xs.set_perms(path, [f"n{domid}"])
        self._set_affinities(domid, config)
        if "cpu_weight" in config or "cap" in config:
            now = self._sched(domid, XEN_DOMCTL_SCHEDOP_getinfo, XenDomctlSchedCredit())
            self._sched(domid, XEN_DOMCTL_SCHEDOP_putinfo, XenDomctlSchedCredit(
                weight=config.get("cpu_weight", now.weight), cap=config.get("cap", now.cap)))

    def new_uuid(self, name: str) -> str:
        """libxl_uuid_generate(), made repeatable: the same changes at the
        same virtual times give the same uuids (a version 4 uuid drawn
        from the machine's own history instead of the system's entropy)."""
        seed = f"{name}/{self.host.now}/{self.host.xen.domains.last_domid}".encode()
        return str(uuidlib.UUID(bytes=hashlib.sha256(seed).digest()[:16], version=4))

    def _devices(self, name: str, config: dict) -> list[Device]:
        devices = []
        for spec in config.get("disk", []):
            disk = parse_disk(spec)
            devices.append(Device("vbd", 0, disk.devid, self._backend_domid(disk.backend_domname), back={
                "params": disk.pdev_path or "", "mode": "w" if disk.readwrite else "r",
                "type": "phy", "dev": disk.vdev, "device-type": "cdrom" if disk.is_cdrom else "disk",
                "removable": disk.removable, "bootable": 1},
                front={"virtual-device": disk.devid,
                       "device-type": "cdrom" if disk.is_cdrom else "disk"}))
        first_vif = config.get("first_vif", 0)
        for devid, spec in enumerate(config.get("vif", []), first_vif):
            nic = parse_vif(spec, devid=devid, domain=name)
            back = {"bridge": nic.bridge, "mac": nic.mac, "handle": nic.devid, "type": "vif",
                    "script": nic.script}
            if nic.ip:
                back["ip"] = nic.ip
            if nic.rate_bytes_per_interval:
                back["rate"] = f"{nic.rate_bytes_per_interval},{nic.rate_interval_usecs}"
            devices.append(Device("vif", 0, nic.devid, self._backend_domid(nic.backend_domname), back=back,
                                  front={"mac": nic.mac, "handle": nic.devid}))
        for devid, spec in enumerate(config.get("vtpm", []), config.get("first_vtpm", 0)):
            tpm = parse_vtpm(spec, devid=devid, domain=name)
            devices.append(Device("vtpm", 0, tpm.devid, self._backend_domid(tpm.backend_domname),
                                  back={"uuid": tpm.uuid}, front={}))
        return devices

    def _backend_domid(self, backend: str | None) -> int:
        """libxl__resolve_domid(): the domain a device's backend= names, by
        name or id; dom0 when it names none."""
        if not backend:
            return 0
        try:
            return self.domid_of(backend)
        except ToolstackError:
            raise ToolstackError(f"backend domain {backend!r} does not exist") from None

    def domid_of(self, name_or_id, rows: list[dict] | None = None) -> int:
        """A domain named by name or by id, as xl accepts either; looked up
        in ``rows`` (list_domains()'s) when the caller has them already."""
        text = str(name_or_id)
        for d in self.list_domains() if rows is None else rows:
            if text == d["name"] or (text.isdigit() and int(text) == d["domid"]):
                return d["domid"]
        raise ToolstackError(f"{text} is an invalid domain identifier")

    def destroy(self, domain) -> int:
        domid = self.domid_of(domain)
        if domid == 0:
            raise ToolstackError("dom0 can't be destroyed")
        try:
            vm = self.xs.read(f"/local/domain/{domid}/vm").decode()
        except XsError:
            vm = ""
        try:
            destroy_domain(self.pc, domid, self.xs)
        except HypercallError as e:
            raise ToolstackError(f"destroying {domain}: {e}") from None
        remove_domain_entries(self.xs, domid, vm.removeprefix("/vm/") or None)
        return domid

    # ------------------------------------------------------------ save and restore
    def save(self, domain, path: str | None, checkpoint: bool = False, paused: bool = False,
             config: dict | None = None) -> dict:
        """`xl save`: the domain to a file (xl/saverestore.py)."""
        from xl import saverestore
        return saverestore.save(self, domain, path, checkpoint, paused, config)

    def restore(self, data: bytes, paused: bool = False, config: dict | None = None,
                source: str = "the save file") -> dict:
        """`xl restore`: a new domain from a save file's bytes."""
        from xl import saverestore
        return saverestore.restore(self, data, paused, config, source)

    # ------------------------------------------------------------ the rest
    def _domctl(self, cmd: int, domid: int, what: str) -> None:
        op = XenDomctl(cmd=cmd, interface_version=XEN_DOMCTL_INTERFACE_VERSION, domain=domid)
        try:
            self.pc.hypercall(HYPERVISOR_domctl, op, what=what)
        except HypercallError as e:
            raise ToolstackError(str(e)) from None

    def pause(self, domain) -> int:
        domid = self.domid_of(domain)
        self._domctl(XEN_DOMCTL_pausedomain, domid, "pausing the domain")
        return domid

    def unpause(self, domain) -> int:
        domid = self.domid_of(domain)
        self._domctl(XEN_DOMCTL_unpausedomain, domid, "unpausing the domain")
        return domid

    def domid_by_name(self, name: str) -> int:
        for d in self.list_domains():
            if d["name"] == name:
                return d["domid"]
        raise ToolstackError(f"Can't get domid of domain name '{name}', maybe this domain "
                             "does not exist.")

    def domname(self, domid: int) -> str:
        if not any(d["domid"] == domid for d in self.list_domains()):
            raise ToolstackError(f"{domid} is an invalid domain identifier")
        return self.name_of(domid)

    def console_output(self, domain) -> str:
        """What the domain has written to its console so far (dom0's is
        the hypervisor's console)."""
        domid = self.domid_of(domain)
        if domid == 0:
            return self.dmesg(False)
        try:
            return self.host.console_output(domid).decode(errors="replace")
        except (ValueError, LookupError) as e:
            raise ToolstackError(f"no console for {domain}: {e}") from None

    def console_read(self, domain, offset: int = 0) -> dict:
        """A domain's console output from ``offset`` (what an earlier read
        returned; 0 for all that is kept), the offset to read from next,
        and whether the domain is still there. Bytes that are not UTF-8
        travel as surrogate escapes. A domain given by id is looked for as
        the console daemon looks (no hypercall), so that a console read
        again and again leaves no trace; a name is resolved as xl does."""
        domid = domain if isinstance(domain, int) else self.domid_of(domain)
        if self.host.xen.domains.get(domid) is None:
            raise ToolstackError(f"{domain} is an invalid domain identifier")
        if domid == 0:
            raise ToolstackError("dom0's console is the hypervisor's: use xl dmesg")
        try:
            data, offset = self.host.xenconsoled.read_new(domid, offset)
        except (ValueError, LookupError, AttributeError) as e:
            raise ToolstackError(f"no console for {domain}: {e}") from None
        return {"data": data.decode(errors="surrogateescape"), "offset": offset, "domid": domid}

    def console_write(self, domid: int, data: str) -> int:
        """Type into a domain's console, as xenconsole does; how many bytes
        the ring took."""
        if self.host.xen.domains.get(domid) is None:
            raise ToolstackError(f"domain {domid} is gone")
        return self.host.xenconsoled.write_input(domid, data.encode(errors="surrogateescape"))

    def dmesg(self, clear: bool) -> str:
        return hostinfo.read_console(self.pc, clear).decode(errors="replace")

    def info(self, numa: bool = False) -> dict:
        """`xl info`'s fields, in order, and with ``numa`` its topology."""
        return {"fields": hostinfo.host_info(self.pc, platform.node()),
                "numa": hostinfo.numa_lines(self.pc) if numa else []}

    def uptime(self, domains=()) -> dict:
        """`xl uptime`: each domain's time since it was made, by the wall
        clock (dom0's since the host booted); and the time of day."""
        now = hostinfo.wallclock_seconds(self.pc)
        if domains:
            domids = [self.domid_of(d) for d in domains]
        else:
            domids = [d.domain for d in self.domain_infos()]
        rows = []
        for domid in domids:
            if domid == 0:
                up = self.host.xen.clock.now // hostinfo.NS_PER_S
            else:
                try:
                    vm = self.xs.read(f"/local/domain/{domid}/vm").decode()
                    started = int(float(self.xs.read(f"{vm}/start_time").decode()))
                except (XsError, ValueError):
                    continue            # libxl skips a domain with no start time
                up = now - started
            rows.append({"domid": domid, "name": self.name_of(domid), "uptime_s": up})
        return {"now": hostinfo.clock_text(now), "domains": rows}

    def vcpu_list(self, domain=None) -> list[dict]:
        """`xl vcpu-list`: each vCPU's pCPU, state, time and affinities."""
        nr_cpus = self.host.xen.nr_cpus
        infos = self.domain_infos()
        if domain is not None:
            domid = self.domid_of(domain)
            infos = [info for info in infos if info.domain == domid]
        rows = []
        for info in infos:
            domid = info.domain
            for vcpu in range(info.max_vcpu_id + 1):
                rc, out = self._query(XEN_DOMCTL_getvcpuinfo, domid, XenDomctlGetvcpuinfo(vcpu=vcpu))
                if rc < 0:
                    continue
                got = out.u
                bitmap = XenctlBitmap(bitmap=bytes((nr_cpus + 7) // 8), nr_bits=nr_cpus)
                _, aff = self._query(XEN_DOMCTL_getvcpuaffinity, domid, XenDomctlVcpuaffinity(
                    vcpu=vcpu, flags=XEN_VCPUAFFINITY_HARD | XEN_VCPUAFFINITY_SOFT,
                    cpumap_hard=bitmap, cpumap_soft=bitmap))
                hard = int.from_bytes(aff.u.cpumap_hard.bitmap, "little")
                soft = int.from_bytes(aff.u.cpumap_soft.bitmap, "little")
                rows.append({"name": self.name_of(domid), "domid": domid, "vcpu": vcpu,
                             "cpu": got.cpu if got.online else None,
                             "state": (("r" if got.running else "-") + ("b" if got.blocked else "-")
                                       + "-") if got.online else "--p",
                             "time_s": got.cpu_time / 1e9,
                             "affinity_hard": format_cpumap(hard, nr_cpus),
                             "affinity_soft": format_cpumap(soft, nr_cpus)})
        return rows

    def _query(self, cmd: int, domid: int, u):
        op = XenDomctl(cmd=cmd, interface_version=XEN_DOMCTL_INTERFACE_VERSION, domain=domid, u=u)
        return self.pc.xen.hypercall(self.pc.vcpu, HYPERVISOR_domctl, op)

    # ------------------------------------------------------------ shutdown
    def shutdown(self, domain, reboot: bool = False) -> int:
        """Ask the guest to shut down (or reboot) through control/shutdown;
        it is the guest's kernel that does it."""
        domid = self.domid_of(domain)
        if domid == 0:
            raise ToolstackError("dom0 is shut down with the host (xl host stop)")
        self.xs.write(f"/local/domain/{domid}/control/shutdown", "reboot" if reboot else "poweroff")
        return domid

    def config_of(self, domid: int) -> dict | None:
        try:
            return json.loads(self.xs.read(f"/libxl/{domid}/xenlab-config"))
        except (XsError, ValueError):
            return None

    def reactions_due(self) -> bool:
        """Whether there may be something to act on: @releaseDomain fired,
        or a detached device's backend has closed."""
        return self.xs.has_events() or bool(self.pending_detaches())

    def pending_actions(self) -> list[tuple[int, str]]:
        """Domains that shut down and wait for the toolstack: each with what
        its config says to do now. Nothing to look at unless
        @releaseDomain fired since the last look."""
        if not self.xs.poll_events():
            return []
        out = []
        for info in self.domain_infos():
            if not info.flags & XEN_DOMINF_shutdown or info.flags & XEN_DOMINF_dying:
                continue
            config = self.config_of(info.domain)
            if config is None or self.xs.exists(f"/libxl/{info.domain}/xenlab-handled"):
                continue
            reason = (info.flags >> XEN_DOMINF_shutdownshift) & XEN_DOMINF_shutdownmask
            if reason not in AFTER_SHUTDOWN:
                continue                    # suspended: it waits to be resumed or saved
            key, default = AFTER_SHUTDOWN[reason]
            out.append((info.domain, config.get(key, default)))
        return out

    def on_shutdown(self, domid: int, action: str) -> dict:
        """Carry out on_poweroff/on_reboot/on_crash for a domain that shut down."""
        config = self.config_of(domid)
        if config is None:
            raise ToolstackError(f"domain {domid} has no config to act on")
        if action in ("preserve", "rename-restart"):
            self.xs.write(f"/libxl/{domid}/xenlab-handled", action)
        if action == "rename-restart":
            self._preserve(domid, config["name"])
        elif action in ("destroy", "restart", "coredump-destroy", "coredump-restart", "soft-reset"):
            self.destroy(domid)
        if action in ("restart", "rename-restart", "coredump-restart", "soft-reset"):
            return {"domid": self.create(config)}
        return {}

    def _preserve(self, domid: int, name: str) -> None:
        """libxl_domain_preserve(), as xl's rename-restart uses it: the dead
        domain keeps its place under a name with the time it died in it
        and a uuid of its own, so the new one can have the old ones."""
        suffix = time.strftime("-%Y%m%dT%H%MZ", time.gmtime(hostinfo.wallclock_seconds(self.pc)))
        uuid = self.new_uuid(name + suffix)
        vm = f"/vm/{uuid}"
        home = f"/local/domain/{domid}"

        def body(tx: int) -> None:
            rm_if_there(self.xs, vm, tx)
            self.xs.mkdir(vm, tx)
            self.xs.set_perms(vm, ("n0", f"r{domid}"), tx)
            self.xs.write(f"{home}/vm", vm, tx)
            self.xs.write(f"{home}/name", name + suffix, tx)
            self.xs.write(f"{vm}/uuid", uuid, tx)

        in_transaction(self.xs, body)

    # ------------------------------------------------------------ more of xl
    def debug_keys(self, keys: str) -> None:
        """Press hypervisor debug keys; what they print goes to dmesg."""
        try:
            hostinfo.debug_keys(self.pc, keys)
        except HypercallError as e:
            raise ToolstackError(str(e)) from None

    def sched_credit(self, domain=None, weight: int | None = None, cap: int | None = None) -> list[dict]:
        """Read (and with weight or cap, set) credit parameters."""
        domids = [self.domid_of(domain)] if domain is not None else \
            [info.domain for info in self.domain_infos()]
        if (weight is not None or cap is not None) and domain is None:
            raise ToolstackError("setting weight or cap needs a domain (-d)")
        if weight is not None and not 1 <= weight <= 65535:
            raise ToolstackError(f"weight must be 1..65535, not {weight}")
        if cap is not None and not 0 <= cap <= 65535:
            raise ToolstackError(f"cap must be 0..65535, not {cap}")
        rows = []
        for domid in domids:
            now = self._sched(domid, XEN_DOMCTL_SCHEDOP_getinfo, XenDomctlSchedCredit())
            if weight is not None or cap is not None:
                now = self._sched(domid, XEN_DOMCTL_SCHEDOP_putinfo, XenDomctlSchedCredit(
                    weight=now.weight if weight is None else weight, cap=now.cap if cap is None else cap))
                now = self._sched(domid, XEN_DOMCTL_SCHEDOP_getinfo, XenDomctlSchedCredit())
            rows.append({"name": self.name_of(domid), "domid": domid, "weight": now.weight,
                         "cap": now.cap})
        return rows

    def _sched(self, domid: int, cmd: int, params) -> XenDomctlSchedCredit:
        rc, out = self._query(XEN_DOMCTL_scheduler_op, domid, XenDomctlSchedulerOp(
            sched_id=XEN_SCHEDULER_CREDIT, cmd=cmd, u=params))
        if rc < 0:
            raise ToolstackError(f"scheduler_op on domain {domid}: error {rc}")
        return out.u.u

    def vcpu_pin(self, domain, vcpu: int, hard: int) -> None:
        self._affinity(self.domid_of(domain), vcpu, hard, None)

    def _affinity(self, domid: int, vcpu: int, hard: int | None, soft: int | None) -> None:
        """XEN_DOMCTL_setvcpuaffinity with the masks given (None: that one
        is left as it is)."""
        nr = self.host.xen.nr_cpus

        def bitmap(mask: int | None) -> XenctlBitmap:
            return XenctlBitmap(bitmap=((mask or 0) & ((1 << nr) - 1)).to_bytes((nr + 7) // 8, "little"),
                                nr_bits=nr)

        flags = (XEN_VCPUAFFINITY_HARD if hard is not None else 0) | \
            (XEN_VCPUAFFINITY_SOFT if soft is not None else 0)
        rc, _ = self._query(XEN_DOMCTL_setvcpuaffinity, domid, XenDomctlVcpuaffinity(
            vcpu=vcpu, flags=flags, cpumap_hard=bitmap(hard), cpumap_soft=bitmap(soft)))
        if rc < 0:
            raise ToolstackError(f"setting vCPU {vcpu}'s affinity: {errno_name(-rc)}")

    def _set_affinities(self, domid: int, config: dict) -> None:
        """cpus= and cpus_soft=, set before the domain first runs (libxl's
        libxl__build_pre)."""
        if "cpus" not in config and "cpus_soft" not in config:
            return
        nr_vcpus, nr_cpus = int(config["maxvcpus"]), self.host.xen.nr_cpus
        hard = vcpu_affinities(config.get("cpus", "all"), nr_vcpus, nr_cpus)
        soft = vcpu_affinities(config.get("cpus_soft", "all"), nr_vcpus, nr_cpus)
        for vcpu in range(nr_vcpus):
            self._affinity(domid, vcpu, hard[vcpu] if "cpus" in config else None,
                           soft[vcpu] if "cpus_soft" in config else None)

    def vcpu_set(self, domain, count: int, check_host: bool = True) -> int:
        """`xl vcpu-set`: the first ``count`` vCPUs online, the rest offline,
        written to cpu/N/availability in one transaction as libxl does; the
        guest's kernel brings them up or takes them down."""
        domid = self.domid_of(domain)
        rc, out = self._query(XEN_DOMCTL_getdomaininfo, domid, None)
        if rc < 0:
            raise ToolstackError(f"{domain} is an invalid domain identifier")
        dominfo = out.u
        nr_cpus = self.host.xen.nr_cpus
        if check_host and count > dominfo.nr_online_vcpus and count > nr_cpus:
            raise ToolstackError(f"You are overcommmitting! You have {nr_cpus} physical CPUs and want "
                                 f"{count} vCPUs! Aborting, use --ignore-host to continue")
        if count <= 0:
            raise ToolstackError(f"Requested {count} VCPUs!")
        if count > dominfo.max_vcpu_id + 1:
            raise ToolstackError(f"Requested {count} VCPUs, however maxcpus is {dominfo.max_vcpu_id + 1}!")
        home = f"/local/domain/{domid}"

        def body(tx: int) -> None:
            for n in range(dominfo.max_vcpu_id + 1):
                self.xs.write(f"{home}/cpu/{n}/availability", "online" if n < count else "offline", tx)

        in_transaction(self.xs, body)
        return domid

    def sysrq(self, domain, key: str) -> int:
        """`xl sysrq`: libxl writes the key to control/sysrq; the guest's
        kernel takes it from there."""
        if len(key) != 1:
            raise ToolstackError("Invalid sysrq.")
        domid = self.domid_of(domain)
        self.xs.write(f"/local/domain/{domid}/control/sysrq", key)
        return domid

    def trigger(self, domain, name: str, vcpu: int = 0) -> dict:
        """`xl trigger`: XEN_DOMCTL_sendtrigger. A PV guest takes an NMI;
        the ACPI buttons and s3resume are for HVM guests. As in xl, a
        trigger the hypervisor refuses is reported (``failed``), not an
        error: libxl logs it and xl goes on."""
        if name not in TRIGGERS:
            raise ToolstackError(f'Invalid trigger "{name}"')
        if not 0 <= vcpu < 1 << 32:
            raise ToolstackError(f"vCPU {vcpu} is out of range")
        domid = self.domid_of(domain)
        code = TRIGGERS[name]
        if code is None:
            return {"domid": domid, "failed": f"Send trigger '{name}' failed, rc=-6"}
        rc, _ = self._query(XEN_DOMCTL_sendtrigger, domid, XenDomctlSendtrigger(trigger=code, vcpu=vcpu))
        if rc < 0:
            return {"domid": domid, "failed": f"Send trigger '{name}' failed: {os.strerror(-rc)}"}
        return {"domid": domid, "failed": None}

    def rename(self, domain, new_name: str) -> int:
        domid = self.domid_of(domain)
        if not new_name or any(d["name"] == new_name for d in self.list_domains()):
            raise ToolstackError(f"domain name {new_name!r} is taken or empty")
        self.xs.write(f"/local/domain/{domid}/name", new_name)
        try:
            vm = self.xs.read(f"/local/domain/{domid}/vm").decode()
            self.xs.write(f"{vm}/name", new_name)
        except XsError:
            pass
        return domid

    # ------------------------------------------------------------ memory
    def mem_set(self, domain, kib: int) -> int:
        """libxl_set_memory_target(): the guest's balloon driver does the rest."""
        domid = self.domid_of(domain)
        try:
            static_max = int(self.xs.read(f"/local/domain/{domid}/memory/static-max"))
        except (XsError, ValueError):
            raise ToolstackError(f"domain {domid} has no memory/static-max") from None
        if not 0 < kib <= static_max:
            raise ToolstackError(f"memory target {kib >> 10} MiB is not within the domain's maximum "
                                 f"({static_max >> 10} MiB)")
        self.xs.write(f"/local/domain/{domid}/memory/target", str(kib))
        return domid

    def mem_max(self, domain, kib: int) -> int:
        domid = self.domid_of(domain)
        rc, _ = self._query(XEN_DOMCTL_max_mem, domid, XenDomctlMaxMem(max_memkb=kib + 1024))
        if rc < 0:
            raise ToolstackError(f"setting the maximum memory: error {rc}")
        self.xs.write(f"/local/domain/{domid}/memory/static-max", str(kib))
        return domid

    # ------------------------------------------------------------ devices
    CLASS_KEYS = {"vbd": "disk", "vif": "vif", "vtpm": "vtpm"}

    def device_list(self, domain, devclass: str) -> list[dict]:
        """libxl_device_*_getinfo() for each device of a class: what both
        ends published."""
        domid = self.domid_of(domain)
        rows = []
        for devid in list_devices(self.xs, domid, devclass):
            front = f"/local/domain/{domid}/device/{devclass}/{devid}"

            def node(path: str, default=-1):
                try:
                    value = self.xs.read(path).decode()
                except XsError:
                    return default
                return int(value) if value.lstrip("-").isdigit() else value

            row = {"devid": devid, "backend_id": node(f"{front}/backend-id"), "frontend_id": domid,
                   "state": node(f"{front}/state"), "evtch": node(f"{front}/event-channel"),
                   "backend": node(f"{front}/backend", "")}
            if devclass == "vif":
                row.update(mac=node(f"{front}/mac", ""), rref_tx=node(f"{front}/tx-ring-ref"),
                           rref_rx=node(f"{front}/rx-ring-ref"))
            else:
                row["rref"] = node(f"{front}/ring-ref")
            if devclass == "vtpm":
                row["uuid"] = node(f"{row['backend']}/uuid", "")
            rows.append(row)
        return rows

    def attach(self, domain, devclass: str, spec: str) -> dict:
        domid = self.domid_of(domain)
        existing = list_devices(self.xs, domid, devclass)
        following = max(existing) + 1 if existing else 0
        try:
            (dev,) = self._devices(self.name_of(domid), {self.CLASS_KEYS[devclass]: [spec],
                                                         "first_vif": following, "first_vtpm": following})
        except (DevSpecError, ValueError) as e:
            raise ToolstackError(str(e)) from None
        if dev.devid in existing:
            raise ToolstackError(f"domain {domid} already has {devclass} {dev.devid}")
        device_add(self.xs, Device(dev.devclass, domid, dev.devid, dev.backend_domid, dev.back, dev.front))
        return {"domid": domid, "devid": dev.devid}

    def detach(self, domain, devclass: str, devid: int) -> dict:
        """Ask the backend to close; the directories go once it says Closed
        (finish_detaches)."""
        domid = self.domid_of(domain)
        if devid not in list_devices(self.xs, domid, devclass):
            raise ToolstackError(f"Error: Device {devid} not connected.")
        device_request_close(self.xs, self._device(domid, devclass, devid))
        self.xs.write(f"{DETACHING}/{domid}-{devclass}-{devid}", "closing")
        return {"domid": domid, "devid": devid}

    def _device(self, domid: int, devclass: str, devid: int) -> Device:
        try:
            backend_domid = int(self.xs.read(f"/local/domain/{domid}/device/{devclass}/{devid}/backend-id"))
        except (XsError, ValueError):
            backend_domid = 0
        return Device(devclass, domid, devid, backend_domid)

    def pending_detaches(self) -> list[tuple[int, str, int]]:
        """Detaches whose backend has closed: one directory to read, however
        many domains there are."""
        try:
            names = self.xs.directory(DETACHING)
        except XsError:
            return []
        out = []
        for name in names:
            domid, devclass, devid = name.decode().split("-")
            if backend_closed(self.xs, self._device(int(domid), devclass, int(devid))):
                out.append((int(domid), devclass, int(devid)))
        return out

    def finish_detach(self, domid: int, devclass: str, devid: int) -> None:
        device_destroy(self.xs, self._device(domid, devclass, devid))
        self.xs.rm(f"{DETACHING}/{domid}-{devclass}-{devid}")

    # ------------------------------------------------------------ watching the machine
    def step(self, domain, count: int = 1, vcpu: int = 0) -> list[str]:
        """Run a paused domain's vCPU one operation at a time: what each did."""
        domid = self.domid_of(domain)
        lines = []
        for _ in range(count):
            try:
                lines += [r.format() for r in self.host.step_domain(domid, vcpu)]
            except ValueError as e:
                raise ToolstackError(str(e)) from None
        return lines

    def trace(self, domain=None, since: int = 0, limit: int = 200) -> dict:
        """Trace records after ``since`` (the last ``limit`` of them), for one
        domain or all, and where to go on from."""
        # By id, a domain's records are picked without looking it up (which
        # would put a hypercall in the very trace being read).
        domid = domain if isinstance(domain, int) or domain is None else self.domid_of(domain)
        trace = self.host.xen.trace
        records = trace.since(since) if since else list(trace)
        if domid is not None:
            records = [r for r in records if r.domid == domid]
        return {"lines": [r.format() for r in records[-limit:]], "seq": trace.seq}

    # ------------------------------------------------------------ xenstore
    def xs_read(self, path: str) -> str:
        return self._xs(self.xs.read, path).decode(errors="replace")

    def xs_write(self, path: str, value: str) -> None:
        self._xs(self.xs.write, path, value)

    def xs_rm(self, path: str) -> None:
        self._xs(self.xs.rm, path)

    def xs_list(self, path: str) -> list[str]:
        return [n.decode(errors="replace") for n in self._xs(self.xs.directory, path)]

    def xs_chmod(self, path: str, perms: list[str]) -> None:
        self._xs(self.xs.set_perms, path, perms)

    def xs_ls(self, path: str) -> list[tuple[int, str, str]]:
        """xenstore-ls: (depth, name, value) for the tree under ``path``."""
        out = []

        def walk(node: str, depth: int) -> None:
            for child in self.xs_list(node):
                full = f"{node.rstrip('/')}/{child}"
                try:
                    value = self.xs.read(full).decode(errors="replace")
                except XsError:
                    value = ""
                out.append((depth, child, value))
                walk(full, depth + 1)

        walk(path, 0)
        return out

    def _xs(self, call, *args):
        try:
            return call(*args)
        except XsError as e:
            raise ToolstackError(f"{args[0]}: {e}") from None

