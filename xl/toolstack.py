"""The toolstack (libxl's role): what `xl` commands ask of a host, done the
way libxl does it, through dom0's hypercalls and xenstore, and answered as
plain data for the command (or the dashboard) to render."""

from __future__ import annotations

from hv.public.domctl import (
    XEN_DOMCTL_INTERFACE_VERSION, XEN_DOMCTL_getdomaininfo, XEN_DOMINF_blocked,
    XEN_DOMINF_dying, XEN_DOMINF_paused, XEN_DOMINF_running, XEN_DOMINF_shutdown,
    XEN_DOMINF_shutdownmask, XEN_DOMINF_shutdownshift, XenDomctl,
)
from hv.public.xen import DOMID_FIRST_RESERVED, HYPERVISOR_domctl
from hv.xenstore.client import XsClient
from hv.xenstore.errors import XsError
from xl.privcmd import Privcmd

# xl_info.c's letters for a shut-down domain's reason (poweroff, reboot,
# suspend, crash, watchdog, soft reset).
SHUTDOWN_REASON_LETTERS = "-rscwS"


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


class Toolstack:
    def __init__(self, host):
        self.host = host
        self.pc = Privcmd(host.xen)
        self.xs = XsClient(host.xenstored)

    def domain_infos(self) -> list:
        """Every domain, as xc_domain_getinfolist() walks them: each
        getdomaininfo answers the first domain at or after the id asked."""
        infos = []
        domid = 0
        while domid < DOMID_FIRST_RESERVED:
            op = XenDomctl(cmd=XEN_DOMCTL_getdomaininfo, interface_version=XEN_DOMCTL_INTERFACE_VERSION,
                           domain=domid)
            rc, out = self.pc.xen.hypercall(self.pc.vcpu, HYPERVISOR_domctl, op)
            if rc < 0:
                break
            infos.append(out.u)
            domid = out.u.domain + 1
        return infos

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
                 "cpu_time_s": info.cpu_time / 1e9}
                for info in self.domain_infos()]
