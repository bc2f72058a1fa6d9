"""Shared fixtures: a small host, guests built the toolstack's way, and an
audit of every host a test made once the test is over."""

from __future__ import annotations

import pytest

from hv.host import Host
from hv.public.xen import HYPERVISOR_event_channel_op
from hv.xen.audit import audit
from hv.xen.hypervisor import MiB
from xl.dombuild import build_pv_domain
from xl.privcmd import Privcmd
# The dashboard's frozen host service, for any module that asks for it
# (a fixture here, so that the modules need not import it by name).
from tui_host import frozen_home  # noqa: F401

_hosts: list[Host] = []


def make_host(**kw) -> Host:
    """A small host whose dom0 runs no modelled kernel: the tests make its
    hypercalls, and between them its vCPU waits for events, as an idle
    kernel's does."""
    kw.setdefault("cpus", 2)
    kw.setdefault("memory", 1024 * MiB)
    kw.setdefault("dom0_memory", 128 * MiB)
    kw.setdefault("dom0_workload", None)
    host = Host(**kw)
    for v in host.dom0.vcpus:
        if v.runnable and host.dom0.guest is None:
            host.xen.sched.vcpu_block(v)
    host.xen.process_pending()
    _hosts.append(host)
    return host


@pytest.fixture(autouse=True)
def _audit_hosts_after_test():
    """Every scenario ends with the machine's invariants intact."""
    _hosts.clear()
    yield
    for host in _hosts:
        host.xen.process_pending()
        problems = audit(host.xen)
        host.close()
        assert not problems, "audit after the test:\n  " + "\n  ".join(problems)
    _hosts.clear()


@pytest.fixture
def host() -> Host:
    return make_host()


@pytest.fixture
def xen(host):
    return host.xen


@pytest.fixture
def dom0(host):
    return host.dom0


@pytest.fixture
def privcmd(host) -> Privcmd:
    return Privcmd(host.xen)


@pytest.fixture
def make_domu(host, privcmd):
    """Build a PV guest from dom0; returns its Domain."""
    def build(memory_mib: int = 16, vcpus: int = 1, **kw):
        built = build_pv_domain(privcmd, memory_kib=memory_mib * 1024, max_vcpus=vcpus, **kw)
        return host.xen.domains.get(built.domid)
    return build


def hypercall(xen, domain_or_vcpu, nr, *args):
    """(rc, out) for a hypercall made by a domain's vCPU 0 (or a vCPU)."""
    v = domain_or_vcpu.vcpus[0] if hasattr(domain_or_vcpu, "vcpus") else domain_or_vcpu
    return xen.hypercall(v, nr, *args)


def evtchn(xen, who, cmd, arg):
    """(rc, out) of an event_channel_op made by ``who``."""
    return hypercall(xen, who, HYPERVISOR_event_channel_op, cmd, arg)


def ok(result):
    """The output of a call that must succeed."""
    rc, out = result
    assert rc == 0, f"expected success, got rc {rc}"
    return out


@pytest.fixture
def served(tmp_path):
    """A small host serving xenstore on a UNIX socket: (host, socket path)."""
    host = Host(cpus=2, memory=1024 * MiB, dom0_memory=128 * MiB)
    path = str(tmp_path / "socket")
    host.serve_xenstore(path)
    try:
        yield host, path
    finally:
        host.close()
