"""Stepping a paused domain one operation at a time, snapshots that carry
the whole machine, and the same configuration giving the same trace."""

from __future__ import annotations

import pytest

from hv.host import Host
from hv.public.domctl import XEN_DOMCTL_pausedomain, XEN_DOMCTL_unpausedomain
from hv.public.vcpu import RUNSTATE_running
from hv.xen.audit import audit
from hv.xen.timer import NS_PER_MS, NS_PER_S
from tests.calls import boot_guest, domctl
from tests.conftest import make_host
from xl.dombuild import build_pv_domain
from xl.privcmd import Privcmd


def pause(host, d):
    assert domctl(host.xen, host.dom0, XEN_DOMCTL_pausedomain, d.domid)[0] == 0


def unpause(host, d):
    assert domctl(host.xen, host.dom0, XEN_DOMCTL_unpausedomain, d.domid)[0] == 0


def guest_records(records):
    return [(r.name, r.args, r.result) for r in records if r.kind == "guest"]


# ---------------------------------------------------------------- stepping
def test_stepping_a_paused_domain_runs_one_operation_at_a_time():
    host = make_host(cpus=2)
    built = build_pv_domain(Privcmd(host.xen), memory_kib=16 * 1024, unpause=False,
                            workload=["compute 5ms", "echo stepped"])
    d = host.xen.domains.get(built.domid)
    now = host.now
    first = host.step_domain(d.domid)
    assert guest_records(first) == [("start_info", (), "done")]
    second = host.step_domain(d.domid)
    # The step shows what was called, with what, and what came back.
    assert [(r.kind, r.name) for r in second] == [
        ("hypercall", "callback_op:register"), ("hypercall", "callback_op:register"),
        ("hypercall", "callback_op:register"), ("guest", "callbacks")]
    assert all(r.result == 0 for r in second if r.kind == "hypercall")
    names = []
    for _ in range(12):
        names += [name for name, _a, _r in guest_records(host.step_domain(d.domid))]
    assert names[:7] == ["shared_info", "bind_timer", "bind_ipi", "enable_events", "banner",
                         "xenbus_init", "program"]
    assert ("compute", (5 * NS_PER_MS,), 5 * NS_PER_MS) in [
        rec for rec in guest_records(host.xen.trace)]
    assert host.now == now            # the rest of the machine kept its own time
    assert d.vcpus[0].runstate != RUNSTATE_running
    assert not audit(host.xen)


def test_stepping_then_running_continues_where_the_steps_left_off():
    host = make_host(cpus=2)
    d, built = boot_guest(host, ["compute 1ms", "echo one", "echo two", "idle"], settle=0)
    pause(host, d)
    while "program" not in [r.name for r in host.step_domain(d.domid)]:
        pass
    unpause(host, d)
    host.run(until=host.now + 10 * NS_PER_MS)
    echoes = [r.args[0] for r in host.xen.trace if r.kind == "guest" and r.name == "echo"]
    assert echoes == ["one\n", "two\n"]


def test_stepping_refuses_a_running_domain_and_one_without_a_kernel():
    host = make_host(cpus=2)
    d, _ = boot_guest(host, ["burn 100%"])
    with pytest.raises(ValueError, match="is running: pause it"):
        host.step_domain(d.domid)
    plain = build_pv_domain(Privcmd(host.xen), memory_kib=16 * 1024, unpause=False)
    with pytest.raises(ValueError, match="runs no modelled kernel"):
        host.step_domain(plain.domid)
    with pytest.raises(ValueError, match="no domain 99"):
        host.step_domain(99)


def test_stepping_a_vcpu_paused_in_the_middle_of_a_compute_finishes_it():
    host = make_host(cpus=2)
    d, _ = boot_guest(host, ["compute 50ms", "echo done", "idle"])
    host.run(until=host.now + 10 * NS_PER_MS)
    pause(host, d)
    finished = guest_records(host.step_domain(d.domid))
    assert finished == [("compute", (50 * NS_PER_MS,), "finished")]


# ---------------------------------------------------------------- snapshots
def busy_host(seed=0):
    host = Host(cpus=2, memory=2 << 30, dom0_memory=256 << 20, seed=seed)
    for workload in (["burn 100%"], ["echo x", "sleep 20ms", "loop"], ["burn 30%"],
                     ["balloon 12M", "sleep 300ms", "balloon 16M", "sleep 300ms", "loop"]):
        boot_guest(host, workload, vcpus=2, settle=0)
    return host


def formatted(host, since=0):
    return [r.format() for r in host.xen.trace.since(since)]


def test_a_restored_snapshot_goes_on_exactly_as_the_original():
    original = busy_host()
    original.run(until=NS_PER_S)
    snap = original.snapshot()
    copy = Host.restore(snap)
    mark = original.xen.trace.seq
    original.run(until=3 * NS_PER_S)
    copy.run(until=3 * NS_PER_S)
    assert formatted(copy, mark) == formatted(original, mark)
    assert len(formatted(original, mark)) > 1000
    assert not audit(copy.xen)
    # Memory too, byte for byte.
    assert [bytes(copy.xen.ram.peek(m)) for m in sorted(original.xen.ram._frames)] == \
        [bytes(original.xen.ram.peek(m)) for m in sorted(original.xen.ram._frames)]


def test_the_same_configuration_gives_the_same_trace():
    a, b = busy_host(), busy_host()
    a.run(until=2 * NS_PER_S)
    b.run(until=2 * NS_PER_S)
    assert formatted(a) == formatted(b)


def test_restore_refuses_what_is_not_a_host():
    import pickle
    with pytest.raises(ValueError, match="not a host snapshot"):
        Host.restore(pickle.dumps({"not": "a host"}))
