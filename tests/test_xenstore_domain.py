"""Domains and xenstored: a guest's store ring, the toolstack's entries and
their permissions, a guest's quotas, and what happens when domains come
and go. Guests here are either the modelled kernel running a program of
xs-* operations, or the test itself writing raw bytes into the ring of a
domain that runs no kernel, the way a hostile guest could."""

from __future__ import annotations

import struct

import pytest

from hv.host import Host
from hv.public.errno import EACCES, E2BIG, ENOSPC, EPERM
from hv.public.event_channel import EVTCHNOP_send, EvtchnSend
from hv.public.io.xs_wire import (
    XENSTORE_ERROR_PROTO, XENSTORE_ERROR_RINGIDX, XS_ERROR, XS_READ, XS_TRANSACTION_START,
    XS_WATCH, XS_WATCH_EVENT, XS_WRITE, XenstoreDomainInterface,
)
from hv.public.xen import HYPERVISOR_event_channel_op
from hv.xen.audit import audit
from hv.xen.hypervisor import MiB
from hv.xen.timer import NS_PER_MS
from hv.xenstore.client import XsClient
from hv.xenstore.errors import XsError
from hv.xenstore.protocol import HEADER, Parser
from hv.xenstore.quota import Quotas
from tests.conftest import _hosts
from xl.dombuild import create_pv_domain, destroy_domain
from xl.privcmd import Privcmd

IDX = XenstoreDomainInterface.offsetof("req_cons")
ERROR = XenstoreDomainInterface.offsetof("error")


def new_host(**kw) -> Host:
    """A small host whose dom0 runs its kernel, so xenstored runs too."""
    kw.setdefault("cpus", 2)
    kw.setdefault("memory", 1024 * MiB)
    kw.setdefault("dom0_memory", 128 * MiB)
    host = Host(**kw)
    _hosts.append(host)
    return host


def settle(host: Host, ms: int = 5) -> None:
    host.run(until=host.now + ms * NS_PER_MS)


def guest(host: Host, xs: XsClient, workload=None, name="guest", memory_mib=16, domid=0):
    built = create_pv_domain(Privcmd(host.xen), xs, name=name, memory_kib=memory_mib * 1024,
                             workload=workload, domid=domid)
    return host.xen.domains.get(built.domid), built


class RawRing:
    """The guest's end of its store ring, driven by hand."""

    def __init__(self, host: Host, d, built):
        self.host, self.d, self.built = host, d, built
        self.parser = Parser()
        self.replies = []

    @property
    def page(self) -> bytearray:
        return self.host.xen.frames.map_domain_page(self.d, self.built.store_mfn, writable=True)

    def indices(self):
        return struct.unpack_from("<IIII", self.page, IDX)

    def set_indices(self, *idx) -> None:
        struct.pack_into("<IIII", self.page, IDX, *idx)

    def put(self, data: bytes) -> None:
        page = self.page
        req_cons, req_prod, _, _ = self.indices()
        assert len(data) <= 1024 - ((req_prod - req_cons) & 0xFFFFFFFF), "no room"
        for i, b in enumerate(data):
            page[(req_prod + i) & 1023] = b
        struct.pack_into("<I", page, IDX + 4, (req_prod + len(data)) & 0xFFFFFFFF)

    def notify(self) -> None:
        rc, _ = self.host.xen.hypercall(self.d.vcpus[0], HYPERVISOR_event_channel_op,
                                        EVTCHNOP_send, EvtchnSend(port=self.built.store_port))
        assert rc == 0
        settle(self.host, 1)

    def send(self, type_, payload, req_id=1, tx_id=0) -> None:
        """In as many pieces as the ring takes, as a kernel's xenbus does."""
        data = HEADER.pack(type_, req_id, tx_id, len(payload)) + payload
        while data:
            req_cons, req_prod, _, _ = self.indices()
            room = 1024 - ((req_prod - req_cons) & 0xFFFFFFFF)
            self.put(data[:room])
            data = data[room:]
            self.notify()

    def take(self) -> list:
        page = self.page
        _, _, rsp_cons, rsp_prod = self.indices()
        data = bytes(page[1024 + ((rsp_cons + i) & 1023)]
                     for i in range((rsp_prod - rsp_cons) & 0xFFFFFFFF))
        struct.pack_into("<I", page, IDX + 8, rsp_prod)
        self.replies += self.parser.feed(data)
        return self.replies


@pytest.fixture
def host():
    return new_host()


@pytest.fixture
def xs(host):
    return XsClient(host.xenstored)


# ------------------------------------------------------------ the scenario
def test_a_guest_writes_its_home_is_refused_elsewhere_watches_and_is_cleaned_up(host, xs):
    xs.watch("@releaseDomain", "rel")
    xs.write("/local/domain/0/shared", "before")
    d, built = guest(host, xs, workload=[
        "xs-write data/greeting hello", "xs-read data/greeting",
        "xs-write /local/domain/0/intrusion x", "xs-write name renamed",
        "xs-write memory/target 1", "xs-watch /local/domain/0/shared", "sleep 20ms",
        "xs-read name"])
    settle(host, 10)
    k = d.guest
    assert k.xs_log[:5] == [
        ("write", "data/greeting", "OK"), ("read", "data/greeting", "hello"),
        ("write", "/local/domain/0/intrusion", "EACCES"), ("write", "name", "EACCES"),
        ("write", "memory/target", "EACCES")]
    home = f"/local/domain/{d.domid}"
    assert xs.read(f"{home}/data/greeting") == b"hello"
    assert xs.get_perms(f"{home}/data/greeting")[0].domid == d.domid   # the guest owns what it made
    assert not xs.exists("/local/domain/0/intrusion")
    # dom0 lets the guest see the node, then changes it: the guest hears.
    xs.set_perms("/local/domain/0/shared", ["n0", f"r{d.domid}"])
    xs.write("/local/domain/0/shared", "after")
    settle(host, 40)
    events = [e for e in k.xs_log if e[0] == "watch-event"]
    assert len(events) == 3          # on registering, on the permission change, on the write
    assert ("read", "name", "guest") in k.xs_log
    console = bytes(host.xen.frames.map_domain_page(d, built.console_mfn, False)[1024:3072])
    assert b"xs-write name: EACCES\n" in console
    assert b"xs-watch-event /local/domain/0/shared\n" in console

    conn = host.xenstored.connections[-1]
    # The workload's watch, the two its kernel's buses keep on device/ and
    # backend/, and its kernel's on control/shutdown, control/sysrq,
    # memory/target and cpu/.
    assert conn.kind == "domain" and conn.id == d.domid and len(conn.watches) == 7
    assert sorted(w.token for w in conn.watches) == [b"/local/domain/0/shared", b"balloon:target",
                                                     b"bus:backend", b"bus:device",
                                                     b"control:shutdown", b"control:sysrq",
                                                     b"cpu:hotplug"]
    xs.poll_events()
    destroy_domain(Privcmd(host.xen), d.domid)
    settle(host)
    assert (b"@releaseDomain", b"rel") in xs.poll_events()
    assert conn.closed and conn not in host.xenstored.connections
    assert not xs.exists(f"{home}/data/greeting")            # owned by the guest: gone
    assert xs.read(f"{home}/name") == b"guest"                # the toolstack's: left to it
    assert host.xen.domains.get(d.domid) is None              # the store page was let go
    assert host.xenstored.check_store() == []


def test_relative_watches_get_relative_paths_in_a_guest(host, xs):
    d, _ = guest(host, xs, workload=["xs-watch data", "sleep 5ms", "xs-write data/x 1",
                                     "sleep 5ms"])
    settle(host, 20)
    assert [e for e in d.guest.xs_log if e[0] == "watch-event"] == [
        ("watch-event", "data", ""), ("watch-event", "data/x", "")]


def test_release_domain_fires_once_on_shutdown_and_again_when_gone(host, xs):
    xs.watch("@releaseDomain", "rel")
    xs.watch("@introduceDomain", "intro")
    xs.poll_events()
    d, _ = guest(host, xs, workload=["shutdown poweroff"])
    assert xs.poll_events() == [(b"@introduceDomain", b"intro")]
    settle(host)
    assert d.is_shut_down
    assert xs.poll_events() == [(b"@releaseDomain", b"rel")]
    settle(host)
    assert xs.poll_events() == []                    # once per shutdown
    destroy_domain(Privcmd(host.xen), d.domid)
    settle(host)
    assert xs.poll_events() == [(b"@releaseDomain", b"rel")]


def test_a_crash_fires_release_domain(host, xs):
    xs.watch("@releaseDomain", "rel")
    xs.poll_events()
    d, _ = guest(host, xs, workload=["crash"])
    settle(host)
    assert d.shutdown_code == 3
    assert xs.poll_events() == [(b"@releaseDomain", b"rel")]


# ------------------------------------------------------------ the raw ring
def test_requests_wrap_past_two_to_the_32(host, xs):
    d, built = guest(host, xs)
    ring = RawRing(host, d, built)
    start = 0xFFFFFF00
    ring.set_indices(start, start, start, start)
    value = b"v" * 300
    for i in range(4):                           # 4 x 330 bytes: wraps the ring and 2^32
        ring.send(XS_WRITE, b"data/k%d\0" % i + value, req_id=10 + i)
        ring.send(XS_READ, b"data/k%d\0" % i, req_id=20 + i)
        ring.take()
    assert ring.indices()[1] < start             # the index wrapped
    replies = {(m.req_id, m.type): m.payload for m in ring.replies}
    for i in range(4):
        assert replies[(10 + i, XS_WRITE)] == b"OK\0"
        assert replies[(20 + i, XS_READ)] == value


def test_many_messages_in_one_notify_and_one_message_in_pieces(host, xs):
    d, built = guest(host, xs)
    ring = RawRing(host, d, built)
    batch = b"".join(HEADER.pack(XS_WRITE, i, 0, 9) + b"data/a\0%02d" % i for i in range(5))
    ring.put(batch)
    ring.notify()
    msg = HEADER.pack(XS_READ, 99, 0, 7) + b"data/a\0"
    ring.put(msg[:10])
    ring.notify()
    assert [m.req_id for m in ring.take()] == [0, 1, 2, 3, 4]
    ring.put(msg[10:])
    ring.notify()
    assert ring.take()[-1].payload == b"04"


def test_a_guest_that_breaks_its_ring_loses_only_its_connection(host, xs):
    bad, built = guest(host, xs, name="bad")
    good, _ = guest(host, xs, name="good", workload=["sleep 5ms", "xs-write data/ok yes"])
    ring = RawRing(host, bad, built)
    ring.set_indices(0, 5000, 0, 0)              # a producer 5000 bytes ahead of a 1024-byte ring
    ring.notify()
    conn = next(c for c in host.xenstored.connections if c.id == bad.domid)
    assert conn.ignored
    assert struct.unpack_from("<I", ring.page, ERROR)[0] == XENSTORE_ERROR_RINGIDX
    settle(host, 20)
    assert ("write", "data/ok", "OK") in good.guest.xs_log
    assert xs.read(f"/local/domain/{good.domid}/data/ok") == b"yes"
    assert audit(host.xen) == []


def test_an_oversize_message_is_a_protocol_error(host, xs):
    d, built = guest(host, xs)
    ring = RawRing(host, d, built)
    ring.put(HEADER.pack(XS_READ, 1, 0, 5000))
    ring.notify()
    assert struct.unpack_from("<I", ring.page, ERROR)[0] == XENSTORE_ERROR_PROTO
    assert ring.take() == []
    xs.write("/local/domain/0/still", "serving")     # the daemon goes on
    assert xs.read("/local/domain/0/still") == b"serving"


def test_outstanding_replies_hold_back_reading(host, xs):
    d, built = guest(host, xs)
    ring = RawRing(host, d, built)
    xs.write(f"/local/domain/{d.domid}/data/big", "x" * 1000)
    read = HEADER.pack(XS_READ, 0, 0, 9) + b"data/big\0"
    requests = [HEADER.pack(XS_READ, i, 0, 9) + b"data/big\0" for i in range(40)]
    assert len(read) * 40 <= 1024
    ring.put(b"".join(requests))
    ring.notify()
    req_cons, req_prod, _, _ = ring.indices()
    # One reply fits the response ring; twenty more wait to go out; the
    # rest of the requests stay unread.
    assert req_cons == 21 * len(read)
    got = []
    for _ in range(60):
        got = ring.take()
        ring.notify()
        if len(got) == 40:
            break
    assert [m.req_id for m in got] == list(range(40))
    assert all(m.payload == b"x" * 1000 for m in got)


# ------------------------------------------------------------ a guest's quotas
def raw_guest(host, xs, domid=0):
    d, built = guest(host, xs, domid=domid)
    return RawRing(host, d, built), d


def request(ring, type_, payload, tx_id=0):
    n = len(ring.replies)
    req_id = 1000 + n
    ring.send(type_, payload, req_id=req_id, tx_id=tx_id)
    (reply,) = [m for m in ring.take()[n:] if m.type != XS_WATCH_EVENT]
    assert reply.req_id == req_id
    return reply


def error_of(reply) -> str | None:
    return reply.payload.rstrip(b"\0").decode() if reply.type == XS_ERROR else None


def test_guest_quotas_for_nodes_watches_transactions_sizes_and_permissions():
    host = new_host(xenstore_quotas=Quotas(nodes=30, watches=3, transactions=2))
    xs = XsClient(host.xenstored)
    ring, d = raw_guest(host, xs)
    owned = host.xenstore_domains.entries(d.domid)
    results = [error_of(request(ring, XS_WRITE, b"data/n%d\0v" % i)) for i in range(40)]
    assert results.count(None) == 30 - owned
    assert set(results[30 - owned:]) == {"ENOSPC"}
    # Watches: the C daemon refuses one more than the quota lets through.
    watches = [error_of(request(ring, XS_WATCH, b"data/w%d\0t\0" % i)) for i in range(6)]
    assert watches == [None, None, None, None, "E2BIG", "E2BIG"]
    ring.take()
    starts = [error_of(request(ring, XS_TRANSACTION_START, b"\0")) for i in range(5)]
    assert starts == [None, None, None, "ENOSPC", "ENOSPC"]
    big = request(ring, XS_WRITE, b"data/n0\0" + b"x" * 2048)
    assert error_of(big) == "ENOSPC"
    assert error_of(request(ring, XS_WRITE, b"data/n0\0" + b"x" * 1900)) is None
    perms = b"data/n1\0" + b"".join(b"r%d\0" % i for i in range(7))
    assert error_of(request(ring, 14, perms)) == "ENOSPC"
    assert error_of(request(ring, 14, b"data/n1\0n0\0")) == "EPERM"       # not the owner's to give
    assert error_of(request(ring, 14, b"data/n1\0n%d\0r0\0" % d.domid)) is None
    assert [p.domid for p in xs.get_perms(f"/local/domain/{d.domid}/data/n1")] == [d.domid, 0]


def test_dom0_changes_owners_and_is_exempt_from_quotas():
    host = new_host(xenstore_quotas=Quotas(nodes=5))
    xs = XsClient(host.xenstored)
    for i in range(20):
        xs.write(f"/tool/many/n{i}", "v" * 3000)
    d, _ = guest(host, xs)
    xs.set_perms("/tool/many/n0", [f"b{d.domid}"])
    assert xs.get_perms("/tool/many/n0")[0].domid == d.domid


def test_errors_carry_the_c_daemons_errno_values():
    assert (EACCES, E2BIG, ENOSPC, EPERM) == (13, 7, 28, 1)
    with pytest.raises(XsError) as e:
        XsClient(new_host().xenstored).read("/nowhere")
    assert str(e.value) == "ENOENT"


# ------------------------------------------------------------ snapshots
def test_a_snapshot_keeps_the_store_and_a_guests_ring(host, xs):
    d, _ = guest(host, xs, workload=["xs-write data/a 1", "sleep 10ms", "xs-read data/a",
                                     "xs-write data/b 2", "xs-ls data"])
    settle(host, 5)
    snap = host.snapshot()
    settle(host, 30)
    twin = Host.restore(snap)
    _hosts.append(twin)
    settle(twin, 30)
    assert twin.xen.domains.get(d.domid).guest.xs_log == d.guest.xs_log
    assert d.guest.xs_log[-1] == ("ls", "data", "a b")
    assert XsClient(twin.xenstored).read(f"/local/domain/{d.domid}/data/b") == b"2"
    assert [r.format() for r in twin.xen.trace][-50:] == [r.format() for r in host.xen.trace][-50:]


def test_watch_events_interleave_with_replies_on_the_ring(host, xs):
    ring, d = raw_guest(host, xs)
    request(ring, XS_WATCH, b"data\0tok\0")
    xs.write(f"/local/domain/{d.domid}/data/x", "1")
    settle(host, 1)
    types = [m.type for m in ring.take()]
    assert types == [XS_WATCH, XS_WATCH_EVENT, XS_WATCH_EVENT]
    assert ring.replies[-1].payload == b"data/x\0tok\0"


def test_a_guests_requests_are_in_the_trace_and_its_layout_is_as_libxl_makes_it(host, xs):
    d, _ = guest(host, xs, name="traced", workload=[
        "xs-read vm", "xs-write control/shutdown ack", "xs-write control/other x",
        "xs-read /vm/00000000-0000-0000-0000-000000000000/name"])
    settle(host, 10)
    # Its kernel reads its name and its buses look at device/ and backend/ first.
    records = [(r.name, r.args, r.result) for r in host.xen.trace if r.kind == "xenstore"
               and r.domid == d.domid and r.args not in ("device", "backend", "name")
               and (r.name, r.args) not in (("WATCH", "control/shutdown"),
                                            ("READ", "control/shutdown"),
                                            ("WATCH", "memory/target"), ("READ", "memory/target"),
                                            ("WATCH", "control/sysrq"), ("READ", "control/sysrq"),
                                            ("WATCH", "cpu"))
               and not r.args.startswith("cpu/")]
    assert records == [("READ", "vm", "OK"), ("WRITE", "control/shutdown", "OK"),
                       ("WRITE", "control/other", "EACCES"),
                       ("READ", "/vm/00000000-0000-0000-0000-000000000000/name", "OK")]
    home = f"/local/domain/{d.domid}"
    assert d.guest.xs_log[-1] == ("read", "/vm/00000000-0000-0000-0000-000000000000/name", "traced")
    perms = {rel: [str(p.perms) + ":" + str(p.domid) for p in xs.get_perms(f"{home}{rel}")]
             for rel in ("", "/name", "/memory/target", "/data", "/control", "/control/shutdown")}
    assert perms == {"": ["0:0", f"1:{d.domid}"], "/name": ["0:0", f"1:{d.domid}"],
                     "/memory/target": ["0:0", f"1:{d.domid}"], "/data": [f"0:{d.domid}"],
                     "/control": ["0:0", f"1:{d.domid}"], "/control/shutdown": [f"0:{d.domid}"]}
    assert xs.read(f"{home}/cpu/0/availability") == b"online"
    assert xs.read(f"{home}/store/port") == str(d.guest.start_info.store_evtchn).encode()


def test_set_target_gives_a_device_model_its_targets_rights(host, xs):
    dm_ring, dm = raw_guest(host, xs)
    _, target = raw_guest(host, xs)
    name = b"/local/domain/%d/name\0" % target.domid
    assert error_of(request(dm_ring, XS_READ, name)) == "EACCES"
    xs.request(19, b"%d\0%d\0" % (dm.domid, target.domid))          # XS_SET_TARGET
    assert request(dm_ring, XS_READ, name).payload == b"guest"
    data = b"/local/domain/%d/data/from-dm\0x" % target.domid
    assert error_of(request(dm_ring, XS_WRITE, data)) is None        # target owns data/
    with pytest.raises(XsError) as e:
        xs.request(19, b"%d\0%d\0" % (dm.domid, 999))
    assert str(e.value) == "ENOENT"


def test_resume_lets_a_second_shutdown_be_announced(host, xs):
    xs.watch("@releaseDomain", "rel")
    d, _ = guest(host, xs, workload=["shutdown suspend"])
    settle(host)
    assert xs.poll_events()[-1] == (b"@releaseDomain", b"rel")
    assert host.xenstore_domains.domains[d.domid].shutdown
    xs.resume(d.domid)
    assert not host.xenstore_domains.domains[d.domid].shutdown
    host.xen.domains.domain_resume(d)
    host.xen.domains.domain_shutdown(d, 0)
    host.xen.process_pending()                # as Xen does on its way out
    settle(host)
    assert xs.poll_events() == [(b"@releaseDomain", b"rel")]
    with pytest.raises(XsError) as e:
        xs.resume(0)
    assert str(e.value) == "EINVAL"


def test_release_drops_the_connection_and_the_domains_nodes(host, xs):
    xs.watch("@releaseDomain", "rel")
    d, _ = guest(host, xs, workload=["xs-write data/mine 1", "xs-watch data"])
    settle(host, 10)
    xs.poll_events()
    grants_before = host.xen.gnttab.dump()
    xs.release(d.domid)
    assert xs.poll_events() == [(b"@releaseDomain", b"rel")]
    assert not xs.exists(f"/local/domain/{d.domid}/data/mine")
    assert all(c.id != d.domid for c in host.xenstored.connections)
    assert not host.xenstore_domains.is_introduced(d.domid)
    assert grants_before != host.xen.gnttab.dump()                     # the store page is unmapped
    with pytest.raises(XsError) as e:
        xs.release(d.domid)
    assert str(e.value) == "ENOENT"
    # Introduced again, it is served again.
    xs.introduce(d.domid, d.guest.start_info.store_mfn, d.guest.start_info.store_evtchn)
    assert host.xenstore_domains.is_introduced(d.domid)


# ------------------------------------------------------------ review findings
def test_a_domain_that_never_reads_its_ring_loses_events_past_its_quota():
    host = new_host(xenstore_quotas=Quotas(memory=4096))
    xs = XsClient(host.xenstored)
    ring, d = raw_guest(host, xs)
    for i in range(8):
        request(ring, XS_WATCH, b"/local/domain/%d/data\0t%d\0" % (d.domid, i))
    ring.take()
    for i in range(200):                   # the guest reads nothing from here on
        xs.write(f"/local/domain/{d.domid}/data/n{i}", "v")
    conn = next(c for c in host.xenstored.connections if c.id == d.domid)
    assert conn.out_bytes <= 4096 and conn.dropped_events > 0
    assert len(conn.queued_events) == len(conn.out)


def test_a_dead_domain_known_only_as_an_owner_takes_its_nodes_and_rights_with_it(host, xs):
    built = create_pv_domain(Privcmd(host.xen), xs, name="owner", memory_kib=16 * 1024)
    x = built.domid
    xs.release(x)                           # known to xenstored from here on only as an owner
    for path in ("/tool/a/owned", "/tool/b", "/tool/a/kept"):
        xs.write(path, "v")
    xs.set_perms("/tool/a/owned", [f"n{x}"])
    xs.set_perms("/tool/b", [f"n{x}"])
    xs.set_perms("@introduceDomain", [f"n{x}", "r0"])
    xs.watch("/tool", "w")
    xs.poll_events()
    destroy_domain(Privcmd(host.xen), x)
    settle(host)
    # The console daemon still maps the dead domain's console page: no
    # @releaseDomain fires for a released domain, so it lets go only when it
    # next looks at the domain list, as when another domain comes.
    assert host.xen.domains.get(x) is not None and xs.exists("/tool/b")
    create_pv_domain(Privcmd(host.xen), xs, name="next", memory_kib=16 * 1024)
    settle(host)
    assert host.xen.domains.get(x) is None
    assert xs.poll_events() == [(b"/tool/a/owned", b"w"), (b"/tool/b", b"w")]   # depth first
    assert xs.exists("/tool/a/kept") and not xs.exists("/tool/b")
    assert [p.domid for p in xs.get_perms("/tool/a")] == [0]
    assert host.xenstored.special_perms[b"@introduceDomain"][0].domid == 0


def test_a_permission_for_a_dead_domain_does_not_come_back_to_its_successor(host, xs):
    old, _ = guest(host, xs, name="old")
    xs.write("/tool/private", "for the old one")
    xs.set_perms("/tool/private", ["n0", f"r{old.domid}"])
    destroy_domain(Privcmd(host.xen), old.domid)
    settle(host)
    new_ring, new = raw_guest(host, xs, domid=old.domid)
    assert new.domid == old.domid
    assert error_of(request(new_ring, XS_READ, b"/tool/private\0")) == "EACCES"
    xs.write("/tool/private", "rewritten")                  # a newer generation...
    xs.write("/tool/private/child", "inherits")              # ...and a child of it
    assert error_of(request(new_ring, XS_READ, b"/tool/private\0")) == "EACCES"
    assert error_of(request(new_ring, XS_READ, b"/tool/private/child\0")) == "EACCES"


def test_a_commit_that_gives_a_node_to_a_domain_that_died_meanwhile_fails(host, xs):
    d, _ = guest(host, xs)
    tx = xs.transaction_start()
    xs.mkdir("/tool/t", tx)
    xs.set_perms("/tool/t", [f"n{d.domid}"], tx)
    destroy_domain(Privcmd(host.xen), d.domid)
    settle(host)
    with pytest.raises(XsError) as e:
        xs.transaction_end(tx)
    assert str(e.value) == "ENOMEM" and not xs.exists("/tool/t")


def test_set_target_accepts_dom0(host, xs):
    ring, d = raw_guest(host, xs)
    assert error_of(request(ring, XS_READ, b"/local/domain/0/name\0")) == "EACCES"
    xs.request(19, b"%d\0" b"0\0" % d.domid)
    assert request(ring, XS_READ, b"/local/domain/0/name\0").payload == b"Domain-0"
    xs.request(19, b"0\0%d\0" % d.domid)


def test_the_kernel_refuses_an_oversize_request_itself(host, xs):
    d, _ = guest(host, xs, workload=["xs-write data/x " + "y" * 5000, "xs-write data/y ok"])
    settle(host, 10)
    assert d.guest.xs_log == [("write", "data/x", "E2BIG"), ("write", "data/y", "OK")]


def test_a_snapshot_while_socket_clients_write(served):
    import socket
    import threading
    host, path = served
    stop = threading.Event()

    def writer():
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        i = 0
        while not stop.is_set():
            s.sendall(b"".join(HEADER.pack(XS_WRITE, i + j, 0, 12) + b"/snap/k%03d\0v" % ((i + j) % 1000)
                               for j in range(32)))
            got = b""
            while len(got) < 32 * 19:
                got += s.recv(65536)
            i += 32
        s.close()

    t = threading.Thread(target=writer)
    t.start()
    try:
        sizes = [len(host.snapshot()) for _ in range(40)]
    finally:
        stop.set()
        t.join(10)
    assert min(sizes) > 0 and host.servers[0].faults == []
