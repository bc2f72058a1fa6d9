"""The network device end to end: netfront in guests, netback and its
bridge in dom0, frames moving by grant copy and by page flipping; the
backend's duties (shaping, anti-spoofing, logging, counters, drops); and a
frontend that breaks the rules."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from hv.guest.ether import build_ethernet, build_ipv4, build_tcp, mac_from_str
from hv.guest.netfront import Netfront
from hv.guest.pcap import read_pcap
from hv.guest.ring import REQ_PROD, RSP_PROD, get
from hv.public.io.netif import NETIF_RSP_DROPPED, NETIF_RSP_ERROR, TX_REQUEST, TX_RESPONSE
from hv.public.io.xenbus import XenbusStateConnected
from hv.xen.audit import audit
from tests.devices import console, device_host, guest, paused_guest, settle
from xl.device import Device, device_destroy
from xl.dombuild import destroy_domain
from xl.privcmd import Privcmd

BROADCAST = b"\xff" * 6


def vif(n: int, bridge: str = "xenbr0", **back) -> Device:
    mac = f"00:16:3e:00:00:{n:02x}"
    nodes = {"bridge": bridge, "mac": mac, "ip": f"10.0.0.{n}", "handle": 0, "type": "vif",
             "script": "vif-bridge"}
    nodes.update(back)
    return Device("vif", 0, 0, 0, back=nodes, front={"mac": mac, "handle": 0})


@pytest.fixture
def machine():
    return device_host()


def netfront(d) -> Netfront:
    return next(x for x in d.guest.buses[0].devices.values() if isinstance(x, Netfront))


def netback(host, d):
    return host.dom0.guest.network.vifs[f"vif{d.domid}.0"]


def pair(host, xs, a_workload, b_workload=("idle",), b_cmdline="", a_back=None):
    a, ba = guest(host, xs, "alpha", ["sleep 10ms", *a_workload], [vif(1, **(a_back or {}))])
    b, bb = guest(host, xs, "beta", list(b_workload), [vif(2)], cmdline=b_cmdline)
    return a, ba, b, bb


# ----------------------------------------------------------------- handshake
def test_a_vif_connects_and_is_on_its_bridge(machine):
    host, xs = machine
    d, _ = guest(host, xs, "net", ["idle"], [vif(1)])
    settle(host, 5)
    fe = f"/local/domain/{d.domid}/device/vif/0"
    be = f"/local/domain/0/backend/vif/{d.domid}/0"
    assert int(xs.read(f"{fe}/state")) == int(xs.read(f"{be}/state")) == XenbusStateConnected
    assert xs.read(f"{be}/feature-rx-copy") == b"1" and xs.read(f"{be}/feature-rx-flip") == b"1"
    assert xs.read(f"{fe}/request-rx-copy") == b"1"
    assert xs.read(f"{be}/hotplug-status") == b"connected"
    dev = netfront(d)
    assert int(xs.read(f"{fe}/tx-ring-ref")) == dev.tx_ref
    assert int(xs.read(f"{fe}/event-channel")) == dev.port
    assert dev.stack.ip == "10.0.0.1" and dev.stack.mac == mac_from_str("00:16:3e:00:00:01")
    assert "vif1.0" in host.dom0.guest.network.bridge("xenbr0").ports
    assert len(dev.rx_posted) == 64                     # receive buffers posted ahead


# ----------------------------------------------------------------- ping
@pytest.mark.parametrize("b_cmdline, mode", [("", "copy"), ("xen_netfront.rx_flip=1", "flip")])
def test_ping_across_the_bridge(machine, b_cmdline, mode):
    host, xs = machine
    a, ba, b, bb = pair(host, xs, ["ping 10.0.0.2 -c 5 -i 0.2"], b_cmdline=b_cmdline)
    settle(host, 1500)
    out = console(host, ba)
    assert "PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data." in out
    for seq in range(1, 6):
        assert f"64 bytes from 10.0.0.2: icmp_seq={seq} ttl=64 time=" in out
    assert "5 packets transmitted, 5 received, 0% packet loss, time 800ms" in out
    assert "rtt min/avg/max/mdev = " in out
    assert netfront(b).flip == (mode == "flip")
    assert host.xen.domains.get(0).guest.network.vifs["vif2.0"].rx_copy == (mode == "copy")
    transfers = [r for r in host.xen.trace if r.name == "grant_table_op:transfer"]
    copies_to_b = [r for r in host.xen.trace if r.name == "grant_table_op:copy"
                   and r.args[1][0].dest.domid == b.domid]
    if mode == "flip":
        # Every frame beta got was a page dom0 gave away, and beta stays
        # within its reservation: it gave a frame back for each first.
        assert len(transfers) == netback(host, b).stats["rx_packets"] == 6
        assert not copies_to_b
        assert b.tot_pages <= b.max_pages
    else:
        assert not transfers and len(copies_to_b) == 6
    stats_a, stats_b = netback(host, a).stats, netback(host, b).stats
    assert stats_a["tx_packets"] == stats_b["rx_packets"] == 6      # ARP + 5 echo requests
    assert stats_b["tx_packets"] == stats_a["rx_packets"] == 6
    assert stats_a["tx_bytes"] == stats_b["rx_bytes"]
    assert audit(host.xen) == []


def test_a_flipping_guests_pages_really_change_hands(machine):
    host, xs = machine
    a, ba, b, bb = pair(host, xs, ["ping 10.0.0.2 -c 2 -i 0.1"], b_cmdline="xen_netfront.rx_flip=1")
    dom0_pages = host.dom0.tot_pages
    settle(host, 600)
    given = [r.args[1][0].mfn for r in host.xen.trace if r.name == "grant_table_op:transfer"]
    assert given
    # Each became beta's: beta read its frame and then gave that very
    # frame back to Xen to post the buffer again, as flipping asks.
    returned = {mfn for r in host.xen.trace if r.domid == b.domid
                and r.name == "memory_op:decrease_reservation" for mfn in r.args[1].extent_start}
    assert set(given) <= returned
    assert host.dom0.tot_pages == dom0_pages                   # dom0 got replacements


def test_pinging_nobody_reports_full_loss(machine):
    host, xs = machine
    _, built = guest(host, xs, "lonely", ["ping 10.0.0.9 -c 2 -i 0.1"], [vif(1)])
    settle(host, 5000)
    assert "2 packets transmitted, 0 received, 100% packet loss" in console(host, built)


# ----------------------------------------------------------------- UDP
def test_udp_sender_and_echo_server_report_throughput(machine):
    host, xs = machine
    a, ba, b, bb = pair(host, xs, ["udp-send 10.0.0.2 9000 500 256"], b_workload=["udp-echo 9000 500"])
    settle(host, 3000)
    sent = console(host, ba)
    assert "udp-send: 500 datagrams of 256 bytes to 10.0.0.2:9000 in " in sent
    assert "500 came back" in sent
    assert "udp-echo: 500 datagrams echoed on port 9000 in " in console(host, bb)
    assert netback(host, b).stats["rx_packets"] >= 500


# ----------------------------------------------------------------- the backend's duties
def test_a_rate_limited_vif_is_held_to_its_rate(machine):
    host, xs = machine
    # rate=80Kb/s@10ms: 100 bytes each 10 ms; 20 datagrams of 298-byte frames.
    a, ba, b, bb = pair(host, xs, ["udp-send 10.0.0.2 9000 20 256"], b_workload=["udp-echo 9000 20"],
                        a_back={"rate": "100,10000"})
    settle(host, 5000)
    out = console(host, ba)
    secs = float(out.split(" in ")[1].split(" s:")[0])
    # 20 frames of 298 bytes need about 20 * 298 / 100 intervals of 10 ms.
    assert 0.5 <= secs <= 0.7
    assert "udp-echo: 20 datagrams echoed" in console(host, bb)


def test_anti_spoofing_drops_frames_from_addresses_not_the_vifs(machine):
    host, xs = machine
    a, ba, b, bb = pair(host, xs, [])
    settle(host, 20)
    netfront(a).stack.set_ip("10.0.0.66")          # the guest lies about who it is
    d_stats = netback(host, a).stats
    front = netfront(a)
    v = a.vcpus[0]
    front.send(v, front.stack.send_echo("10.0.0.2", 1, 1, b"x" * 8, 0))
    settle(host, 20)
    assert d_stats["tx_dropped"] >= 1
    assert netback(host, b).stats["rx_packets"] == 0
    spoofed = [r for r in host.xen.trace if r.kind == "device" and r.name == "spoofed"]
    assert spoofed and "10.0.0.66" in spoofed[0].result


def test_anti_spoofing_can_be_switched_off(machine):
    host, xs = machine
    a, ba, b, bb = pair(host, xs, [], a_back={"anti-spoof": "0"})
    settle(host, 20)
    netfront(a).stack.set_ip("10.0.0.66")
    front = netfront(a)
    front.send(a.vcpus[0], front.stack.send_echo("10.0.0.2", 1, 1, b"x" * 8, 0))
    settle(host, 20)
    assert netback(host, a).stats["tx_dropped"] == 0
    assert netback(host, b).stats["rx_packets"] >= 1


def test_a_logging_rule_logs_tcp_syns(machine):
    host, xs = machine
    a, ba, b, bb = pair(host, xs, [], a_back={"log": "log tcp syn"})
    settle(host, 20)
    front = netfront(a)
    segment = build_tcp("10.0.0.1", "10.0.0.2", 40000, 80, 1, 0, 0x02)
    packet = build_ipv4("10.0.0.1", "10.0.0.2", 6, segment, ident=1)
    frame = build_ethernet(BROADCAST, front.stack.mac, 0x0800, packet)
    front.send(a.vcpus[0], [frame])
    settle(host, 20)
    assert b"vif1.0: TCP SYN 10.0.0.1:40000 -> 10.0.0.2:80" in bytes(host.xen.console.serial)


def test_a_guest_with_no_receive_buffers_drops_and_the_sender_hears_so(machine):
    host, xs = machine
    a, ba, b, bb = pair(host, xs, [])
    settle(host, 20)
    fb = netfront(b)
    fb.k.irqs.pop(fb.port)                 # beta stops taking its ring: no buffers come back
    front = netfront(a)
    unknown = mac_from_str("00:16:3e:00:00:02")
    frames = [build_ethernet(unknown, front.stack.mac, 0x0800,
                             build_ipv4("10.0.0.1", "10.0.0.2", 17, b"\0" * 16, ident=i))
              for i in range(70)]
    responses = raw_tx(host, a, frames)
    statuses = [status for _id, status in responses]
    assert statuses[:64] == [0] * 64                                 # 64 buffers were posted
    assert statuses[64:] == [NETIF_RSP_DROPPED] * 6
    assert netback(host, b).stats["rx_dropped"] == 6


# ----------------------------------------------------------------- capture
def test_the_bridge_captures_to_a_pcap_tshark_reads(machine, tmp_path):
    host, xs = machine
    path = tmp_path / "xenbr0.pcap"
    host.network_capture("xenbr0", str(path))
    a, ba, b, bb = pair(host, xs, ["ping 10.0.0.2 -c 2 -i 0.1"])
    settle(host, 600)
    host.network_capture("xenbr0", None)
    with pytest.raises(ValueError, match="domain 99 runs no kernel"):
        host.network_capture("xenbr0", None, domid=99)
    _linktype, records = read_pcap(str(path))
    assert len(records) == 6                        # ARP request, reply, 2 pings, 2 replies
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "ip.src", "-e", "ip.dst",
                          "-e", "icmp.type", "-e", "arp.opcode"], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split("\n")
    rows = [line.split("\t") for line in out if line.strip()]
    assert rows[0] == ["", "", "", "1"] and rows[1] == ["", "", "", "2"]
    assert rows[2] == ["10.0.0.1", "10.0.0.2", "8", ""]
    assert rows[3] == ["10.0.0.2", "10.0.0.1", "0", ""]


# ----------------------------------------------------------------- a frontend that lies
def raw_tx(host, d, frames=(), requests=None):
    """Put frames (or raw tx requests) on the guest's tx ring, notify, and
    return the responses (id, status) that came back."""
    front = netfront(d)
    k = front.k
    v = d.vcpus[0]
    page = k.page(front.tx_pfn)
    if requests is None:
        requests = []
        for frame in frames:
            (pfn,) = k.alloc_pages(1)
            k.page(pfn)[:len(frame)] = frame
            ref = k.grant_access(v, front.otherend_id, pfn, readonly=True)
            requests.append(TX_REQUEST.pack(ref, 0, 0, len(requests), len(frame)))
    k.irqs.pop(front.port)
    out = []
    for chunk in range(0, len(requests), 32):
        for req in requests[chunk:chunk + 32]:
            front.tx.produce(page, req)
        front.tx.push(page)
        k.notify(v, front.port)
        settle(host, 5)
        while front.tx.unconsumed(page):
            out.append(TX_RESPONSE.unpack_from(front.tx.consume(page)))
    k.irqs[front.port] = front
    return out


def test_bad_transmit_requests_get_errors_and_the_vif_goes_on(machine):
    host, xs = machine
    a, ba, b, bb = pair(host, xs, [])
    settle(host, 20)
    good = build_ethernet(BROADCAST, mac_from_str("00:16:3e:00:00:01"), 0x0800,
                          build_ipv4("10.0.0.1", "10.0.0.2", 17, b"\0" * 8, ident=1))
    replies = raw_tx(host, a, requests=[
        TX_REQUEST.pack(4000, 0, 0, 1, 60),             # a grant never made
        TX_REQUEST.pack(4000, 0, 0, 2, 8),              # shorter than an Ethernet header
    ])
    assert replies == [(1, NETIF_RSP_ERROR), (2, NETIF_RSP_ERROR)]
    assert raw_tx(host, a, [good]) == [(0, 0)]
    assert not netback(host, a).broken


def test_a_slot_crossing_its_page_costs_the_guest_its_vif_only(machine):
    host, xs = machine
    a, ba, b, bb = pair(host, xs, [])
    _, bc = guest(host, xs, "gamma", ["sleep 50ms", "ping 10.0.0.2 -c 2 -i 0.1"], [vif(3)])
    settle(host, 20)
    raw_tx(host, a, requests=[TX_REQUEST.pack(8, 4000, 0, 1, 200)])
    settle(host, 20)
    be = f"/local/domain/0/backend/vif/{a.domid}/0"
    assert "crosses its page" in xs.read(f"/local/domain/0/error/backend/vif/{a.domid}/0/error").decode()
    assert int(xs.read(f"{be}/state")) in (5, 6)
    settle(host, 600)
    assert "2 packets transmitted, 2 received" in console(host, bc)     # others go on
    assert audit(host.xen) == []


def test_tx_indices_past_the_ring_cost_only_that_vif(machine):
    host, xs = machine
    a, ba, b, bb = pair(host, xs, [], b_workload=["sleep 50ms", "ping 10.0.0.1 -c 1"])
    _, bc = guest(host, xs, "gamma", ["sleep 50ms", "ping 10.0.0.2 -c 2 -i 0.1"], [vif(3)])
    settle(host, 20)
    front = netfront(a)
    page = front.k.page(front.tx_pfn)
    page[REQ_PROD:REQ_PROD + 4] = ((get(page, REQ_PROD) + 5000) & 0xFFFFFFFF).to_bytes(4, "little")
    front.k.notify(a.vcpus[0], front.port)
    settle(host, 600)
    assert "2 packets transmitted, 2 received" in console(host, bc)
    assert audit(host.xen) == []


# ----------------------------------------------------------------- teardown
def test_a_dead_guests_vif_is_released_and_leaves_the_bridge(machine):
    host, xs = machine
    a, ba, b, bb = pair(host, xs, ["ping 10.0.0.2 -c 1"])
    settle(host, 200)
    domid = a.domid
    destroy_domain(Privcmd(host.xen), domid)
    settle(host, 20)
    assert host.xen.domains.get(domid) is None
    assert f"vif{domid}.0" not in host.dom0.guest.network.bridge("xenbr0").ports
    assert [m for m in host.dom0.grant_table.maptrack.values() if m.flags and m.domid == domid
            and m.ref != 1] == []
    device_destroy(xs, Device("vif", domid, 0, 0))
    settle(host, 5)
    assert not [n for n in host.dom0.guest.buses[1].devices if n.startswith(f"backend/vif/{domid}/")]


def test_a_bad_packet_after_good_ones_in_one_batch_closes_the_vif_after_answering(machine):
    host, xs = machine
    a, ba, b, bb = pair(host, xs, [])
    settle(host, 20)
    good = build_ethernet(BROADCAST, mac_from_str("00:16:3e:00:00:01"), 0x0800,
                          build_ipv4("10.0.0.1", "10.0.0.2", 17, b"\0" * 8, ident=1))
    front = netfront(a)
    (pfn,) = front.k.alloc_pages(1)
    front.k.page(pfn)[:len(good)] = good
    ref = front.k.grant_access(a.vcpus[0], front.otherend_id, pfn, readonly=True)
    replies = raw_tx(host, a, requests=[TX_REQUEST.pack(ref, 0, 0, 1, len(good)),
                                        TX_REQUEST.pack(ref, 4000, 0, 2, 200)])
    assert replies[0] == (1, 0)                        # the good one went out
    assert netback(host, b).stats["rx_packets"] == 1
    error = xs.read(f"/local/domain/0/error/backend/vif/{a.domid}/0/error").decode()
    assert "crosses its page" in error
    assert audit(host.xen) == []


def test_a_frontend_asking_for_flipping_the_vif_does_not_offer_loses_it(machine):
    host, xs = machine
    d, _ = paused_guest(host, xs, "flipper", [vif(1, **{"rx-flip": "0"})])
    settle(host, 20)
    be = f"/local/domain/0/backend/vif/{d.domid}/0"
    assert xs.read(f"{be}/feature-rx-flip") == b"0"
    fe = f"/local/domain/{d.domid}/device/vif/0"
    for name, value in (("tx-ring-ref", "8"), ("rx-ring-ref", "9"), ("event-channel", "5"),
                        ("request-rx-copy", "0"), ("state", "4")):
        xs.write(f"{fe}/{name}", value)
    settle(host, 20)
    assert "does not offer" in xs.read(f"/local/domain/0/error/backend/vif/{d.domid}/0/error").decode()
    assert int(xs.read(f"{be}/state")) == 5


def test_a_backend_whose_rx_responses_run_past_the_ring_loses_the_vif_not_the_guest(machine):
    host, xs = machine
    a, ba, b, bb = pair(host, xs, ["sleep 20ms", "echo still here"])
    settle(host, 10)
    front = netfront(a)
    page = front.k.page(front.rx_pfn)
    page[RSP_PROD:RSP_PROD + 4] = ((front.rx.cons + (1 << 31)) & 0xFFFFFFFF).to_bytes(4, "little")
    front.interrupt(a.vcpus[0], front.port)
    settle(host, 50)
    error = xs.read(f"/local/domain/{a.domid}/error/device/vif/0/error").decode()
    assert "rx response producer ran past the ring" in error
    assert "still here" in console(host, ba)


def test_packets_longer_than_the_promised_slots_are_dropped_and_far_longer_ones_cost_the_vif(machine):
    host, xs = machine
    a, ba, b, bb = pair(host, xs, [])
    settle(host, 20)
    more = 4                                             # NETTXF_more_data

    def packet(first_id: int, slots: int) -> list[bytes]:
        return [TX_REQUEST.pack(8, 0, more if i < slots - 1 else 0, first_id + i, 100)
                for i in range(slots)]

    # 19 slots: more than the 18 a frontend is promised; dropped, vif kept.
    replies = raw_tx(host, a, requests=packet(100, 19))
    assert replies == [(100 + i, NETIF_RSP_ERROR) for i in range(19)]
    assert not netback(host, a).broken
    # 20 slots: taken for an attack; the vif goes.
    raw_tx(host, a, requests=packet(200, 20))
    assert "20 slots or more" in xs.read(f"/local/domain/0/error/backend/vif/{a.domid}/0/error").decode()


def test_a_vif_whose_frontend_closes_and_starts_again_reconnects(machine):
    host, xs = machine
    a, ba, b, bb = pair(host, xs, ["sleep 200ms", "ping 10.0.0.2 -c 2 -i 0.1"])
    settle(host, 20)
    front, v = netfront(a), a.vcpus[0]
    front.switch_state(v, 5)
    settle(host, 20)
    be = f"/local/domain/0/backend/vif/{a.domid}/0"
    assert front.state == 6 and int(xs.read(f"{be}/state")) == 6
    assert f"vif{a.domid}.0" not in host.dom0.guest.network.bridge("xenbr0").ports
    front.failed = ""
    front.switch_state(v, 1)
    settle(host, 20)
    assert front.state == XenbusStateConnected
    assert f"vif{a.domid}.0" in host.dom0.guest.network.bridge("xenbr0").ports
    settle(host, 600)
    assert "2 packets transmitted, 2 received, 0% packet loss" in console(host, ba)
    assert audit(host.xen) == []
