"""The guest IP stack (hv/guest/netstack.py): two stacks talk ARP, ping
and UDP through frames the test carries between them."""

from __future__ import annotations

import pickle

import pytest

from hv.guest import ether, netstack
from hv.guest.ether import (
    BROADCAST,
    ETH_P_ARP,
    ETH_P_IP,
    ICMP_ECHO,
    ICMP_ECHOREPLY,
    IPPROTO_ICMP,
    IPPROTO_UDP,
)
from hv.guest.netstack import NetStack

A_MAC = bytes.fromhex("00163e000001")
B_MAC = bytes.fromhex("00163e000002")
C_MAC = bytes.fromhex("00163e000003")
MS = 1_000_000


def pair() -> tuple[NetStack, NetStack]:
    return NetStack(A_MAC, "10.0.0.1", ip_id=100), NetStack(B_MAC, "10.0.0.2", ip_id=200)


def deliver(frames: list[bytes], to: NetStack, now_ns: int) -> list[bytes]:
    out = []
    for frame in frames:
        out += to.receive(frame, now_ns)
    return out


def ip_of(frame: bytes) -> ether.IPv4:
    eth = ether.parse_ethernet(frame)
    assert eth.ethertype == ETH_P_IP
    return ether.parse_ipv4(eth.payload)


def test_arp_then_ping_then_udp():
    a, b = pair()

    # the first ping waits for ARP
    out = a.send_echo("10.0.0.2", ident=0x42, seq=1, payload=b"x" * 56, now_ns=1 * MS)
    assert len(out) == 1
    eth = ether.parse_ethernet(out[0])
    assert (eth.dst, eth.src, eth.ethertype) == (BROADCAST, A_MAC, ETH_P_ARP)
    assert ether.parse_arp(eth.payload) == ether.Arp(1, A_MAC, "10.0.0.1", bytes(6), "10.0.0.2")
    assert list(a.resolving) == ["10.0.0.2"]

    # b answers, and learns a from the request
    reply = deliver(out, b, 2 * MS)
    assert len(reply) == 1
    assert ether.parse_arp(ether.parse_ethernet(reply[0]).payload) == \
        ether.Arp(2, B_MAC, "10.0.0.2", A_MAC, "10.0.0.1")
    assert b.arp_cache == {"10.0.0.1": A_MAC}

    # the reply releases the waiting echo request
    echo = deliver(reply, a, 3 * MS)
    assert a.arp_cache == {"10.0.0.2": B_MAC} and a.resolving == {}
    request = ip_of(echo[0])
    assert (request.src, request.dst, request.proto, request.ttl, request.df, request.ident) == \
        ("10.0.0.1", "10.0.0.2", IPPROTO_ICMP, 64, True, 100)
    assert ether.parse_icmp(request.payload) == ether.Icmp(ICMP_ECHO, 0, 0x42, 1, b"x" * 56)

    # b answers at once: it learned a's address from the ARP request
    answer = deliver(echo, b, 4 * MS)
    assert ether.parse_ethernet(answer[0]).dst == A_MAC
    response = ip_of(answer[0])
    assert (response.src, response.dst, response.df, response.ident) == \
        ("10.0.0.2", "10.0.0.1", False, 200)
    assert ether.parse_icmp(response.payload) == ether.Icmp(ICMP_ECHOREPLY, 0, 0x42, 1, b"x" * 56)

    assert deliver(answer, a, 5 * MS) == []
    # measured from send_echo, ARP included, not from anything in the payload
    assert a.echo_replies == [netstack.EchoReply("10.0.0.2", 0x42, 1, 64, 56, 4 * MS, 5 * MS)]
    assert a.pings == {}

    # a second ping needs no ARP
    again = a.send_echo("10.0.0.2", 0x42, 2, b"y", now_ns=10 * MS)
    assert ip_of(again[0]).ident == 101
    deliver(deliver(again, b, 11 * MS), a, 12 * MS)
    assert a.echo_replies[-1].rtt_ns == 2 * MS

    # UDP both ways
    b.udp_bind(5000)
    a.udp_bind(4000)
    datagram = a.udp_send("10.0.0.2", 4000, 5000, b"hello", now_ns=20 * MS)
    packet = ip_of(datagram[0])
    assert (packet.proto, packet.df) == (IPPROTO_UDP, True)
    assert ether.parse_udp(packet.payload, packet.src, packet.dst) == ether.Udp(4000, 5000, b"hello", True)
    assert deliver(datagram, b, 21 * MS) == []
    got = b.udp_recv(5000)
    assert got == netstack.Datagram("10.0.0.1", 4000, 5000, b"hello", 21 * MS)
    assert b.udp_recv(5000) is None
    deliver(b.udp_send(got.src_ip, 5000, got.sport, b"world"), a, 22 * MS)
    assert a.udp_recv(4000) == netstack.Datagram("10.0.0.2", 5000, 4000, b"world", 22 * MS)

    assert a.drops == {} and b.drops == {}


def run_scenario() -> list[bytes]:
    a, b = pair()
    b.udp_bind(7)
    wire = []
    frames = a.send_echo("10.0.0.2", 1, 1, b"abc", 0)
    for step in range(6):
        wire += frames
        frames = deliver(frames, b if step % 2 == 0 else a, step * MS)
    wire += a.udp_send("10.0.0.2", 9, 7, b"d")
    return wire


def test_output_is_byte_deterministic():
    first, second = run_scenario(), run_scenario()
    assert first == second
    assert len(first) == 5 and all(len(f) >= 60 for f in first)


def test_snapshot_continues_identically():
    a, b = pair()
    b.receive(a.send_echo("10.0.0.2", 1, 1, b"", 0)[0], 1)      # b learned a
    a.udp_bind(53)
    copy = pickle.loads(pickle.dumps(a))
    frames = b.send_echo("10.0.0.1", 7, 7, b"zz", 2)
    assert a.receive(frames[0], 3) == copy.receive(frames[0], 3)
    assert copy.resolving["10.0.0.2"].packets == a.resolving["10.0.0.2"].packets
    assert copy.next_ip_id == a.next_ip_id == 102


def test_arp_retries_then_gives_up():
    a = NetStack(A_MAC, "10.0.0.1")
    first = a.send_echo("10.0.0.9", 1, 1, b"", now_ns=0)
    assert a.send_echo("10.0.0.9", 1, 2, b"", now_ns=MS) == []      # already asking
    assert a.next_deadline() == 1_000 * MS
    assert a.poll(999 * MS) == []
    second = a.poll(1_000 * MS)
    third = a.poll(2_000 * MS)
    assert second == third == first
    assert a.poll(2_999 * MS) == []
    assert a.poll(3_000 * MS) == []
    assert a.resolving == {} and a.next_deadline() is None
    assert a.drops == {netstack.ARP_FAILED: 2}
    # the next packet starts over
    assert a.send_echo("10.0.0.9", 1, 3, b"", now_ns=4_000 * MS) == first


def test_waiting_packets_leave_in_order():
    a, b = pair()
    a.udp_send("10.0.0.2", 1, 2, b"one")
    for payload in (b"two", b"three"):
        assert a.udp_send("10.0.0.2", 1, 2, payload) == []
    b.udp_bind(2)
    request = ether.arp_request(A_MAC, "10.0.0.1", "10.0.0.2")
    released = deliver(deliver([request], b, 0), a, 0)
    deliver(released, b, 0)
    assert [b.udp_recv(2).payload for _ in range(3)] == [b"one", b"two", b"three"]


def test_arp_queue_drops_oldest_when_full():
    a = NetStack(A_MAC, "10.0.0.1")
    for i in range(netstack.ARP_QUEUE_MAX + 2):
        a.udp_send("10.0.0.2", 1, 2, bytes([i]))
    packets = a.resolving["10.0.0.2"].packets
    assert len(packets) == netstack.ARP_QUEUE_MAX
    assert packets[0][-1] == 2
    assert a.drops == {netstack.ARP_QUEUE_FULL: 2}


def test_arp_learning_rules():
    a = NetStack(A_MAC, "10.0.0.1")
    # a request between two others teaches nothing new
    other = ether.arp_request(C_MAC, "10.0.0.3", "10.0.0.4")
    assert a.receive(other, 0) == []
    assert a.arp_cache == {} and a.drops == {netstack.NOT_FOR_ME: 1}
    # but refreshes an address already known
    a.arp_cache["10.0.0.3"] = B_MAC
    assert a.receive(other, 0) == []
    assert a.arp_cache["10.0.0.3"] == C_MAC
    # a reply nobody asked for teaches nothing either
    assert a.receive(ether.arp_reply(B_MAC, "10.0.0.2", A_MAC, "10.0.0.1"), 0) == []
    assert "10.0.0.2" not in a.arp_cache
    # a probe from 0.0.0.0 is answered, and nothing is learned from it
    probe = ether.arp_request(C_MAC, "0.0.0.0", "10.0.0.1")
    answer = a.receive(probe, 0)
    assert ether.parse_arp(ether.parse_ethernet(answer[0]).payload) == \
        ether.Arp(2, A_MAC, "10.0.0.1", C_MAC, "0.0.0.0")
    assert "0.0.0.0" not in a.arp_cache


def test_drop_reasons():
    a, b = pair()
    b.arp_cache["10.0.0.1"] = A_MAC
    a.arp_cache["10.0.0.2"] = B_MAC
    good = a.send_echo("10.0.0.2", 1, 1, b"ping", 0)[0]

    assert b.receive(good[:10], 0) == []
    corrupt = bytearray(good)
    corrupt[14 + 8] ^= 0xFF                       # the TTL, under the header checksum
    assert b.receive(bytes(corrupt), 0) == []
    icmp_corrupt = bytearray(good)
    icmp_corrupt[14 + 20 + 8] ^= 0xFF            # the first data byte
    assert b.receive(bytes(icmp_corrupt), 0) == []
    assert b.receive(ether.build_ethernet(C_MAC, A_MAC, ETH_P_IP, b""), 0) == []
    ipv6 = ether.build_ethernet(B_MAC, A_MAC, ether.ETH_P_IPV6, bytes(40))
    assert b.receive(ipv6, 0) == []
    tcp = ether.ipv4_frame(B_MAC, A_MAC, ether.build_ipv4("10.0.0.1", "10.0.0.2", 6, bytes(20), 1))
    assert b.receive(tcp, 0) == []
    stray_udp = a.udp_send("10.0.0.2", 1, 9999, b"nobody")[0]
    assert b.receive(stray_udp, 0) == []
    other_ip = ether.ipv4_frame(B_MAC, A_MAC, ether.build_ipv4("10.0.0.1", "10.0.0.7", 17, bytes(8), 1))
    assert b.receive(other_ip, 0) == []
    bcast_ping = ether.ipv4_frame(BROADCAST, A_MAC, ether.build_ipv4(
        "10.0.0.1", "255.255.255.255", 1, ether.build_icmp_echo(ICMP_ECHO, 1, 1, b""), 1))
    assert b.receive(bcast_ping, 0) == []
    stray_reply = ether.ipv4_frame(B_MAC, A_MAC, ether.build_ipv4(
        "10.0.0.1", "10.0.0.2", 1, ether.build_icmp_echo(ICMP_ECHOREPLY, 5, 5, b""), 1))
    assert b.receive(stray_reply, 0) == []
    unreachable = ether.ipv4_frame(B_MAC, A_MAC, ether.build_ipv4(
        "10.0.0.1", "10.0.0.2", 1, ether.build_icmp_echo(3, 0, 0, b""), 1))
    assert b.receive(unreachable, 0) == []

    assert b.drops == {
        netstack.MALFORMED: 1,
        netstack.BAD_CHECKSUM: 2,
        netstack.NOT_FOR_ME: 2,
        netstack.UNKNOWN_PROTOCOL: 2,
        netstack.NO_SOCKET: 1,
        netstack.BROADCAST_ECHO: 1,
        netstack.UNSOLICITED_REPLY: 1,
        netstack.UNHANDLED_ICMP: 1,
    }
    assert b.rx_frames == 11
    assert b.receive(good, 0) != []               # the intact frame still works


def test_fragments_are_dropped():
    b = NetStack(B_MAC, "10.0.0.2")
    packet = bytearray(ether.build_ipv4("10.0.0.1", "10.0.0.2", 17, bytes(16), 1, df=False))
    packet[6] = 0x20                                # MF
    packet[10:12] = b"\0\0"
    packet[10:12] = ether.checksum(bytes(packet[:20])).to_bytes(2, "big")
    assert b.receive(ether.ipv4_frame(B_MAC, A_MAC, bytes(packet)), 0) == []
    assert b.drops == {netstack.FRAGMENT: 1}


def test_udp_socket_buffer_limit():
    a, b = pair()
    a.arp_cache["10.0.0.2"] = B_MAC
    b.udp_bind(7)
    frame = a.udp_send("10.0.0.2", 1, 7, b"x")[0]
    for _ in range(netstack.UDP_QUEUE_MAX + 3):
        b.receive(frame, 0)
    assert len(b.sockets[7]) == netstack.UDP_QUEUE_MAX
    assert b.drops == {netstack.SOCKET_FULL: 3}


def test_socket_errors():
    a = NetStack(A_MAC, "10.0.0.1")
    a.udp_bind(53)
    with pytest.raises(ValueError, match="already bound"):
        a.udp_bind(53)
    with pytest.raises(ValueError, match="not bound"):
        a.udp_recv(54)
    with pytest.raises(ValueError, match="outside 1..65535"):
        a.udp_bind(0)
    with pytest.raises(ValueError, match="outside 1..65535"):
        a.udp_send("10.0.0.2", 1, 70000, b"")
    a.udp_close(53)
    with pytest.raises(ValueError, match="not bound"):
        a.udp_close(53)
    with pytest.raises(ValueError, match="MAC address"):
        NetStack(BROADCAST, "10.0.0.1")
    with pytest.raises(ValueError, match="IPv4 address"):
        NetStack(A_MAC, "10.0.0")


def test_without_an_address_only_broadcast_goes_out():
    a = NetStack(A_MAC)
    with pytest.raises(ValueError, match="no IPv4 address"):
        a.send_echo("10.0.0.2", 1, 1, b"", 0)
    discover = a.udp_send("255.255.255.255", 68, 67, b"DHCPDISCOVER")
    eth = ether.parse_ethernet(discover[0])
    packet = ether.parse_ipv4(eth.payload)
    assert (eth.dst, packet.src, packet.dst) == (BROADCAST, "0.0.0.0", "255.255.255.255")
    # nothing addressed to an IP is for it, ARP included
    assert a.receive(ether.arp_request(B_MAC, "10.0.0.2", "10.0.0.1"), 0) == []
    a.udp_bind(68)
    offer = NetStack(B_MAC, "10.0.0.2").udp_send("255.255.255.255", 67, 68, b"OFFER")
    assert a.receive(offer[0], 0) == []
    assert a.udp_recv(68).payload == b"OFFER"
    a.set_ip("10.0.0.1")
    assert a.send_echo("10.0.0.2", 1, 1, b"", 0)[0][:6] == BROADCAST


def test_changing_address_drops_what_waits():
    a = NetStack(A_MAC, "10.0.0.1")
    a.udp_send("10.0.0.2", 1, 2, b"")
    a.set_ip("10.0.0.5")
    assert a.resolving == {} and a.drops == {netstack.ARP_FAILED: 1}


def test_ping_own_address_loops_back():
    a = NetStack(A_MAC, "10.0.0.1")
    assert a.send_echo("10.0.0.1", 3, 4, b"me", now_ns=7) == []
    assert a.echo_replies == [netstack.EchoReply("10.0.0.1", 3, 4, 64, 2, 0, 7)]
