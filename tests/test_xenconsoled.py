"""The console daemon in dom0 and the guest's end of the console: output
through the ring's out half, flow control, input through its in half, two
guests kept apart, a guest that breaks its ring, and a domain's death."""

from __future__ import annotations

import struct

import pytest

from hv.guest.xenconsoled import ConsoleNotFound
from hv.host import Host
from hv.public.domctl import XEN_DOMCTL_pausedomain, XEN_DOMCTL_unpausedomain
from hv.public.event_channel import EVTCHNOP_send, EvtchnSend
from hv.public.grant_table import GNTTAB_RESERVED_CONSOLE
from hv.public.io.console import XenconsInterface
from hv.public.xen import HYPERVISOR_event_channel_op
from hv.xen.event_channel import ECS_FREE
from tests.calls import domctl
from tests.conftest import _hosts, hypercall, make_host
from tests.devices import device_host, guest, settle
from xl.dombuild import build_pv_domain, destroy_domain
from xl.domain_store import make_domain_entries
from xl.privcmd import Privcmd

IDX = XenconsInterface.offsetof("in_cons")
_IDX = struct.Struct("<IIII")


@pytest.fixture
def machine():
    return device_host()


def ring_indices(host, d, built) -> tuple[int, int, int, int]:
    """(in_cons, in_prod, out_cons, out_prod) as they are in the page."""
    page = host.xen.frames.map_domain_page(d, built.console_mfn, False)
    return _IDX.unpack_from(page, IDX)


def guest_with_console(host, xs, name, workload, **console_nodes):
    """A guest built as the toolstack builds one, with some of its console
    nodes written differently before it is introduced."""
    pc = Privcmd(host.xen)
    built = build_pv_domain(pc, memory_kib=32 * 1024, workload=list(workload), unpause=False)
    make_domain_entries(xs, built.domid, name=name, uuid="00000000-0000-0000-0000-000000000000",
                        memory_kib=32 * 1024, maxmem_kib=32 * 1024, vcpus=1,
                        store_port=built.store_port, store_mfn=built.store_mfn,
                        console_port=built.console_port, console_mfn=built.console_mfn)
    for node, value in console_nodes.items():
        xs.write(f"/local/domain/{built.domid}/console/{node}", value)
    xs.introduce(built.domid, built.store_mfn, built.store_port)
    assert domctl(host.xen, host.dom0, XEN_DOMCTL_unpausedomain, built.domid)[0] == 0
    return host.xen.domains.get(built.domid), built


# ----------------------------------------------------------------- output
def test_a_guests_lines_arrive_in_order_after_its_banner(machine):
    host, xs = machine
    d, _ = guest(host, xs, "talker", ["echo one", "echo two", "sleep 1ms", "echo three"])
    settle(host)
    out = host.xenconsoled.output(d.domid)
    assert out.startswith(b"xenlab PV kernel: domain %d" % d.domid)
    assert out.endswith(b"\none\ntwo\nthree\n")
    assert host.console_output(d.domid) == out


def test_more_than_the_ring_holds_arrives_whole_and_in_order(machine):
    host, xs = machine
    lines = [f"line {i:03d} " + "x" * 30 for i in range(200)]
    d, built = guest(host, xs, "chatty", [f"echo {line}" for line in lines])
    settle(host, 100)
    out = host.xenconsoled.output(d.domid).decode()
    assert len(out) > 3 * 2048
    assert out.splitlines()[1:] == lines                 # nothing lost, nothing twice
    _, _, out_cons, out_prod = ring_indices(host, d, built)
    assert out_cons == out_prod == len(out)
    assert d.guest.console_out == b""                    # the kernel waits for nothing


def test_a_full_ring_waits_for_the_daemon_and_then_all_of_it_comes(machine):
    host, xs = machine
    lines = [f"line {i:03d} " + "y" * 30 for i in range(200)]
    # Served by someone else at first: nobody empties the ring.
    d, built = guest_with_console(host, xs, "patient", [f"echo {line}" for line in lines],
                                  type="ioemu")
    settle(host)
    _, _, out_cons, out_prod = ring_indices(host, d, built)
    assert (out_cons, out_prod) == (0, 2048)             # full
    assert len(d.guest.console_out) > 4000               # the rest waits in the kernel
    xs.write(f"/local/domain/{d.domid}/console/type", "xenconsoled")   # the daemon's now
    settle(host)
    out = host.xenconsoled.output(d.domid).decode()
    assert out.splitlines()[1:] == lines
    assert d.guest.console_out == b""
    _, _, out_cons, out_prod = ring_indices(host, d, built)
    assert out_cons == out_prod == len(out)


def test_a_follower_reads_only_what_is_new(machine):
    host, xs = machine
    d, _ = guest(host, xs, "follow", ["echo early", "sleep 20ms", "echo late"])
    settle(host, 10)
    first, offset = host.xenconsoled.read_new(d.domid, 0)
    assert first.endswith(b"early\n") and offset == len(first)
    assert host.xenconsoled.read_new(d.domid, offset) == (b"", offset)
    settle(host, 30)
    assert host.xenconsoled.read_new(d.domid, offset) == (b"late\n", offset + 5)


def test_the_daemon_keeps_the_last_limit_bytes(machine):
    host, xs = machine
    d, _ = guest_with_console(host, xs, "limited", [f"echo {i:02d}" for i in range(40)],
                              limit="30")
    settle(host)
    daemon = host.xenconsoled
    assert daemon.output(d.domid) == b"".join(b"%02d\n" % i for i in range(30, 40))
    kept, offset = daemon.read_new(d.domid, 0)          # a follower too far behind
    assert kept == daemon.output(d.domid)
    assert offset == len(b"xenlab PV kernel: domain %d, 8192 pages, 1 vCPUs\n" % d.domid) + 40 * 3


def test_a_console_served_by_someone_else_is_left_alone(machine):
    host, xs = machine
    d, built = guest_with_console(host, xs, "qemu", ["echo hi"], type="ioemu")
    settle(host)
    assert host.xenconsoled.output(d.domid) == b""
    assert not host.xenconsoled.domains[d.domid].connected
    assert not [m for m in host.dom0.grant_table.maptrack.values()
                if m.flags and m.domid == d.domid and m.ref == GNTTAB_RESERVED_CONSOLE]
    assert ring_indices(host, d, built)[2] == 0          # nobody took anything


def test_output_goes_to_a_log_file_per_guest(tmp_path):
    host, xs = device_host(console_log_dir=str(tmp_path / "console"))
    d, _ = guest(host, xs, "logged", ["echo to the log"])
    settle(host)
    log = tmp_path / "console" / "guest-logged.log"
    assert log.read_bytes() == host.xenconsoled.output(d.domid)
    assert log.read_bytes().endswith(b"to the log\n")


# ----------------------------------------------------------------- input
def test_typed_input_reaches_the_guest_and_is_echoed(machine):
    host, xs = machine
    d, built = guest(host, xs, "typist", ["echo ready"])
    settle(host)
    assert host.xenconsoled.write_input(d.domid, b"uname -a\n") == 9
    settle(host)
    assert d.guest.console_in == b"uname -a\n"
    assert host.xenconsoled.output(d.domid).endswith(b"ready\nuname -a\n")
    in_cons, in_prod, out_cons, out_prod = ring_indices(host, d, built)
    assert in_cons == in_prod == 9 and out_cons == out_prod


def test_input_takes_only_what_the_ring_has_room_for(machine):
    host, xs = machine
    d, _ = guest(host, xs, "slow", ["idle"])
    settle(host)
    typed = bytes(range(256)) * 6
    daemon = host.xenconsoled
    domctl(host.xen, host.dom0, XEN_DOMCTL_pausedomain, d.domid)     # it reads nothing meanwhile
    assert daemon.write_input(d.domid, typed) == 1024    # the in ring is 1024 bytes
    assert daemon.write_input(d.domid, typed[1024:]) == 0
    domctl(host.xen, host.dom0, XEN_DOMCTL_unpausedomain, d.domid)
    settle(host)                                         # the guest takes it and tells the daemon
    assert daemon.write_input(d.domid, typed[1024:]) == len(typed) - 1024
    settle(host)
    assert d.guest.console_in == typed
    assert daemon.output(d.domid).endswith(typed)        # echoed through the out ring's 2048


def test_two_guests_are_kept_apart(machine):
    host, xs = machine
    a, _ = guest(host, xs, "alice", ["echo from alice", "sleep 5ms", "echo alice again"])
    b, _ = guest(host, xs, "bob", ["echo from bob", "sleep 5ms", "echo bob again"])
    settle(host)
    daemon = host.xenconsoled
    assert daemon.output(a.domid).split(b"\n")[1:] == [b"from alice", b"alice again", b""]
    assert daemon.output(b.domid).split(b"\n")[1:] == [b"from bob", b"bob again", b""]
    daemon.write_input(a.domid, b"for alice\n")
    settle(host)
    assert a.guest.console_in == b"for alice\n" and b.guest.console_in == b""
    assert b"for alice" not in daemon.output(b.domid)


# ----------------------------------------------------------------- a broken ring
def test_a_guest_that_breaks_its_ring_gets_nothing_read_and_the_others_go_on(machine):
    host, xs = machine
    bad, bad_built = guest(host, xs, "broken", ["echo before", "sleep 20ms", "echo after"])
    good, _ = guest(host, xs, "fine", ["echo before", "sleep 20ms", "echo after"])
    settle(host, 10)
    daemon = host.xenconsoled
    kept = daemon.output(bad.domid)
    page = host.xen.frames.map_domain_page(bad, bad_built.console_mfn, True)
    in_cons, in_prod, out_cons, _ = _IDX.unpack_from(page, IDX)
    # The guest claims far more than the ring holds, in both halves, and
    # tells the daemon.
    _IDX.pack_into(page, IDX, in_cons, in_cons + 5000, out_cons, out_cons + 5000)
    rc, _ = hypercall(host.xen, bad, HYPERVISOR_event_channel_op, EVTCHNOP_send,
                      EvtchnSend(port=bad_built.console_port))
    assert rc == 0
    settle(host, 40)
    assert daemon.output(bad.domid) == kept               # nothing read past the ring
    assert _IDX.unpack_from(page, IDX)[2] == out_cons     # nor taken
    assert daemon.write_input(bad.domid, b"x") == 0       # no room in a ring that makes no sense
    assert bad.guest.console_out == b"after\n"            # its own output waits for room
    assert daemon.output(good.domid).endswith(b"before\nafter\n")
    assert daemon.write_input(good.domid, b"y") == 1


# ----------------------------------------------------------------- death
def test_a_destroyed_domain_is_let_go_and_its_output_stays(machine):
    host, xs = machine
    d, built = guest(host, xs, "doomed", ["echo last words"])
    settle(host)
    domid = d.domid
    daemon = host.xenconsoled
    port = daemon.domains[domid].local_port
    assert port and port in host.dom0.guest.listeners
    destroy_domain(Privcmd(host.xen), domid)
    settle(host)
    assert host.xen.domains.get(domid) is None            # no mapping kept it
    assert not [m for m in host.dom0.grant_table.maptrack.values()
                if m.flags and m.domid == domid]
    assert port not in host.dom0.guest.listeners and port not in daemon.by_port
    assert host.dom0.evtchn.chan(port).state == ECS_FREE           # the daemon closed its end
    assert daemon.output(domid).endswith(b"last words\n")
    assert daemon.write_input(domid, b"anyone?") == 0
    daemon.forget(domid)
    with pytest.raises(ConsoleNotFound):
        daemon.output(domid)


def test_a_new_domain_with_a_dead_ones_id_gets_a_fresh_console(machine):
    host, xs = machine
    d, _ = guest(host, xs, "first", ["echo first"])
    settle(host)
    domid = d.domid
    destroy_domain(Privcmd(host.xen), domid)
    settle(host)
    again = build_pv_domain(Privcmd(host.xen), memory_kib=32 * 1024, domid=domid, unpause=False,
                            workload=["echo second"])
    make_domain_entries(xs, domid, name="second", uuid="00000000-0000-0000-0000-000000000001",
                        memory_kib=32 * 1024, maxmem_kib=32 * 1024, vcpus=1,
                        store_port=again.store_port, store_mfn=again.store_mfn,
                        console_port=again.console_port, console_mfn=again.console_mfn)
    xs.introduce(domid, again.store_mfn, again.store_port)
    domctl(host.xen, host.dom0, XEN_DOMCTL_unpausedomain, domid)
    settle(host)
    out = host.xenconsoled.output(domid)
    assert b"first" not in out and out.endswith(b"second\n")


def test_a_guest_that_shuts_down_keeps_its_console(machine):
    host, xs = machine
    d, _ = guest(host, xs, "stopper", ["echo bye", "shutdown poweroff"])
    settle(host)
    assert d.is_shut_down
    assert host.xenconsoled.domains[d.domid].connected
    assert host.xenconsoled.output(d.domid).endswith(b"bye\n")


# ----------------------------------------------------------------- the host
def test_a_host_whose_dom0_runs_no_kernel_has_no_daemon():
    host = make_host()
    assert host.xenconsoled is None
    with pytest.raises(ValueError, match="no console daemon"):
        host.console_output(1)


def test_unknown_domains_have_no_console(machine):
    host, _ = machine
    with pytest.raises(ConsoleNotFound):
        host.xenconsoled.output(42)
    with pytest.raises(ConsoleNotFound):
        host.xenconsoled.write_input(0, b"x")


def test_a_restored_snapshot_keeps_the_consoles_and_hears_of_new_domains(machine):
    host, xs = machine
    d, _ = guest(host, xs, "kept", ["echo before the snapshot", "sleep 20ms", "echo after it"])
    settle(host, 10)
    twin = Host.restore(host.snapshot())
    _hosts.append(twin)
    twin_xs = type(xs)(twin.xenstored)
    settle(twin, 30)
    settle(host, 30)
    assert twin.xenconsoled.output(d.domid) == host.xenconsoled.output(d.domid)
    assert twin.xenconsoled.output(d.domid).endswith(b"before the snapshot\nafter it\n")
    assert twin.xenconsoled.write_input(d.domid, b"hi\n") == 3
    settle(twin)
    assert twin.xen.domains.get(d.domid).guest.console_in == b"hi\n"
    assert d.guest.console_in == b""                      # the original is another machine
    other, _ = guest(twin, twin_xs, "newcomer", ["echo new"])
    settle(twin)
    assert twin.xenconsoled.output(other.domid).endswith(b"new\n")
