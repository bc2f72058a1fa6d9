"""Frames as they travel between domains: Ethernet II, ARP for IPv4
(RFC 826), IPv4 (RFC 791), ICMP echo (RFC 792), UDP (RFC 768) and enough
of TCP (RFC 793) to recognise a connection being opened.

Builders return bytes in network order; parsers take bytes and return a
frozen dataclass, None when the input is well formed but of a kind they do
not handle (an ARP for another protocol, say), or raise MalformedFrame
naming what is wrong. IPv4 addresses are dotted strings at the interface
and four bytes only inside; MAC addresses are six bytes."""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
ETH_HLEN = 14
ETH_ZLEN = 60            # shortest frame on the wire, without the 4-byte FCS
ETH_ALEN = 6
BROADCAST = b"\xff" * ETH_ALEN
ZERO_MAC = bytes(ETH_ALEN)

ARPHRD_ETHER = 1
ARPOP_REQUEST = 1
ARPOP_REPLY = 2
ARP_LEN = 28

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IP_DF = 0x4000
IP_MF = 0x2000
IP_OFFMASK = 0x1FFF
IPV4_HLEN = 20
DEFAULT_TTL = 64          # Linux's net.ipv4.ip_default_ttl
IPV4_BROADCAST = "255.255.255.255"
IPV4_ANY = "0.0.0.0"

ICMP_ECHOREPLY = 0
ICMP_ECHO = 8
ICMP_HLEN = 8
UDP_HLEN = 8
TCP_HLEN = 20

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20

_ETH = struct.Struct("!6s6sH")
_ARP = struct.Struct("!HHBBH6s4s6s4s")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_ICMP = struct.Struct("!BBHHH")
_UDP = struct.Struct("!HHHH")
_TCP = struct.Struct("!HHIIBBHHH")


class MalformedFrame(ValueError):
    """Input that cannot be what it claims to be; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class BadChecksum(MalformedFrame):
    """Well formed, but a checksum does not hold: corrupted on the way."""


# --- addresses --------------------------------------------------------------

def mac_to_str(mac: bytes) -> str:
    if len(mac) != ETH_ALEN:
        raise ValueError(f"a MAC address is {ETH_ALEN} bytes, not {len(mac)}")
    return ":".join(f"{b:02x}" for b in mac)


def mac_from_str(text: str) -> bytes:
    parts = text.split(":")
    if len(parts) != ETH_ALEN or not all(len(p) == 2 for p in parts):
        raise ValueError(f"MAC address {text!r} is not six colon-separated pairs of hex digits")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"MAC address {text!r} has a pair that is not hex") from None


@functools.lru_cache(maxsize=1024)
def ip_to_bytes(text: str) -> bytes:
    """A stack asks for the same few addresses on every packet: remembered."""
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() and p.isascii() for p in parts):
        raise ValueError(f"IPv4 address {text!r} is not four dot-separated numbers")
    # inet_pton refuses leading zeros, which inet_aton would read as octal
    if any(len(p) > 1 and p[0] == "0" for p in parts):
        raise ValueError(f"IPv4 address {text!r} has a number with a leading zero")
    values = [int(p) for p in parts]
    if any(v > 255 for v in values):
        raise ValueError(f"IPv4 address {text!r} has a number above 255")
    return bytes(values)


def ip_to_str(raw: bytes) -> str:
    if len(raw) != 4:
        raise ValueError(f"an IPv4 address is 4 bytes, not {len(raw)}")
    return ".".join(str(b) for b in raw)


def is_multicast_mac(mac: bytes) -> bool:
    """The I/G bit: broadcast is multicast too."""
    return bool(mac[0] & 1)


def is_valid_unicast_mac(mac: bytes) -> bool:
    """What Linux's is_valid_ether_addr() accepts as a source."""
    return not is_multicast_mac(mac) and mac != ZERO_MAC


# --- the Internet checksum ---------------------------------------------------

def checksum(data: bytes) -> int:
    """RFC 1071: the ones' complement of the ones' complement sum of 16-bit
    words, an odd last byte padded with zero. Over data that already holds
    its checksum, the result is 0."""
    if len(data) % 2:
        data = data + b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _pseudo_header(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    return src + dst + struct.pack("!BBH", 0, proto, length)


# --- Ethernet ---------------------------------------------------------------

@dataclass(frozen=True)
class Ethernet:
    dst: bytes
    src: bytes
    ethertype: int      # below 0x0600 an 802.3 length; left for the reader to judge
    payload: bytes      # may carry the padding that brought the frame to 60 bytes


def pad_frame(frame: bytes) -> bytes:
    """Zero-pad to the 60-byte minimum a NIC puts on the wire."""
    return frame + bytes(ETH_ZLEN - len(frame)) if len(frame) < ETH_ZLEN else frame


def build_ethernet(dst: bytes, src: bytes, ethertype: int, payload: bytes,
                   pad: bool = True) -> bytes:
    if len(dst) != ETH_ALEN or len(src) != ETH_ALEN:
        raise ValueError("MAC addresses are 6 bytes")
    frame = _ETH.pack(dst, src, ethertype) + payload
    return pad_frame(frame) if pad else frame


def parse_ethernet(frame: bytes) -> Ethernet:
    if len(frame) < ETH_HLEN:
        raise MalformedFrame(f"frame of {len(frame)} bytes is shorter than an Ethernet header")
    dst, src, ethertype = _ETH.unpack_from(frame)
    return Ethernet(dst, src, ethertype, bytes(frame[ETH_HLEN:]))


# --- ARP --------------------------------------------------------------------

@dataclass(frozen=True)
class Arp:
    op: int
    sha: bytes          # sender hardware address
    spa: str            # sender protocol address
    tha: bytes
    tpa: str


def build_arp(op: int, sha: bytes, spa: str, tha: bytes, tpa: str) -> bytes:
    return _ARP.pack(ARPHRD_ETHER, ETH_P_IP, ETH_ALEN, 4, op,
                     sha, ip_to_bytes(spa), tha, ip_to_bytes(tpa))


def arp_request(sha: bytes, spa: str, tpa: str) -> bytes:
    """A whole frame: who has tpa? tell spa. The target hardware address
    is zero, as Linux leaves it."""
    return build_ethernet(BROADCAST, sha, ETH_P_ARP,
                          build_arp(ARPOP_REQUEST, sha, spa, ZERO_MAC, tpa))


def arp_reply(sha: bytes, spa: str, tha: bytes, tpa: str) -> bytes:
    """A whole frame: spa is at sha, sent to the asker alone."""
    return build_ethernet(tha, sha, ETH_P_ARP, build_arp(ARPOP_REPLY, sha, spa, tha, tpa))


def parse_arp(payload: bytes) -> Arp | None:
    """None for ARP over other hardware or for other protocols."""
    if len(payload) < 8:
        raise MalformedFrame(f"ARP of {len(payload)} bytes is shorter than its fixed header")
    htype, ptype, hlen, plen, _ = struct.unpack_from("!HHBBH", payload)
    if (htype, ptype, hlen, plen) != (ARPHRD_ETHER, ETH_P_IP, ETH_ALEN, 4):
        return None
    if len(payload) < ARP_LEN:
        raise MalformedFrame(f"ARP for IPv4 of {len(payload)} bytes is shorter than {ARP_LEN}")
    _, _, _, _, op, sha, spa, tha, tpa = _ARP.unpack_from(payload)
    return Arp(op, sha, ip_to_str(spa), tha, ip_to_str(tpa))


# --- IPv4 -------------------------------------------------------------------

@dataclass(frozen=True)
class IPv4:
    src: str
    dst: str
    proto: int
    ttl: int
    ident: int
    tos: int
    df: bool
    mf: bool
    frag_offset: int    # in bytes
    header_len: int
    payload: bytes      # exactly total_length - header_len: link padding is gone

    @property
    def is_fragment(self) -> bool:
        return self.mf or self.frag_offset != 0


def build_ipv4(src: str, dst: str, proto: int, payload: bytes, ident: int,
               df: bool = True, ttl: int = DEFAULT_TTL, tos: int = 0) -> bytes:
    """A 20-byte header, no options. Linux sets DF on whatever its sockets
    send under path-MTU discovery (the default), and clears it on the
    kernel's own ICMP replies; the caller says which this is."""
    total = IPV4_HLEN + len(payload)
    if total > 0xFFFF:
        raise ValueError(f"IPv4 datagram of {total} bytes exceeds 65535")
    header = bytearray(_IPV4.pack(0x45, tos, total, ident & 0xFFFF, IP_DF if df else 0,
                                  ttl, proto, 0, ip_to_bytes(src), ip_to_bytes(dst)))
    struct.pack_into("!H", header, 10, checksum(bytes(header)))
    return bytes(header) + payload


def parse_ipv4(data: bytes) -> IPv4:
    if len(data) < IPV4_HLEN:
        raise MalformedFrame(f"IPv4 packet of {len(data)} bytes is shorter than its header")
    vihl, tos, total, ident, frag, ttl, proto, _, src, dst = _IPV4.unpack_from(data)
    if vihl >> 4 != 4:
        raise MalformedFrame(f"IP version {vihl >> 4} in an IPv4 frame")
    hlen = (vihl & 0xF) * 4
    if hlen < IPV4_HLEN:
        raise MalformedFrame(f"IPv4 header length {hlen} is below 20")
    if len(data) < hlen:
        raise MalformedFrame(f"IPv4 header of {hlen} bytes in {len(data)} bytes")
    if total < hlen or total > len(data):
        raise MalformedFrame(f"IPv4 total length {total} does not fit the {len(data)} bytes received")
    if checksum(bytes(data[:hlen])) != 0:
        raise BadChecksum("bad IPv4 header checksum")
    return IPv4(ip_to_str(src), ip_to_str(dst), proto, ttl, ident, tos,
                bool(frag & IP_DF), bool(frag & IP_MF), (frag & IP_OFFMASK) * 8,
                hlen, bytes(data[hlen:total]))


def ipv4_frame(dst_mac: bytes, src_mac: bytes, packet: bytes) -> bytes:
    return build_ethernet(dst_mac, src_mac, ETH_P_IP, packet)


# --- ICMP -------------------------------------------------------------------

@dataclass(frozen=True)
class Icmp:
    type: int
    code: int
    ident: int          # the two halves of the rest-of-header word, which
    seq: int            # echo messages use as identifier and sequence number
    payload: bytes


def build_icmp_echo(icmp_type: int, ident: int, seq: int, payload: bytes) -> bytes:
    message = bytearray(_ICMP.pack(icmp_type, 0, 0, ident & 0xFFFF, seq & 0xFFFF) + payload)
    struct.pack_into("!H", message, 2, checksum(bytes(message)))
    return bytes(message)


def parse_icmp(data: bytes) -> Icmp:
    if len(data) < ICMP_HLEN:
        raise MalformedFrame(f"ICMP message of {len(data)} bytes is shorter than its header")
    if checksum(bytes(data)) != 0:
        raise BadChecksum("bad ICMP checksum")
    icmp_type, code, _, ident, seq = _ICMP.unpack_from(data)
    return Icmp(icmp_type, code, ident, seq, bytes(data[ICMP_HLEN:]))


# --- UDP --------------------------------------------------------------------

@dataclass(frozen=True)
class Udp:
    sport: int
    dport: int
    payload: bytes
    checksummed: bool   # False when the sender sent 0: no checksum


def build_udp(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    length = UDP_HLEN + len(payload)
    if length > 0xFFFF:
        raise ValueError(f"UDP datagram of {length} bytes exceeds 65535")
    datagram = bytearray(_UDP.pack(sport, dport, length, 0) + payload)
    pseudo = _pseudo_header(ip_to_bytes(src), ip_to_bytes(dst), IPPROTO_UDP, length)
    # a computed 0 goes out as all ones, since 0 means "no checksum"
    struct.pack_into("!H", datagram, 6, checksum(pseudo + bytes(datagram)) or 0xFFFF)
    return bytes(datagram)


def parse_udp(data: bytes, src: str, dst: str) -> Udp:
    """src and dst are the enclosing IPv4 header's, for the pseudo-header."""
    if len(data) < UDP_HLEN:
        raise MalformedFrame(f"UDP datagram of {len(data)} bytes is shorter than its header")
    sport, dport, length, sent = _UDP.unpack_from(data)
    if length < UDP_HLEN or length > len(data):
        raise MalformedFrame(f"UDP length {length} does not fit the {len(data)} bytes received")
    datagram = bytes(data[:length])
    if sent:
        pseudo = _pseudo_header(ip_to_bytes(src), ip_to_bytes(dst), IPPROTO_UDP, length)
        if checksum(pseudo + datagram) != 0:
            raise BadChecksum("bad UDP checksum")
    return Udp(sport, dport, datagram[UDP_HLEN:], bool(sent))


# --- TCP (headers only: no connections here) --------------------------------

@dataclass(frozen=True)
class Tcp:
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int
    payload: bytes

    @property
    def is_syn(self) -> bool:
        """The first segment of an active open."""
        return bool(self.flags & TCP_SYN) and not self.flags & TCP_ACK


def build_tcp(src: str, dst: str, sport: int, dport: int, seq: int, ack: int,
              flags: int, window: int = 64240, payload: bytes = b"") -> bytes:
    segment = bytearray(_TCP.pack(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                                  (TCP_HLEN // 4) << 4, flags, window, 0, 0) + payload)
    pseudo = _pseudo_header(ip_to_bytes(src), ip_to_bytes(dst), IPPROTO_TCP, len(segment))
    struct.pack_into("!H", segment, 16, checksum(pseudo + bytes(segment)))
    return bytes(segment)


def parse_tcp(data: bytes, src: str, dst: str) -> Tcp:
    if len(data) < TCP_HLEN:
        raise MalformedFrame(f"TCP segment of {len(data)} bytes is shorter than its header")
    sport, dport, seq, ack, offset, flags, window, _, _ = _TCP.unpack_from(data)
    hlen = (offset >> 4) * 4
    if hlen < TCP_HLEN or hlen > len(data):
        raise MalformedFrame(f"TCP data offset {hlen} does not fit the {len(data)} bytes received")
    pseudo = _pseudo_header(ip_to_bytes(src), ip_to_bytes(dst), IPPROTO_TCP, len(data))
    if checksum(pseudo + bytes(data)) != 0:
        raise BadChecksum("bad TCP checksum")
    return Tcp(sport, dport, seq, ack, flags, window, bytes(data[hlen:]))
