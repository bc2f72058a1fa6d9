"""XEN_SYSCTL_*: what a toolstack asks of the host as a whole, with Xen's
checks in Xen's order."""

from hv.public.errno import EACCES, EFAULT, ENOSYS, EPERM
from hv.public.sysctl import (
    XEN_SYSCTL_PHYSCAP_gnttab_v1, XEN_SYSCTL_PHYSCAP_pv, XEN_SYSCTL_debug_keys,
    XEN_SYSCTL_physinfo, XEN_SYSCTL_readconsole, XEN_SYSCTL_sched_id, XenSysctl,
    XenSysctlDebugKeys, XenSysctlPhysinfo, XenSysctlReadconsole, XenSysctlSchedId,
)
from hv.public.domctl import XEN_SCHEDULER_CREDIT
from hv.public.xen import HYPERVISOR_sysctl
from hv.xen.hypervisor import MiB

from tests.calls import boot_guest
from tests.conftest import hypercall, make_host


def sysctl(xen, who, cmd, u, version=0x15):
    return hypercall(xen, who, HYPERVISOR_sysctl,
                     XenSysctl(cmd=cmd, interface_version=version, u=u))


def test_physinfo_describes_the_host():
    host = make_host(cpus=3, memory=512 * MiB)
    rc, out = sysctl(host.xen, host.dom0, XEN_SYSCTL_physinfo, XenSysctlPhysinfo())
    pi = out.u
    assert rc == 0
    assert (pi.nr_cpus, pi.max_cpu_id, pi.cores_per_socket, pi.threads_per_core) == (3, 2, 3, 1)
    assert (pi.nr_nodes, pi.max_node_id) == (1, 63)
    assert pi.cpu_khz == host.xen.cpu_khz
    assert pi.capabilities == XEN_SYSCTL_PHYSCAP_pv | XEN_SYSCTL_PHYSCAP_gnttab_v1
    assert pi.total_pages == 512 * MiB // 4096 and pi.max_mfn == pi.total_pages - 1
    assert pi.free_pages == host.xen.heap.free_pages < pi.total_pages
    # Memory a new domain takes is no longer free.
    boot_guest(host, ["idle"], memory_mib=16)
    _, again = sysctl(host.xen, host.dom0, XEN_SYSCTL_physinfo, XenSysctlPhysinfo())
    assert pi.free_pages - again.u.free_pages >= 16 * MiB // 4096


def test_sched_id_is_credit():
    host = make_host()
    rc, out = sysctl(host.xen, host.dom0, XEN_SYSCTL_sched_id, XenSysctlSchedId())
    assert (rc, out.u.sched_id) == (0, XEN_SCHEDULER_CREDIT)


def test_checks_come_in_xens_order():
    host = make_host()
    guest = boot_guest(host, ["idle"])[0]
    d = host.xen.domains.get(guest.domid)
    assert sysctl(host.xen, d, XEN_SYSCTL_physinfo, XenSysctlPhysinfo(), version=0x14)[0] == -EACCES
    assert sysctl(host.xen, d, XEN_SYSCTL_physinfo, XenSysctlPhysinfo())[0] == -EPERM
    assert sysctl(host.xen, host.dom0, 99, XenSysctlPhysinfo())[0] == -ENOSYS
    assert sysctl(host.xen, host.dom0, XEN_SYSCTL_physinfo, XenSysctlSchedId())[0] == -EFAULT
    assert hypercall(host.xen, host.dom0, HYPERVISOR_sysctl, "physinfo")[0] == -EFAULT


def test_readconsole_reads_in_pieces_and_clears():
    host = make_host()
    xen = host.xen
    xen.console.read_ring(clear=True)
    xen.console.printk("one")
    xen.console.printk("two")
    rc, out = sysctl(xen, host.dom0, XEN_SYSCTL_readconsole,
                     XenSysctlReadconsole(count=8, incremental=1, index=0))
    assert rc == 0 and out.u.buffer == b"(XEN) on" and out.u.count == 8
    rc, rest = sysctl(xen, host.dom0, XEN_SYSCTL_readconsole,
                      XenSysctlReadconsole(count=100, incremental=1, index=out.u.index))
    assert rest.u.buffer == b"e\n(XEN) two\n" and rest.u.index == out.u.index + 12
    # Not incremental: from where it was last cleared, and clearing it.
    _, whole = sysctl(xen, host.dom0, XEN_SYSCTL_readconsole, XenSysctlReadconsole(count=100, clear=1))
    assert whole.u.buffer == b"(XEN) one\n(XEN) two\n"
    _, empty = sysctl(xen, host.dom0, XEN_SYSCTL_readconsole, XenSysctlReadconsole(count=100))
    assert (empty.u.count, empty.u.buffer) == (0, b"")


def test_debug_keys_press_each_key():
    host = make_host()
    xen = host.xen
    xen.console.read_ring(clear=True)
    rc, _ = sysctl(xen, host.dom0, XEN_SYSCTL_debug_keys, XenSysctlDebugKeys(keys=b"hr", nr_keys=2))
    ring = xen.console.read_ring().decode()
    assert rc == 0
    assert "'h' pressed -> showing installed handlers" in ring
    run_queues = "".join(f"(XEN) {line}\n" for line in xen.sched.dump().split("\n"))
    assert ring.endswith(run_queues)
    # nr_keys beyond what the buffer holds: the keys it has are pressed,
    # then the first missing one faults.
    xen.console.read_ring(clear=True)
    assert sysctl(xen, host.dom0, XEN_SYSCTL_debug_keys,
                  XenSysctlDebugKeys(keys=b"h", nr_keys=3))[0] == -EFAULT
    assert xen.console.read_ring().count(b"'h' pressed") == 1


def test_getdomaininfolist_answers_in_id_order_from_first_domain_up_to_max():
    from hv.public.sysctl import XEN_SYSCTL_getdomaininfolist, XenSysctlGetdomaininfolist
    from hv.public.domctl import XEN_DOMCTL_getdomaininfo
    from tests.calls import domctl
    host = make_host(memory=1024 * MiB)
    ids = [boot_guest(host, ["idle"], memory_mib=8)[0].domid for _ in range(4)]

    def ask(first, most):
        rc, out = sysctl(host.xen, host.dom0, XEN_SYSCTL_getdomaininfolist,
                         XenSysctlGetdomaininfolist(first_domain=first, max_domains=most))
        assert rc == 0 and out.u.num_domains == len(out.u.buffer)
        return out.u.buffer

    assert [i.domain for i in ask(0, 1024)] == [0] + ids
    assert [i.domain for i in ask(ids[1], 2)] == ids[1:3]
    assert ask(ids[-1] + 1, 1024) == ()
    # Each entry is what getdomaininfo says of that domain.
    single = domctl(host.xen, host.dom0, XEN_DOMCTL_getdomaininfo, ids[0])[1].u
    assert ask(ids[0], 1)[0] == single
    guest = host.xen.domains.get(ids[0])
    assert sysctl(host.xen, guest, XEN_SYSCTL_getdomaininfolist,
                  XenSysctlGetdomaininfolist(max_domains=4))[0] == -EPERM
