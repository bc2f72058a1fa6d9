"""The domain screen's data (xl/introspect.py), in process: every figure
held against the machine's own bytes and structures, and looking changes
nothing, not even the trace."""

from __future__ import annotations

import pytest

from hv.guest.netfront import Netfront
from hv.guest.ring import REQ_PROD, RSP_EVENT, get
from hv.public.grant_table import GTF_accept_transfer, GTF_transfer_committed
from hv.public.vcpu import RUNSTATE_blocked, RUNSTATE_offline, RUNSTATE_runnable, RUNSTATE_running
from tests.devices import device_host, guest, image, paused_guest, settle, vbd
from xl.device import Device
from xl.introspect import domain_detail, grant_flag_names
from xl.timeline import strip
from xl.toolstack import Toolstack, ToolstackError


def vif(n: int) -> Device:
    mac = f"00:16:3e:00:00:{n:02x}"
    return Device("vif", 0, 0, 0, back={"bridge": "xenbr0", "mac": mac, "ip": f"10.0.0.{n}",
                                        "handle": 0, "type": "vif", "script": "vif-bridge"},
                  front={"mac": mac, "handle": 0})


@pytest.fixture(scope="module")
def pinging(tmp_path_factory):
    """Two guests pinging across dom0's bridge, one of them writing a disk."""
    host, xs = device_host()
    b, _ = guest(host, xs, "pong", ["idle"], devices=[vif(2)])
    disk = image(tmp_path_factory.mktemp("disk"))
    a, _ = guest(host, xs, "ping", ["ping 10.0.0.2 -c 3 -i 100ms", "dd write xvda 256k", "idle"],
                 devices=[vif(1), vbd(disk)])
    settle(host, 600)
    yield host, Toolstack(host), a, b
    host.close()


def netfront(d) -> Netfront:
    return next(x for x in d.guest.buses[0].devices.values() if isinstance(x, Netfront))


def blkfront(d):
    return next(x for x in d.guest.buses[0].devices.values() if x.devclass == "vbd")


def by_class(detail: dict, devclass: str) -> dict:
    return next(dev for dev in detail["devices"] if dev["class"] == devclass)


def test_looking_changes_neither_the_machine_nor_its_trace(pinging):
    host, ts, a, _ = pinging
    seq, now, records = host.xen.trace.seq, host.now, len(host.xen.trace)
    for domain in (a.domid, "pong", 0):
        domain_detail(ts, domain)
    assert (host.xen.trace.seq, host.now, len(host.xen.trace)) == (seq, now, records)


def test_the_vif_channel_is_the_backends_other_end(pinging):
    host, ts, a, _ = pinging
    detail = domain_detail(ts, "ping")
    port = int(ts.xs.read(f"/local/domain/{a.domid}/device/vif/0/event-channel"))
    chan = next(e for e in detail["evtchns"] if e["port"] == port)
    assert (chan["kind"], chan["remote_dom"]) == ("interdomain", 0)
    # dom0's end of it is netback's port, and points back at the guest's.
    back = next(dev for dev in host.dom0.guest.buses[1].devices.values()
                if dev.nodename == f"backend/vif/{a.domid}/0")
    assert chan["remote_port"] == back.port
    dom0_end = next(e for e in domain_detail(ts, 0)["evtchns"] if e["port"] == back.port)
    assert (dom0_end["remote_dom"], dom0_end["remote_port"]) == (a.domid, port)
    assert by_class(detail, "vif")["evtchn"] == port
    assert by_class(detail, "vif")["backend_evtchn"] == back.port


def test_pending_and_mask_bits_are_the_shared_info_page(pinging):
    host, ts, a, _ = pinging
    d = host.xen.domains.get(a.domid)
    port = int(ts.xs.read(f"/local/domain/{a.domid}/device/vif/0/event-channel"))
    info = d.shared_info
    pending_at, mask_at = 2048 + (port >> 3), 2048 + 512 + (port >> 3)
    saved = info[pending_at], info[mask_at]
    try:
        info[pending_at] |= 1 << (port & 7)
        info[mask_at] |= 1 << (port & 7)
        chan = next(e for e in domain_detail(ts, a.domid)["evtchns"] if e["port"] == port)
        assert chan["pending"] and chan["masked"]
        info[pending_at], info[mask_at] = saved
        chan = next(e for e in domain_detail(ts, a.domid)["evtchns"] if e["port"] == port)
        assert not chan["pending"] and not chan["masked"]
    finally:
        info[pending_at], info[mask_at] = saved


def test_grant_entries_are_what_the_frontend_granted(pinging):
    host, ts, a, _ = pinging
    detail = domain_detail(ts, a.domid)
    front = netfront(a)
    entries = {e["ref"]: e for e in detail["grants"]["entries"]}
    for ref, pfn in ((front.tx_ref, front.tx_pfn), (front.rx_ref, front.rx_pfn)):
        e = entries[ref]
        assert e["flag_names"][0] == "permit_access" and e["domid"] == 0
        assert e["frame"] == a.guest.p2m_get(pfn)
        # netback maps both ring pages: Xen pinned them, dom0's maptrack says so.
        assert [m["domid"] for m in e["mapped_by"]] == [0] and e["mapped_by"][0]["how"] == "host rw"
        assert e["active"]["host_rw"] == 1 and "reading" in e["flag_names"]
    # Every posted receive buffer is granted writable to dom0, and not mapped (netback copies).
    for _req, (pfn, ref) in front.rx_posted.items():
        assert entries[ref]["flag_names"] == ["permit_access"]
        assert entries[ref]["frame"] == a.guest.p2m_get(pfn) and not entries[ref]["mapped_by"]
    # And nothing else: the console's and store's, the rings', the buffers',
    # the disk's ring and its persistent grants.
    granted = {0, 1, front.tx_ref, front.rx_ref, blkfront(a).ring_ref}
    granted |= {ref for _pfn, ref in front.rx_posted.values()}
    granted |= {ref for _pfn, ref in front.tx_inflight.values()}
    granted |= set(blkfront(a).pool_grants.values())
    assert set(entries) == granted


def test_ring_indices_are_the_page_and_each_ends_own(pinging):
    host, ts, a, _ = pinging
    detail = domain_detail(ts, a.domid)
    front = netfront(a)
    back = next(dev for dev in host.dom0.guest.buses[1].devices.values()
                if dev.nodename == f"backend/vif/{a.domid}/0")
    rings = {r["name"]: r for r in by_class(detail, "vif")["rings"]}
    for name, pfn in (("tx", front.tx_pfn), ("rx", front.rx_pfn)):
        page = a.guest.page(pfn, False)
        ring = rings[name]
        assert ring["req_prod"] == get(page, REQ_PROD) == getattr(front, name).prod_pvt
        assert ring["rsp_event"] == get(page, RSP_EVENT)
        assert ring["rsp_cons"] == getattr(front, name).cons
        assert ring["req_cons"] == getattr(back, name).cons
        assert ring["size"] == 256
    # Three pings went out; the receive ring holds the buffers posted ahead.
    assert rings["tx"]["req_prod"] >= 3
    assert rings["rx"]["req_prod"] - rings["rx"]["rsp_cons"] == len(front.rx_posted)
    disk = by_class(detail, "vbd")
    assert disk["state"] == "Connected" and disk["rings"][0]["size"] == 32
    assert disk["rings"][0]["req_prod"] == disk["rings"][0]["rsp_prod"] > 0    # all answered


def test_console_and_store_rings(pinging):
    host, ts, a, _ = pinging
    detail = domain_detail(ts, "ping")
    out = by_class(detail, "console")["rings"][0]
    assert out["name"] == "out" and out["prod"] >= len("PING 10.0.0.2")
    assert out["prod"] == out["cons"]                 # xenconsoled read it all
    store = by_class(detail, "xenstore")
    assert store["evtchn"] == int(ts.xs.read(f"/local/domain/{a.domid}/store/port"))
    assert store["rings"][0]["prod"] > 0 and store["rings"][1]["prod"] > 0


def test_vcpus_memory_and_timeline(pinging):
    host, ts, a, _ = pinging
    detail = domain_detail(ts, "ping", cells=30, cell_ns=20_000_000)
    (v,) = detail["vcpus"]
    assert v["state"] == "blocked" and v["priority"] in ("UNDER", "OVER", "BOOST")
    assert v["weight"] == 256 and v["cap"] == 0
    assert sum(v["runstate_ns"].values()) == host.now - a.created_at
    assert v["runstate_ns"]["running"] > 0 and v["runstate_ns"]["blocked"] > 0
    assert len(v["timeline"]) == 30 and set(v["timeline"]) <= set("R+rbo ")
    assert "+" in v["timeline"] and "b" in v["timeline"]
    assert detail["memory"] == {"current_kib": a.tot_pages * 4, "max_kib": a.max_pages * 4,
                                "target_kib": 32 * 1024, "static_max_kib": 32 * 1024}


def test_a_paused_guest_never_run_is_offline_all_along():
    host, xs = device_host()
    d, _ = paused_guest(host, xs, "still")
    settle(host, 100)
    detail = domain_detail(Toolstack(host), "still", cells=10, cell_ns=5_000_000)
    assert detail["paused"] and detail["state"][2] == "p"
    assert detail["vcpus"][0]["timeline"] == "o" * 10
    host.close()


def test_strip_shows_each_cells_most_and_marks_short_runs():
    changes = [(0, RUNSTATE_offline), (100, RUNSTATE_running), (101, RUNSTATE_blocked)]
    # Cells of 60 ns from 0: the second is mostly offline, with one ns of running.
    assert strip(changes, (RUNSTATE_blocked, 101), 0, 4, 60) == "o+bb"
    # Before anything is known: blank.
    assert strip(changes[1:], (RUNSTATE_blocked, 101), 0, 4, 60) == " +bb"
    # The vCPU's own present state overrides what was inferred after it.
    assert strip(changes, (RUNSTATE_running, 90), 0, 4, 60) == "oRRR"
    # A cell run for most of it is running.
    assert strip([(0, RUNSTATE_runnable), (10, RUNSTATE_running)], (RUNSTATE_running, 10),
                 0, 2, 60) == "RR"


def test_grant_flags_by_name():
    assert grant_flag_names(0x19) == ["permit_access", "reading", "writing"]
    assert grant_flag_names(0x05) == ["permit_access", "readonly"]
    assert grant_flag_names(GTF_accept_transfer | GTF_transfer_committed) == \
        ["accept_transfer", "transfer_committed"]
    assert grant_flag_names(0) == ["invalid"]


def test_a_domain_that_is_not_there(pinging):
    _, ts, _, _ = pinging
    for bad in ("nosuch", 999):
        with pytest.raises(ToolstackError, match="invalid domain identifier"):
            domain_detail(ts, bad)
    with pytest.raises(ToolstackError, match="timeline"):
        domain_detail(ts, 0, cells=0)
