"""The learning bridge (hv/guest/bridge.py) and its pcap capture
(hv/guest/pcap.py), the capture read back by tshark when it is installed."""

from __future__ import annotations

import pickle
import shutil
import struct
import subprocess

import pytest

from hv.guest import bridge as br
from hv.guest import ether
from hv.guest.bridge import Bridge
from hv.guest.ether import BROADCAST, ETH_P_IP
from hv.guest.netstack import NetStack
from hv.guest.pcap import MAGIC_NSEC, PcapWriter, read_pcap

A = bytes.fromhex("00163e000001")
B = bytes.fromhex("00163e000002")
C = bytes.fromhex("00163e000003")
S = 1_000_000_000


def frame(dst: bytes, src: bytes, payload: bytes = b"data") -> bytes:
    return ether.build_ethernet(dst, src, ETH_P_IP, payload)


def three_port_bridge(**kw) -> Bridge:
    bridge = Bridge("xenbr0", **kw)
    for port in ("vif1.0", "vif2.0", "vif3.0"):
        bridge.add_port(port)
    return bridge


def test_learning_and_flooding():
    bridge = three_port_bridge()
    # unknown destination: every other port
    assert bridge.forward("vif1.0", frame(B, A), 0) == ["vif2.0", "vif3.0"]
    assert bridge.lookup(A, 0) == "vif1.0"
    # the answer goes to the one port A was heard on
    assert bridge.forward("vif2.0", frame(A, B), 1) == ["vif1.0"]
    assert bridge.forward("vif1.0", frame(B, A), 2) == ["vif2.0"]
    # broadcast and multicast flood, never back where they came from
    assert bridge.forward("vif3.0", frame(BROADCAST, C), 3) == ["vif1.0", "vif2.0"]
    assert bridge.forward("vif2.0", frame(bytes.fromhex("01005e000001"), B), 4) == ["vif1.0", "vif3.0"]
    assert [(mac, port) for mac, port, _ in bridge.fdb_entries(5)] == \
        [(A, "vif1.0"), (B, "vif2.0"), (C, "vif3.0")]


def test_destination_on_ingress_port_is_dropped():
    bridge = three_port_bridge()
    bridge.forward("vif1.0", frame(BROADCAST, A), 0)
    assert bridge.forward("vif1.0", frame(A, C), 1) == []
    assert bridge.drops == {br.SAME_PORT: 1}
    assert bridge.ports["vif1.0"].dropped == 1
    assert bridge.lookup(C, 1) == "vif1.0"           # learned all the same


def test_station_moves():
    bridge = three_port_bridge()
    bridge.forward("vif1.0", frame(BROADCAST, A), 0)
    bridge.forward("vif3.0", frame(BROADCAST, A), 1)
    assert bridge.forward("vif2.0", frame(A, B), 2) == ["vif3.0"]


def test_ageing():
    bridge = three_port_bridge()
    bridge.forward("vif1.0", frame(BROADCAST, A), 10 * S)
    assert bridge.fdb_entries(12 * S) == [(A, "vif1.0", 2 * S)]
    just_before = 10 * S + br.AGEING_NS - 1
    assert bridge.forward("vif2.0", frame(A, B), just_before) == ["vif1.0"]
    # A has been silent 300 s; B was refreshed just now
    assert bridge.forward("vif3.0", frame(A, C), 310 * S) == ["vif1.0", "vif2.0"]
    assert bridge.lookup(B, 310 * S) == "vif2.0"
    assert A not in bridge.fdb


def test_garbage_collection_forgets_unused_addresses():
    bridge = three_port_bridge(ageing_ns=5 * S)
    for i in range(50):
        bridge.forward("vif1.0", frame(BROADCAST, bytes([0, 0x16, 0x3E, 1, 0, i])), 0)
    assert len(bridge.fdb) == 50
    bridge.forward("vif2.0", frame(BROADCAST, B), 6 * S)
    assert list(bridge.fdb) == [B]


def test_ageing_zero_makes_a_hub():
    bridge = three_port_bridge(ageing_ns=0)
    bridge.forward("vif1.0", frame(BROADCAST, A), 0)
    assert bridge.forward("vif2.0", frame(A, B), 0) == ["vif1.0", "vif3.0"]


def test_removing_a_port_flushes_its_addresses():
    bridge = three_port_bridge()
    bridge.forward("vif1.0", frame(BROADCAST, A), 0)
    bridge.forward("vif2.0", frame(BROADCAST, B), 0)
    bridge.remove_port("vif1.0")
    assert [port for _, port, _ in bridge.fdb_entries(0)] == ["vif2.0"]
    assert bridge.forward("vif2.0", frame(A, B), 1) == ["vif3.0"]
    with pytest.raises(ValueError, match="vif1.0 is not a port of xenbr0"):
        bridge.forward("vif1.0", frame(B, A), 2)
    with pytest.raises(ValueError, match="not a port"):
        bridge.remove_port("vif1.0")
    with pytest.raises(ValueError, match="already a port"):
        bridge.add_port("vif2.0")


def test_bad_and_link_local_frames():
    bridge = three_port_bridge()
    assert bridge.forward("vif1.0", frame(B, bytes(6)), 0) == []
    assert bridge.forward("vif1.0", frame(B, BROADCAST), 0) == []
    assert bridge.forward("vif1.0", b"\x00" * 13, 0) == []
    lldp = ether.build_ethernet(bytes.fromhex("0180c200000e"), A, 0x88CC, b"")
    assert bridge.forward("vif1.0", lldp, 0) == []
    assert bridge.lookup(A, 0) == "vif1.0"            # still learned from
    # spanning tree is off, so its group address is forwarded
    stp = bytes.fromhex("0180c2000000") + A + b"\x00\x26" + bytes(46)
    assert bridge.forward("vif1.0", stp, 0) == ["vif2.0", "vif3.0"]
    assert bridge.drops == {br.INVALID_SOURCE: 2, br.RUNT: 1, br.LINK_LOCAL: 1}
    assert bridge.ports["vif1.0"].dropped == 4


def test_single_port_goes_nowhere():
    bridge = Bridge()
    bridge.add_port("vif1.0")
    assert bridge.forward("vif1.0", frame(BROADCAST, A), 0) == []
    assert bridge.drops == {br.NO_OTHER_PORT: 1}


def test_port_counters():
    bridge = three_port_bridge()
    bridge.forward("vif1.0", frame(BROADCAST, A), 0)
    bridge.forward("vif2.0", frame(A, B, bytes(100)), 0)
    assert bridge.ports["vif1.0"] == br.PortStats(1, 60, 1, 114, 0)
    assert bridge.ports["vif2.0"] == br.PortStats(1, 114, 1, 60, 0)
    assert bridge.ports["vif3.0"] == br.PortStats(0, 0, 1, 60, 0)


def test_dump_lists_the_fdb():
    bridge = three_port_bridge()
    bridge.forward("vif2.0", frame(BROADCAST, B), 0)
    assert bridge.dump(1_500_000_000).splitlines() == [
        "xenbr0: port\tmac addr\t\tageing timer",
        "  vif2.0\t00:16:3e:00:00:02\t    1.50",
    ]


def test_capture_writes_every_frame_entering(tmp_path):
    path = tmp_path / "xenbr0.pcap"
    bridge = three_port_bridge()
    bridge.capture_start(path)
    with pytest.raises(ValueError, match="already capturing"):
        bridge.capture_start(tmp_path / "other.pcap")
    bridge.forward("vif1.0", frame(BROADCAST, A), 1_500_000_123)
    # the file is readable while the capture goes on
    assert [r.ts_ns for r in read_pcap(path)[1]] == [1_500_000_123]
    bridge.forward("vif1.0", b"\x00" * 13, 2 * S)       # dropped frames are captured too
    bridge.capture_stop()
    bridge.forward("vif1.0", frame(BROADCAST, A), 3 * S)
    linktype, records = read_pcap(path)
    assert linktype == 1
    assert [(r.ts_ns, r.data, r.orig_len) for r in records] == [
        (1_500_000_123, frame(BROADCAST, A), 60), (2 * S, b"\x00" * 13, 13)]
    raw = path.read_bytes()
    assert struct.unpack_from("<IHHiIII", raw) == (MAGIC_NSEC, 2, 4, 0, 0, 65535, 1)
    assert struct.unpack_from("<IIII", raw, 24) == (1, 500_000_123, 60, 60)
    with pytest.raises(ValueError, match="not capturing"):
        bridge.capture_stop()


def test_pcap_snaplen_and_reader_errors(tmp_path):
    writer = PcapWriter(tmp_path / "small.pcap", snaplen=20)
    writer.record(5, bytes(range(60)))
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.record(6, b"")
    _, records = read_pcap(tmp_path / "small.pcap")
    assert records[0].data == bytes(range(20)) and records[0].orig_len == 60
    (tmp_path / "junk").write_bytes(b"\x00" * 30)
    with pytest.raises(ValueError, match="not a pcap file"):
        read_pcap(tmp_path / "junk")
    truncated = (tmp_path / "small.pcap").read_bytes()[:-3]
    (tmp_path / "cut.pcap").write_bytes(truncated)
    with pytest.raises(ValueError, match="truncated record data"):
        read_pcap(tmp_path / "cut.pcap")


def test_microsecond_big_endian_pcap_is_read(tmp_path):
    raw = struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    raw += struct.pack(">IIII", 3, 250, 2, 2) + b"hi"
    (tmp_path / "us.pcap").write_bytes(raw)
    assert read_pcap(tmp_path / "us.pcap")[1][0].ts_ns == 3 * S + 250_000


def test_capturing_bridge_pickles_and_resumes_where_the_snapshot_was(tmp_path):
    path = tmp_path / "cap.pcap"
    bridge = three_port_bridge()
    bridge.capture_start(path)
    bridge.forward("vif1.0", frame(BROADCAST, A), 1)
    snapshot = pickle.dumps(bridge)
    bridge.forward("vif2.0", frame(BROADCAST, B), 2)         # after the snapshot
    bridge.capture_stop()
    restored = pickle.loads(snapshot)
    restored.forward("vif3.0", frame(BROADCAST, C), 3)
    restored.capture_stop()
    assert [r.ts_ns for r in read_pcap(path)[1]] == [1, 3]


def tshark_fields(path, *fields: str, prefs: tuple[str, ...] = ()) -> list[list[str]]:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed")
    command = [tshark, "-r", str(path), "-T", "fields"]
    for pref in prefs:
        command += ["-o", pref]
    for field in fields:
        command += ["-e", field]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [line.split("\t") for line in result.stdout.splitlines()]


def test_tshark_decodes_a_ping_and_udp_through_the_bridge(tmp_path):
    path = tmp_path / "xenbr0.pcap"
    bridge = Bridge("xenbr0")
    stacks = {"vif1.0": NetStack(A, "10.0.0.1"), "vif2.0": NetStack(B, "10.0.0.2")}
    for port in stacks:
        bridge.add_port(port)
    bridge.capture_start(path)

    def carry(port: str, frames: list[bytes], now_ns: int) -> None:
        for f in frames:
            for out in bridge.forward(port, f, now_ns):
                carry(out, stacks[out].receive(f, now_ns + 1000), now_ns + 1000)

    carry("vif1.0", stacks["vif1.0"].send_echo("10.0.0.2", 0x1D, 1, b"0123456789abcdef", S), S)
    stacks["vif2.0"].udp_bind(40000)
    carry("vif1.0", stacks["vif1.0"].udp_send("10.0.0.2", 4000, 40000, b"hello"), 2 * S)
    bridge.capture_stop()
    assert stacks["vif1.0"].echo_replies[0].rtt_ns == 4000
    assert stacks["vif2.0"].udp_recv(40000).payload == b"hello"

    rows = tshark_fields(
        path, "frame.time_epoch", "eth.src", "eth.dst", "arp.opcode", "ip.src", "ip.dst",
        "ip.flags.df", "ip.checksum.status", "icmp.type", "icmp.checksum.status",
        "icmp.ident", "icmp.seq", "udp.dstport", "udp.checksum.status", "frame.len",
        prefs=("ip.check_checksum:TRUE", "udp.check_checksum:TRUE"))
    good = "1"          # Wireshark's checksum status: 0 bad, 1 good, 2 unverified
    assert [row[1:] for row in rows] == [
        ["00:16:3e:00:00:01", "ff:ff:ff:ff:ff:ff", "1", "", "", "", "", "", "", "", "", "", "", "60"],
        ["00:16:3e:00:00:02", "00:16:3e:00:00:01", "2", "", "", "", "", "", "", "", "", "", "", "60"],
        ["00:16:3e:00:00:01", "00:16:3e:00:00:02", "", "10.0.0.1", "10.0.0.2", "1", good, "8", good,
         "29", "1", "", "", "60"],
        ["00:16:3e:00:00:02", "00:16:3e:00:00:01", "", "10.0.0.2", "10.0.0.1", "0", good, "0", good,
         "29", "1", "", "", "60"],
        ["00:16:3e:00:00:01", "00:16:3e:00:00:02", "", "10.0.0.1", "10.0.0.2", "1", good, "", "",
         "", "", "40000", good, "60"],
    ]
    assert [row[0] for row in rows] == ["1.000000000", "1.000001000", "1.000002000",
                                        "1.000003000", "2.000000000"]
