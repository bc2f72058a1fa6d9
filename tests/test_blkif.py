"""The block device end to end: blkfront in a guest, blkback in dom0 over a
real image file, meeting through xenstore, a granted ring and an event
channel; and what a frontend that breaks the rules gets."""

from __future__ import annotations

import os
import resource
import signal
from dataclasses import replace

import pytest

from hv.guest.blkfront import Blkfront, devid_to_name, pattern
from hv.guest.ring import REQ_PROD, RSP_PROD, get
from hv.public.grant_table import GNTTAB_RESERVED_CONSOLE, GNTTAB_RESERVED_XENSTORE
from hv.public.io.blkif import (
    BLKIF_OP_DISCARD, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR,
    BLKIF_RSP_OKAY, DISCARD, REQUEST_HEAD, RESPONSE, SEGMENT, SLOT_SIZE,
)
from hv.public.io.xenbus import XenbusStateClosed, XenbusStateConnected
from hv.xen.audit import audit
from hv.xen.hypervisor import MiB
from tests.devices import console, device_host, guest, image, paused_guest, settle, vbd
from xl.device import backend_closed, device_add, device_destroy, device_request_close
from xl.dombuild import destroy_domain
from xl.privcmd import Privcmd


@pytest.fixture
def machine():
    return device_host()


def frontend(d) -> Blkfront:
    (dev,) = [x for x in d.guest.buses[0].devices.values() if isinstance(x, Blkfront)]
    return dev


def backend(host, d):
    return next(x for x in host.dom0.guest.buses[1].devices.values()
                if x.otherend_id == d.domid)


def read_node(xs, path) -> str:
    return xs.read(path).decode()


# ----------------------------------------------------------------- naming
@pytest.mark.parametrize("devid, name", [
    (51712, "xvda"), (51728, "xvdb"), (51713, "xvda1"), (51967, "xvdp15"),
    ((1 << 28) | (16 << 8), "xvdq"), ((1 << 28) | (26 << 8) | 2, "xvdaa2"),
    (768, "hda"), (832, "hdb"), (5632, "hdc"), (2048, "sda"), (2065, "sdb1"),
])
def test_virtual_device_numbers_name_disks_as_linux_does(devid, name):
    assert devid_to_name(devid) == name


# ----------------------------------------------------------------- handshake
def test_both_ends_meet_through_xenstore_and_reach_connected(machine, tmp_path):
    host, xs = machine
    path = image(tmp_path, size=8 * MiB)
    d, _ = guest(host, xs, "disky", ["idle"], [vbd(path)])
    settle(host)
    fe = f"/local/domain/{d.domid}/device/vbd/51712"
    be = f"/local/domain/0/backend/vbd/{d.domid}/51712"
    assert int(read_node(xs, f"{fe}/state")) == XenbusStateConnected
    assert int(read_node(xs, f"{be}/state")) == XenbusStateConnected
    # What the backend published, and what the frontend did.
    assert read_node(xs, f"{be}/sectors") == str(8 * MiB // 512)
    assert read_node(xs, f"{be}/sector-size") == "512"
    assert read_node(xs, f"{be}/info") == "0"
    assert read_node(xs, f"{be}/feature-flush-cache") == "1"
    assert read_node(xs, f"{be}/feature-max-indirect-segments") == "256"
    assert read_node(xs, f"{fe}/protocol") == "x86_64-abi"
    dev = frontend(d)
    assert int(read_node(xs, f"{fe}/ring-ref")) == dev.ring_ref
    assert int(read_node(xs, f"{fe}/event-channel")) == dev.port
    # The ring page really is granted to dom0, and dom0 maps it.
    flags, domid, frame = d.guest.gnttab.entry(dev.ring_ref)
    assert (domid, frame) == (0, d.guest.p2m_get(dev.ring_pfn))
    assert flags & 0x3 == 1                               # GTF_permit_access
    assert flags & 0x18                                   # GTF_reading/writing: mapped
    # The states each end went through, in order (io/blkif.h's drawing).
    states = [(r.domid, r.result) for r in host.xen.trace if r.kind == "device" and r.name == "state"]
    assert states == [(0, "InitWait"), (d.domid, "Initialised"), (0, "Connected"),
                      (d.domid, "Connected")]


def test_a_backend_that_cannot_open_its_file_says_why_and_closes(machine, tmp_path):
    host, xs = machine
    d, built = guest(host, xs, "nofile", ["dd read xvda 4k"], [vbd(str(tmp_path / "missing.raw"))])
    settle(host)
    be = f"/local/domain/0/backend/vbd/{d.domid}/51712"
    assert "No such file or directory" in read_node(xs, f"/local/domain/0/error/backend/vbd/{d.domid}/51712/error")
    assert int(read_node(xs, f"{be}/state")) == XenbusStateClosed
    assert "dd: xvda: the backend closed the device" in console(host, built)


# ----------------------------------------------------------------- data
def test_dd_writes_the_pattern_into_the_image_file_and_verifies_it(machine, tmp_path):
    host, xs = machine
    path = image(tmp_path, size=8 * MiB)
    d, built = guest(host, xs, "writer", ["dd write xvda 4M", "flush xvda", "dd verify xvda 4M"],
                     [vbd(path)])
    settle(host, 200)
    out = console(host, built)
    assert "4194304 bytes (4.2 MB, 4.0 MiB) copied" in out
    assert "flush xvda: ok" in out
    assert out.rstrip().endswith("verify ok")
    # What was acknowledged is in the file, sector by sector.
    data = open(path, "rb").read()
    for sector in (0, 1, 4095, 8191):
        assert data[sector * 512:(sector + 1) * 512] == pattern("writer", sector)
    assert data[8192 * 512:8193 * 512] == bytes(512)          # beyond 4 MiB: untouched
    stats = backend(host, d).stats
    assert stats["wr_sect"] == stats["rd_sect"] == 8192
    assert stats["f_req"] == 1 and stats["errors"] == 0


def test_verify_names_the_first_sector_that_is_wrong(machine, tmp_path):
    host, xs = machine
    path = image(tmp_path)
    _, built = guest(host, xs, "checker", ["dd write xvda 1M", "sleep 100ms", "dd verify xvda 1M"],
                     [vbd(path)])
    settle(host, 50)
    with open(path, "r+b") as f:            # the disk changes under the guest
        f.seek(777 * 512 + 100)
        f.write(b"X")
    settle(host, 200)
    assert "verify failed: first bad sector 777" in console(host, built)


def test_a_pattern_written_by_one_domain_does_not_verify_in_another(machine, tmp_path):
    host, xs = machine
    path = image(tmp_path)
    _, first = guest(host, xs, "alpha", ["dd write xvda 64k"], [vbd(path)])
    settle(host)
    _, second = guest(host, xs, "beta", ["dd verify xvda 64k"], [vbd(path, mode="r")])
    settle(host)
    assert "verify failed: first bad sector 0" in console(host, second)


@pytest.mark.parametrize("bs", ["4k", "44k", "128k"])
def test_request_sizes_direct_and_indirect_move_the_same_bytes(machine, tmp_path, bs):
    host, xs = machine
    path = image(tmp_path)
    d, built = guest(host, xs, "sizes", [f"dd write xvda 1M bs={bs}", f"dd verify xvda 1M bs={bs}"],
                     [vbd(path)])
    settle(host, 100)
    assert "verify ok" in console(host, built)
    per_request = {"4k": 1, "44k": 11, "128k": 32}[bs]
    requests = -(-256 // per_request)
    assert backend(host, d).stats["wr_req"] == requests


def test_without_persistent_grants_each_request_is_granted_and_revoked(machine, tmp_path):
    host, xs = machine
    path = image(tmp_path)
    d, built = guest(host, xs, "fresh", ["dd write xvda 256k", "dd verify xvda 256k"], [vbd(path)],
                     cmdline="xen_blkfront.feature_persistent=0")
    settle(host, 100)
    assert "verify ok" in console(host, built)
    be = backend(host, d)
    assert not be.persistent and not be.pgrants
    maps = [r for r in host.xen.trace if r.domid == 0 and r.name == "grant_table_op:map_grant_ref"
            and r.args[1][0].ref not in (GNTTAB_RESERVED_XENSTORE, GNTTAB_RESERVED_CONSOLE)]
    unmaps = [r for r in host.xen.trace if r.domid == 0 and r.name == "grant_table_op:unmap_grant_ref"]
    assert len(maps) == len(unmaps) + 1             # everything but the ring came and went
    # Only the ring's grant is left in the guest's table.
    dev = frontend(d)
    live = [ref for ref in range(8, dev.k.gnttab.nr_entries) if dev.k.gnttab.flags(ref)]
    assert live == [dev.ring_ref]


def test_a_read_only_disk_refuses_writes(machine, tmp_path):
    host, xs = machine
    path = image(tmp_path)
    d, built = guest(host, xs, "ro", ["dd write xvda 4k", "dd read xvda 4k"], [vbd(path, mode="r")])
    settle(host)
    out = console(host, built)
    assert "dd: xvda: Read-only file system" in out
    assert "4096 bytes (4.1 kB, 4.0 KiB) copied" in out
    assert read_node(xs, f"/local/domain/0/backend/vbd/{d.domid}/51712/info") == "4"
    # A frontend that writes anyway gets BLKIF_RSP_ERROR, and the file is untouched.
    assert raw_requests(host, d, [write_request(d, 9, 0)]) == [(9, BLKIF_OP_WRITE, BLKIF_RSP_ERROR)]
    assert open(path, "rb").read() == bytes(8 * MiB)


# ----------------------------------------------------------------- a frontend that lies
def raw_requests(host, d, entries: list[bytes]) -> list[tuple[int, int, int]]:
    """Put ``entries`` on the ring as the guest, notify, and return the
    responses (id, op, status) that came back."""
    dev = frontend(d)
    k = dev.k
    page = k.page(dev.ring_pfn)
    v = d.vcpus[0]
    seen = dev.ring.cons
    for entry in entries:
        dev.ring.produce(page, entry)
    dev.ring.push(page)
    k.irqs.pop(dev.port)                # the guest's driver looks away: we read
    k.notify(v, dev.port)
    settle(host, 5)
    k.irqs[dev.port] = dev
    out = []
    while dev.ring.unconsumed(page):
        out.append(RESPONSE.unpack_from(dev.ring.consume(page)))
    assert dev.ring.cons - seen == len(out)
    return out


def write_request(d, req_id: int, sector: int, gref: int | None = None, first=0, last=7,
                  op=BLKIF_OP_WRITE, nseg=1) -> bytes:
    dev = frontend(d)
    if gref is None:
        (pfn,) = dev.k.alloc_pages(1)
        gref = dev.k.grant_access(d.vcpus[0], 0, pfn, readonly=False)
    entry = bytearray(SLOT_SIZE)
    REQUEST_HEAD.pack_into(entry, 0, op, nseg, 51712, req_id, sector)
    for i in range(min(nseg, 11)):
        SEGMENT.pack_into(entry, REQUEST_HEAD.size + 8 * i, gref, first, last)
    return bytes(entry)


def test_bad_requests_are_answered_with_the_protocols_errors(machine, tmp_path):
    host, xs = machine
    path = image(tmp_path, size=1 * MiB)
    d, _ = guest(host, xs, "liar", ["idle"], [vbd(path)])
    settle(host)
    discard = bytearray(SLOT_SIZE)
    DISCARD.pack_into(discard, 0, BLKIF_OP_DISCARD, 0, 51712, 7, 2040, 100)
    replies = raw_requests(host, d, [
        write_request(d, 1, 0, gref=4000),                  # a grant it never made
        write_request(d, 2, 0, first=3, last=1),            # sectors backwards
        write_request(d, 3, 0, last=8),                     # past the page
        write_request(d, 4, 2047, last=1),                  # past the disk's end
        write_request(d, 5, 0, nseg=0),                     # no segments
        write_request(d, 6, 0, nseg=12),                    # more than 11
        bytes(discard),                                     # discard past the end
        write_request(d, 8, 0, op=42),                      # no such operation
        write_request(d, 9, 0, op=BLKIF_OP_READ),           # and a good one after all that
    ])
    assert replies == [(1, 1, BLKIF_RSP_ERROR), (2, 1, BLKIF_RSP_ERROR), (3, 1, BLKIF_RSP_ERROR),
                       (4, 1, BLKIF_RSP_ERROR), (5, 1, BLKIF_RSP_ERROR), (6, 1, BLKIF_RSP_ERROR),
                       (7, BLKIF_OP_DISCARD, BLKIF_RSP_ERROR), (8, 42, BLKIF_RSP_EOPNOTSUPP),
                       (9, BLKIF_OP_READ, BLKIF_RSP_OKAY)]
    assert open(path, "rb").read() == bytes(1 * MiB)
    assert backend(host, d).stats["errors"] == 7


def test_ring_indices_past_the_ring_cost_only_that_device(machine, tmp_path):
    host, xs = machine
    liar, _ = guest(host, xs, "liar", ["idle"], [vbd(image(tmp_path, "a.raw"))])
    _, honest = guest(host, xs, "honest", ["sleep 20ms", "dd write xvda 1M", "dd verify xvda 1M"],
                      [vbd(image(tmp_path, "b.raw"))])
    settle(host, 10)
    dev = frontend(liar)
    page = dev.k.page(dev.ring_pfn)
    # Claim 1000 requests in a 32-slot ring.
    page[REQ_PROD:REQ_PROD + 4] = ((get(page, REQ_PROD) + 1000) & 0xFFFFFFFF).to_bytes(4, "little")
    dev.k.notify(liar.vcpus[0], dev.port)
    settle(host, 200)
    be = backend(host, liar)
    assert be.broken and be.stats["rd_req"] == be.stats["wr_req"] == 0
    assert "verify ok" in console(host, honest)             # the other disk works on
    assert audit(host.xen) == []
    # Its later notifications are ignored: nothing is read from that ring.
    dev.k.notify(liar.vcpus[0], dev.port)
    settle(host, 5)
    assert be.ring.cons == 0


def test_a_flood_of_bad_requests_is_answered_and_others_keep_going(machine, tmp_path):
    host, xs = machine
    flooder, _ = guest(host, xs, "flood", ["idle"], [vbd(image(tmp_path, "a.raw"))])
    _, other = guest(host, xs, "other", ["dd write xvda 2M", "dd verify xvda 2M"],
                     [vbd(image(tmp_path, "b.raw"))])
    settle(host, 5)
    for round_ in range(20):
        replies = raw_requests(host, flooder, [write_request(flooder, i, 0, gref=5000)
                                               for i in range(32)])
        assert [r[2] for r in replies] == [BLKIF_RSP_ERROR] * 32
    settle(host, 100)
    assert "verify ok" in console(host, other)


# ----------------------------------------------------------------- teardown
def released(host, d, be) -> None:
    """Nothing of the device is left at either end."""
    assert be.ring_handle < 0 and not be.pgrants and not be.port
    # xenstored's mapping of the store page and xenconsoled's of the console
    # page (the reserved refs) are all dom0 holds.
    assert sorted(m.ref for m in host.dom0.grant_table.maptrack.values()
                  if m.flags and m.domid == d.domid) in (
        [], sorted((GNTTAB_RESERVED_CONSOLE, GNTTAB_RESERVED_XENSTORE)))


def test_detach_walks_both_ends_to_closed_and_releases_everything(machine, tmp_path):
    host, xs = machine
    path = image(tmp_path)
    dev_spec = vbd(path)
    d, built = guest(host, xs, "detach", ["dd write xvda 64k"], [dev_spec])
    settle(host)
    be = backend(host, d)
    fe = frontend(d)
    spec = dev_spec.__class__(**{**dev_spec.__dict__, "domid": d.domid})
    device_request_close(xs, spec)
    settle(host)
    assert backend_closed(xs, spec)
    assert int(read_node(xs, f"{spec.frontend_path}/state")) == XenbusStateClosed
    device_destroy(xs, spec)
    settle(host)
    released(host, d, be)
    assert fe.port == 0 and fe.ring_ref == -1 and not fe.pool_grants
    assert not d.guest.buses[0].devices and not host.dom0.guest.buses[1].devices
    gt = d.guest.gnttab
    assert [ref for ref in range(8, gt.nr_entries) if gt.flags(ref)] == []
    assert be.fd == -1


def test_a_dead_guests_disk_lets_go_of_it_and_the_domain_goes(machine, tmp_path):
    host, xs = machine
    d, built = guest(host, xs, "doomed", ["dd write xvda 64k"], [vbd(image(tmp_path))])
    settle(host)
    be = backend(host, d)
    domid = d.domid
    # The toolstack destroys the domain without tidying its devices first:
    # xenstored removes the dead domain's nodes, the backend sees its
    # frontend go, and lets go of the ring and the grants.
    destroy_domain(Privcmd(host.xen), domid)
    settle(host)
    released(host, d, be)
    assert host.xen.domains.get(domid) is None            # not kept alive by a mapping
    be_path = f"/local/domain/0/backend/vbd/{domid}/51712"
    device_destroy(xs, vbd("").__class__("vbd", domid, 51712))
    assert not xs.exists(be_path)
    settle(host)
    assert not host.dom0.guest.buses[1].devices


# ----------------------------------------------------------------- what a hostile guest can't do
@pytest.mark.parametrize("ring_ref, port", [("-1", "5"), ("4294967296", "5"), ("1", "-1"),
                                            ("1", "4294967296"), ("x", "5")])
def test_a_ring_ref_or_port_that_cannot_be_one_fails_only_that_disk(machine, tmp_path, ring_ref, port):
    host, xs = machine
    d, _ = paused_guest(host, xs, "liar", [vbd(image(tmp_path))])
    settle(host, 20)
    fe = f"/local/domain/{d.domid}/device/vbd/51712"
    xs.write(f"{fe}/ring-ref", ring_ref)
    xs.write(f"{fe}/event-channel", port)
    xs.write(f"{fe}/state", "3")
    settle(host, 20)
    error = read_node(xs, f"/local/domain/0/error/backend/vbd/{d.domid}/51712/error")
    assert "out of range" in error or "reading ring-ref" in error
    assert backend(host, d).state == 5 and backend(host, d).ring_handle < 0
    assert audit(host.xen) == []


def test_a_request_with_one_bad_segment_leaks_no_mapping(machine, tmp_path):
    host, xs = machine
    d, _ = guest(host, xs, "leaky", ["idle"], [vbd(image(tmp_path))])
    settle(host)
    be, fe = backend(host, d), frontend(d)
    v = d.vcpus[0]
    grefs = [fe.k.grant_access(v, 0, fe.k.alloc_pages(1)[0], readonly=False) for _ in range(2)]
    entry = bytearray(SLOT_SIZE)
    REQUEST_HEAD.pack_into(entry, 0, BLKIF_OP_WRITE, 3, 51712, 77, 0)
    for i, gref in enumerate([grefs[0], 4000, grefs[1]]):
        SEGMENT.pack_into(entry, REQUEST_HEAD.size + 8 * i, gref, 0, 7)
    assert raw_requests(host, d, [bytes(entry)]) == [(77, BLKIF_OP_WRITE, BLKIF_RSP_ERROR)]
    assert set(grefs) <= set(be.pgrants)          # what did map is kept, and so unmapped later
    domid = d.domid
    destroy_domain(Privcmd(host.xen), domid, xs)
    settle(host)
    assert host.xen.domains.get(domid) is None
    assert not [m for m in host.dom0.grant_table.maptrack.values() if m.flags and m.domid == domid]


def test_the_hosts_disk_saying_no_is_the_requests_error(machine, tmp_path):
    host, xs = machine
    path = image(tmp_path)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, old_limit[1]))
    try:
        d, built = guest(host, xs, "writer", ["dd write xvda 4M"], [vbd(path)])
        settle(host, 300)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    assert "dd: xvda: I/O error at sector" in console(host, built)
    assert backend(host, d).stats["errors"] >= 1


def test_discard_gives_the_files_blocks_back_at_once(machine, tmp_path):
    host, xs = machine
    path = image(tmp_path, size=64 * MiB)
    d, _ = guest(host, xs, "trim", ["dd write xvda 8M"], [vbd(path)])
    settle(host, 200)
    before = os.stat(path).st_blocks
    discard = bytearray(SLOT_SIZE)
    DISCARD.pack_into(discard, 0, BLKIF_OP_DISCARD, 0, 51712, 3, 0, 16384)
    assert raw_requests(host, d, [bytes(discard)]) == [(3, BLKIF_OP_DISCARD, BLKIF_RSP_OKAY)]
    assert os.stat(path).st_blocks < before // 4
    assert open(path, "rb").read(8 * MiB) == bytes(8 * MiB)


def test_a_flush_carrying_data_writes_it_before_flushing(machine, tmp_path):
    host, xs = machine
    path = image(tmp_path)
    d, _ = guest(host, xs, "fua", ["idle"], [vbd(path)])
    settle(host)
    fe = frontend(d)
    (pfn,) = fe.k.alloc_pages(1)
    fe.k.page(pfn)[:4096] = b"F" * 4096
    # With persistent grants every page is granted writable.
    gref = fe.k.grant_access(d.vcpus[0], 0, pfn, readonly=False)
    entry = bytearray(SLOT_SIZE)
    REQUEST_HEAD.pack_into(entry, 0, BLKIF_OP_FLUSH_DISKCACHE, 1, 51712, 5, 16)
    SEGMENT.pack_into(entry, REQUEST_HEAD.size, gref, 0, 7)
    assert raw_requests(host, d, [bytes(entry)]) == [(5, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_RSP_OKAY)]
    assert open(path, "rb").read()[16 * 512:16 * 512 + 4096] == b"F" * 4096


def test_a_backend_whose_responses_run_past_the_ring_loses_the_disk_not_the_guest(machine, tmp_path):
    host, xs = machine
    d, built = guest(host, xs, "victim", ["sleep 20ms", "dd read xvda 4k", "echo still here"],
                     [vbd(image(tmp_path))])
    settle(host, 10)
    fe = frontend(d)
    page = fe.k.page(fe.ring_pfn)
    page[RSP_PROD:RSP_PROD + 4] = ((fe.ring.cons + (1 << 31)) & 0xFFFFFFFF).to_bytes(4, "little")
    fe.interrupt(d.vcpus[0], fe.port)                   # as if the backend had notified
    settle(host, 50)
    out = console(host, built)
    assert "the backend's response producer ran past the ring" in read_node(
        xs, f"/local/domain/{d.domid}/error/device/vbd/51712/error")
    assert "dd: xvda:" in out and "still here" in out


def test_a_guest_out_of_memory_for_a_new_disk_fails_that_disk(machine, tmp_path):
    host, xs = machine
    d, built = guest(host, xs, "small", ["balloon 1M", "idle"], memory_mib=8)
    settle(host, 100)
    device_add(xs, replace(vbd(image(tmp_path)), domid=d.domid))
    settle(host, 100)
    assert "out of memory" in read_node(xs, f"/local/domain/{d.domid}/error/device/vbd/51712/error")
    assert not d.is_dying


def test_a_frontend_that_closes_and_starts_again_reconnects(machine, tmp_path):
    host, xs = machine
    path = image(tmp_path)
    d, built = guest(host, xs, "reload", ["sleep 200ms", "dd write xvda 64k", "dd verify xvda 64k"],
                     [vbd(path)])
    settle(host, 20)
    fe, be = frontend(d), backend(host, d)
    v = d.vcpus[0]
    fe.switch_state(v, 5)                       # the guest unloads its driver: Closing
    settle(host, 20)
    assert (fe.state, be.state) == (XenbusStateClosed, XenbusStateClosed)
    assert be.ring_handle < 0 and fe.ring_ref == -1
    fe.failed = ""
    fe.switch_state(v, 1)                       # and loads it again: Initialising
    settle(host, 20)
    assert (fe.state, be.state) == (XenbusStateConnected, XenbusStateConnected)
    settle(host, 300)
    assert console(host, built).rstrip().endswith("verify ok")
    names = [r.name for r in host.xen.trace if r.kind == "device" and r.domid == 0]
    assert "reconnect" in names


def test_a_grant_still_mapped_is_revoked_once_let_go_even_with_the_store_quiet(machine, tmp_path):
    host, xs = machine
    d, _ = guest(host, xs, "patient", ["idle"], [vbd(image(tmp_path))])
    settle(host)
    k, v = d.guest, d.vcpus[0]
    (pfn,) = k.alloc_pages(1)
    ref = k.grant_access(v, 0, pfn, readonly=False)
    ((status, handle, _mfn),) = host.dom0.guest.map_grants(host.dom0.vcpus[0], d.domid, (ref,), False)
    assert status == 0
    k.end_access(v, ref, pfn)                     # mapped by dom0: deferred
    assert (ref, pfn) in k.deferred_grants and pfn in k.allocated
    host.dom0.guest.unmap_grants(host.dom0.vcpus[0], [handle])
    settle(host, 1500)                            # no store traffic: the timer retries
    assert k.deferred_grants == [] and pfn not in k.allocated
    assert k.gnttab.flags(ref) == 0
