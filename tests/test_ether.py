"""Frame building and parsing (hv/guest/ether.py) against known vectors
and an independent checksum."""

from __future__ import annotations

import struct

import pytest

from hv.guest import ether
from hv.guest.ether import (
    ARPOP_REPLY,
    ARPOP_REQUEST,
    BROADCAST,
    ETH_P_ARP,
    ETH_P_IP,
    ICMP_ECHO,
    IPPROTO_UDP,
    TCP_ACK,
    TCP_SYN,
    BadChecksum,
    MalformedFrame,
)

A_MAC = bytes.fromhex("00163e000001")
B_MAC = bytes.fromhex("00163e000002")


def ones_complement_sum(data: bytes) -> int:
    """Written apart from the module: add the words in a long integer and
    fold once at the end, as RFC 1071 section 2(B) permits."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
    while total > 0xFFFF:
        total = (total >> 16) + (total & 0xFFFF)
    return total


def test_checksum_rfc1071_example():
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert ones_complement_sum(data) == 0xDDF2
    assert ether.checksum(data) == 0x220D
    assert ether.checksum(data + b"\x22\x0d") == 0


def test_checksum_odd_length_pads_with_zero():
    assert ether.checksum(b"\x01") == ~0x0100 & 0xFFFF
    assert ether.checksum(b"\x01\x02\x03") == ~(0x0102 + 0x0300) & 0xFFFF


def test_ipv4_header_matches_a_known_packet():
    # a UDP datagram's header, 192.168.0.1 -> 192.168.0.199, total 0x73 bytes,
    # id 0, DF, TTL 64: its checksum is b861
    known = bytes.fromhex("4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7")
    packet = ether.build_ipv4("192.168.0.1", "192.168.0.199", IPPROTO_UDP,
                              bytes(0x73 - 20), ident=0, df=True)
    assert packet[:20] == known
    assert len(packet) == 0x73


def test_ipv4_fields_round_trip():
    packet = ether.build_ipv4("10.0.0.1", "10.0.0.2", 1, b"hello", ident=0x1234,
                              df=False, ttl=7, tos=0x10)
    parsed = ether.parse_ipv4(packet + b"\0" * 6)      # link padding is cut off
    assert parsed == ether.IPv4("10.0.0.1", "10.0.0.2", 1, 7, 0x1234, 0x10, False, False,
                                0, 20, b"hello")
    assert struct.unpack_from("!H", packet, 6)[0] == 0
    assert ones_complement_sum(packet[:20]) == 0xFFFF


def test_ipv4_df_flag():
    with_df = ether.build_ipv4("10.0.0.1", "10.0.0.2", 1, b"", ident=1)
    without = ether.build_ipv4("10.0.0.1", "10.0.0.2", 1, b"", ident=1, df=False)
    assert with_df[6:8] == b"\x40\x00" and without[6:8] == b"\x00\x00"
    assert with_df[8] == 64


def test_icmp_echo_checksum_is_independent_complement():
    message = ether.build_icmp_echo(ICMP_ECHO, 0x0BEE, 7, b"abcdefgh")
    assert message[:2] == b"\x08\x00"
    unchecked = message[:2] + b"\0\0" + message[4:]
    assert struct.unpack_from("!H", message, 2)[0] == ~ones_complement_sum(unchecked) & 0xFFFF
    assert ether.parse_icmp(message) == ether.Icmp(8, 0, 0x0BEE, 7, b"abcdefgh")


def test_icmp_echo_request_known_bytes():
    # type 8, id 1, seq 1, no data: checksum = ~(0x0800 + 1 + 1) = f7fd
    assert ether.build_icmp_echo(ICMP_ECHO, 1, 1, b"") == bytes.fromhex("0800f7fd00010001")


def test_udp_checksum_covers_the_pseudo_header():
    datagram = ether.build_udp("10.0.0.1", "10.0.0.2", 1234, 53, b"query")
    pseudo = bytes([10, 0, 0, 1, 10, 0, 0, 2, 0, 17]) + struct.pack("!H", len(datagram))
    unchecked = datagram[:6] + b"\0\0" + datagram[8:]
    assert struct.unpack_from("!H", datagram, 6)[0] == ~ones_complement_sum(pseudo + unchecked) & 0xFFFF
    assert datagram[:6] == struct.pack("!HHH", 1234, 53, 13)
    assert ether.parse_udp(datagram, "10.0.0.1", "10.0.0.2") == ether.Udp(1234, 53, b"query", True)


def test_udp_checksum_zero_is_sent_as_all_ones():
    probe = ether.build_udp("10.0.0.1", "10.0.0.2", 1, 2, b"\0\0")
    complement = probe[6:8]           # this payload word makes the sum all ones
    datagram = ether.build_udp("10.0.0.1", "10.0.0.2", 1, 2, complement)
    assert datagram[6:8] == b"\xff\xff"
    assert ether.parse_udp(datagram, "10.0.0.1", "10.0.0.2").payload == complement


def test_udp_without_checksum_is_accepted():
    datagram = struct.pack("!HHHH", 68, 67, 10, 0) + b"hi"
    udp = ether.parse_udp(datagram, "0.0.0.0", "255.255.255.255")
    assert udp == ether.Udp(68, 67, b"hi", False)


def test_udp_bad_checksum_and_lengths():
    datagram = bytearray(ether.build_udp("10.0.0.1", "10.0.0.2", 1234, 53, b"query"))
    with pytest.raises(BadChecksum, match="bad UDP checksum"):
        ether.parse_udp(bytes(datagram), "10.0.0.1", "10.0.0.9")
    with pytest.raises(MalformedFrame, match="shorter than its header"):
        ether.parse_udp(bytes(datagram[:7]), "10.0.0.1", "10.0.0.2")
    datagram[4:6] = struct.pack("!H", 40)
    with pytest.raises(MalformedFrame, match="UDP length 40"):
        ether.parse_udp(bytes(datagram), "10.0.0.1", "10.0.0.2")
    datagram[4:6] = struct.pack("!H", 7)
    with pytest.raises(MalformedFrame, match="UDP length 7"):
        ether.parse_udp(bytes(datagram), "10.0.0.1", "10.0.0.2")


def test_tcp_syn_round_trip():
    segment = ether.build_tcp("10.0.0.1", "10.0.0.2", 1234, 80, seq=1000, ack=0, flags=TCP_SYN)
    pseudo = bytes([10, 0, 0, 1, 10, 0, 0, 2, 0, 6, 0, 20])
    assert ones_complement_sum(pseudo + segment) == 0xFFFF
    tcp = ether.parse_tcp(segment, "10.0.0.1", "10.0.0.2")
    assert (tcp.sport, tcp.dport, tcp.seq, tcp.flags, tcp.is_syn) == (1234, 80, 1000, TCP_SYN, True)
    synack = ether.build_tcp("10.0.0.2", "10.0.0.1", 80, 1234, 5, 1001, TCP_SYN | TCP_ACK)
    assert not ether.parse_tcp(synack, "10.0.0.2", "10.0.0.1").is_syn


def test_tcp_malformed():
    segment = bytearray(ether.build_tcp("10.0.0.1", "10.0.0.2", 1, 2, 0, 0, TCP_SYN))
    segment[12] = 0x40                      # data offset 16 bytes
    with pytest.raises(MalformedFrame, match="data offset 16"):
        ether.parse_tcp(bytes(segment), "10.0.0.1", "10.0.0.2")
    with pytest.raises(BadChecksum):
        ether.parse_tcp(ether.build_tcp("10.0.0.1", "10.0.0.2", 1, 2, 0, 0, TCP_SYN),
                        "10.0.0.1", "10.0.0.3")


def test_arp_request_frame_layout():
    frame = ether.arp_request(A_MAC, "10.0.0.1", "10.0.0.2")
    assert len(frame) == 60                                   # padded like a NIC
    assert frame[:14] == BROADCAST + A_MAC + b"\x08\x06"
    assert frame[14:22] == bytes.fromhex("0001080006040001")  # Ethernet, IPv4, 6, 4, request
    assert frame[22:42] == A_MAC + bytes([10, 0, 0, 1]) + bytes(6) + bytes([10, 0, 0, 2])
    assert frame[42:] == bytes(18)
    arp = ether.parse_arp(ether.parse_ethernet(frame).payload)
    assert arp == ether.Arp(ARPOP_REQUEST, A_MAC, "10.0.0.1", bytes(6), "10.0.0.2")


def test_arp_reply_goes_to_the_asker():
    frame = ether.arp_reply(B_MAC, "10.0.0.2", A_MAC, "10.0.0.1")
    eth = ether.parse_ethernet(frame)
    assert (eth.dst, eth.src, eth.ethertype) == (A_MAC, B_MAC, ETH_P_ARP)
    assert ether.parse_arp(eth.payload) == ether.Arp(ARPOP_REPLY, B_MAC, "10.0.0.2", A_MAC, "10.0.0.1")


def test_arp_other_protocols_and_short():
    ipv6_arp = struct.pack("!HHBBH", 1, 0x86DD, 6, 16, 1) + bytes(44)
    assert ether.parse_arp(ipv6_arp) is None
    with pytest.raises(MalformedFrame, match="shorter than its fixed header"):
        ether.parse_arp(b"\x00\x01")
    with pytest.raises(MalformedFrame, match="shorter than 28"):
        ether.parse_arp(ether.build_arp(1, A_MAC, "10.0.0.1", bytes(6), "10.0.0.2")[:27])


def test_ethernet_padding_and_parse():
    unpadded = ether.build_ethernet(B_MAC, A_MAC, ETH_P_IP, b"x", pad=False)
    assert len(unpadded) == 15
    padded = ether.build_ethernet(B_MAC, A_MAC, ETH_P_IP, b"x")
    assert len(padded) == 60 and padded[15:] == bytes(45)
    assert ether.pad_frame(bytes(100)) == bytes(100)
    eth = ether.parse_ethernet(padded)
    assert (eth.dst, eth.src, eth.ethertype, len(eth.payload)) == (B_MAC, A_MAC, ETH_P_IP, 46)
    with pytest.raises(MalformedFrame, match="13 bytes is shorter than an Ethernet header"):
        ether.parse_ethernet(padded[:13])


@pytest.mark.parametrize("mutate, reason, error", [
    (lambda p: p[:19], "shorter than its header", MalformedFrame),
    (lambda p: b"\x65" + p[1:], "IP version 6", MalformedFrame),
    (lambda p: b"\x44" + p[1:], "header length 16", MalformedFrame),
    (lambda p: b"\x4f" + p[1:], "header of 60 bytes", MalformedFrame),
    (lambda p: p[:2] + b"\x00\x40" + p[4:], "total length 64", MalformedFrame),
    (lambda p: p[:2] + b"\x00\x10" + p[4:], "total length 16", MalformedFrame),
    (lambda p: p[:8] + b"\x3f" + p[9:], "bad IPv4 header checksum", BadChecksum),
])
def test_ipv4_malformed(mutate, reason, error):
    packet = ether.build_ipv4("10.0.0.1", "10.0.0.2", 17, b"payload!", ident=9)
    with pytest.raises(error, match=reason) as info:
        ether.parse_ipv4(mutate(packet))
    assert reason in info.value.reason


def test_icmp_malformed():
    with pytest.raises(MalformedFrame, match="shorter than its header"):
        ether.parse_icmp(b"\x08\x00\x00")
    message = bytearray(ether.build_icmp_echo(ICMP_ECHO, 1, 1, b"data"))
    message[-1] ^= 1
    with pytest.raises(BadChecksum, match="bad ICMP checksum"):
        ether.parse_icmp(bytes(message))


def test_fragment_flags_parse():
    packet = bytearray(ether.build_ipv4("10.0.0.1", "10.0.0.2", 17, bytes(8), ident=1, df=False))
    packet[6:8] = struct.pack("!H", 0x2000 | 3)          # MF, offset 24 bytes
    packet[10:12] = b"\0\0"
    packet[10:12] = struct.pack("!H", ether.checksum(bytes(packet[:20])))
    parsed = ether.parse_ipv4(bytes(packet))
    assert (parsed.mf, parsed.df, parsed.frag_offset, parsed.is_fragment) == (True, False, 24, True)


def test_mac_and_ip_strings():
    assert ether.mac_to_str(bytes.fromhex("00163e0a0b0c")) == "00:16:3e:0a:0b:0c"
    assert ether.mac_from_str("00:16:3E:0A:0B:0C") == bytes.fromhex("00163e0a0b0c")
    for bad in ("00:16:3e:0a:0b", "00:16:3e:0a:0b:0c:0d", "0:16:3e:0a:0b:0c", "00:16:3e:0a:0b:zz"):
        with pytest.raises(ValueError, match="MAC address"):
            ether.mac_from_str(bad)
    assert ether.ip_to_bytes("192.168.0.199") == bytes([192, 168, 0, 199])
    assert ether.ip_to_str(bytes([10, 0, 0, 255])) == "10.0.0.255"
    for bad, why in (("10.0.0", "four"), ("10.0.0.256", "above 255"), ("10.0.0.01", "leading zero"),
                     ("10.0.0.-1", "four"), ("a.b.c.d", "four")):
        with pytest.raises(ValueError, match=why):
            ether.ip_to_bytes(bad)


def test_mac_kinds():
    assert ether.is_multicast_mac(BROADCAST)
    assert ether.is_multicast_mac(bytes.fromhex("01005e000001"))
    assert not ether.is_multicast_mac(A_MAC)
    assert ether.is_valid_unicast_mac(A_MAC)
    assert not ether.is_valid_unicast_mac(bytes(6))


def test_malformed_frame_carries_reason():
    err = MalformedFrame("too short")
    assert err.reason == "too short" and isinstance(err, ValueError)
