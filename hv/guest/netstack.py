"""A guest kernel's IP stack, as small as a ping and a UDP socket need:
ARP with a cache and a queue of packets waiting for an answer, an ICMP
echo responder, a ping client, and UDP sockets by port.

It is plain data driven from outside: ``receive`` takes one frame and
returns the frames to send in answer, the senders return the frames to
send, and ``poll`` runs the ARP retransmission timer. Whoever drives it
moves the frames (through netfront's rings) and keeps the time; nothing
here reads a clock or draws a random number, so the same calls give the
same bytes.

The constants are Linux's defaults, so a guest behaves on the wire as a
Linux guest does: three ARP probes a second apart, then the waiting
packets are dropped; echo requests to broadcast are ignored."""

from __future__ import annotations

from dataclasses import dataclass, field

from hv.guest.ether import (
    ARPOP_REPLY,
    ARPOP_REQUEST,
    BROADCAST,
    ETH_P_ARP,
    ETH_P_IP,
    ICMP_ECHO,
    ICMP_ECHOREPLY,
    IPPROTO_ICMP,
    IPPROTO_UDP,
    IPV4_ANY,
    IPV4_BROADCAST,
    BadChecksum,
    MalformedFrame,
    arp_reply,
    arp_request,
    build_icmp_echo,
    build_ipv4,
    build_udp,
    ip_to_bytes,
    ipv4_frame,
    is_valid_unicast_mac,
    parse_arp,
    parse_ethernet,
    parse_icmp,
    parse_ipv4,
    parse_udp,
)

# why a frame was dropped: the keys of NetStack.drops
NOT_FOR_ME = "not for me"
BAD_CHECKSUM = "bad checksum"
MALFORMED = "malformed"
UNKNOWN_PROTOCOL = "unknown protocol"
UNHANDLED_ICMP = "unhandled icmp type"
NO_SOCKET = "no socket"
SOCKET_FULL = "socket buffer full"
FRAGMENT = "fragment"
BROADCAST_ECHO = "broadcast echo ignored"
UNSOLICITED_REPLY = "unsolicited echo reply"
ARP_QUEUE_FULL = "arp queue full"
ARP_FAILED = "arp failed"

ARP_RETRANS_NS = 1_000_000_000      # neigh/default/retrans_time_ms
ARP_MAX_PROBES = 3                  # neigh/default/mcast_solicit
ARP_QUEUE_MAX = 101                 # neigh/default/unres_qlen
UDP_QUEUE_MAX = 256                 # a receive buffer's worth of small datagrams


@dataclass(frozen=True)
class Datagram:
    src_ip: str
    sport: int
    dport: int
    payload: bytes
    received_ns: int


@dataclass(frozen=True)
class EchoReply:
    src_ip: str
    ident: int
    seq: int
    ttl: int
    size: int           # ICMP payload bytes, as ping reports them
    rtt_ns: int
    received_ns: int


@dataclass
class Resolution:
    """An address being resolved: the probes sent so far and the IPv4
    datagrams that wait for its MAC address."""
    probes: int
    next_probe_ns: int
    packets: list[bytes] = field(default_factory=list)


class NetStack:
    def __init__(self, mac: bytes, ip: str | None = None, ip_id: int = 0):
        if len(mac) != 6 or not is_valid_unicast_mac(mac):
            raise ValueError("a NIC's MAC address is 6 bytes, unicast, not all zero")
        self.mac = bytes(mac)
        self.ip: str | None = None
        self.drops: dict[str, int] = {}
        self.resolving: dict[str, Resolution] = {}
        self.set_ip(ip)
        self.next_ip_id = ip_id & 0xFFFF
        self.arp_cache: dict[str, bytes] = {}
        self.sockets: dict[int, list[Datagram]] = {}
        self.pings: dict[tuple[str, int, int], int] = {}    # (dst, ident, seq) -> sent at
        self.echo_replies: list[EchoReply] = []
        self.rx_frames = 0

    def set_ip(self, ip: str | None) -> None:
        """Configure (or remove) the address. Datagrams still waiting for
        ARP carry the old source address, so they go."""
        if ip is not None:
            ip_to_bytes(ip)
        if ip != self.ip:
            for waiting in self.resolving.values():
                self._drop(ARP_FAILED, len(waiting.packets))
            self.resolving = {}
        self.ip = ip

    # --- receiving ----------------------------------------------------------

    def receive(self, frame: bytes, now_ns: int) -> list[bytes]:
        """Take one frame off the wire; return the frames to send in answer."""
        self.rx_frames += 1
        try:
            eth = parse_ethernet(frame)
        except MalformedFrame:
            return self._drop(MALFORMED)
        # no promiscuous mode and no multicast groups joined
        if eth.dst != self.mac and eth.dst != BROADCAST:
            return self._drop(NOT_FOR_ME)
        if eth.ethertype == ETH_P_ARP:
            return self._arp_in(eth.payload)
        if eth.ethertype == ETH_P_IP:
            return self._ip_in(eth.payload, now_ns)
        return self._drop(UNKNOWN_PROTOCOL)

    def _drop(self, reason: str, count: int = 1) -> list[bytes]:
        self.drops[reason] = self.drops.get(reason, 0) + count
        return []

    def _arp_in(self, payload: bytes) -> list[bytes]:
        try:
            arp = parse_arp(payload)
        except MalformedFrame:
            return self._drop(MALFORMED)
        if arp is None:
            return self._drop(UNKNOWN_PROTOCOL)
        if self.ip is None:
            return self._drop(NOT_FOR_ME)
        learnable = arp.spa != IPV4_ANY and is_valid_unicast_mac(arp.sha)
        # RFC 826: refresh an entry we already have (or are resolving)
        # whoever the packet is for. A new entry comes only from a request
        # to us: Linux (arp_accept=0) ignores replies it did not ask for.
        known = arp.spa in self.arp_cache or arp.spa in self.resolving
        asked = arp.tpa == self.ip and arp.op == ARPOP_REQUEST
        out: list[bytes] = []
        if learnable and (known or asked):
            out += self._learn(arp.spa, arp.sha)
        if arp.tpa != self.ip:
            return out if known else self._drop(NOT_FOR_ME)
        if arp.op == ARPOP_REQUEST:
            # a probe from 0.0.0.0 is answered too: that is how an address is defended
            out.append(arp_reply(self.mac, self.ip, arp.sha, arp.spa))
        elif arp.op != ARPOP_REPLY:
            return self._drop(UNKNOWN_PROTOCOL)
        return out

    def _learn(self, ip: str, mac: bytes) -> list[bytes]:
        self.arp_cache[ip] = mac
        waiting = self.resolving.pop(ip, None)
        if waiting is None:
            return []
        return [ipv4_frame(mac, self.mac, packet) for packet in waiting.packets]

    def _ip_in(self, data: bytes, now_ns: int) -> list[bytes]:
        try:
            packet = parse_ipv4(data)
        except BadChecksum:
            return self._drop(BAD_CHECKSUM)
        except MalformedFrame:
            return self._drop(MALFORMED)
        broadcast = packet.dst == IPV4_BROADCAST
        if not broadcast and (self.ip is None or packet.dst != self.ip):
            return self._drop(NOT_FOR_ME)
        if packet.is_fragment:
            return self._drop(FRAGMENT)       # no reassembly in so small a stack
        if packet.proto == IPPROTO_ICMP:
            return self._icmp_in(packet, broadcast, now_ns)
        if packet.proto == IPPROTO_UDP:
            return self._udp_in(packet, now_ns)
        return self._drop(UNKNOWN_PROTOCOL)

    def _icmp_in(self, packet, broadcast: bool, now_ns: int) -> list[bytes]:
        try:
            icmp = parse_icmp(packet.payload)
        except BadChecksum:
            return self._drop(BAD_CHECKSUM)
        except MalformedFrame:
            return self._drop(MALFORMED)
        if icmp.type == ICMP_ECHO:
            if broadcast:
                return self._drop(BROADCAST_ECHO)   # net.ipv4.icmp_echo_ignore_broadcasts
            reply = build_icmp_echo(ICMP_ECHOREPLY, icmp.ident, icmp.seq, icmp.payload)
            # the kernel's own ICMP socket sends with path-MTU discovery off: no DF
            return self._send_ip(packet.src, IPPROTO_ICMP, reply, df=False, now_ns=now_ns)
        if icmp.type == ICMP_ECHOREPLY:
            sent = self.pings.pop((packet.src, icmp.ident, icmp.seq), None)
            if sent is None:
                return self._drop(UNSOLICITED_REPLY)
            self.echo_replies.append(EchoReply(packet.src, icmp.ident, icmp.seq, packet.ttl,
                                               len(icmp.payload), now_ns - sent, now_ns))
            return []
        return self._drop(UNHANDLED_ICMP)

    def _udp_in(self, packet, now_ns: int) -> list[bytes]:
        try:
            udp = parse_udp(packet.payload, packet.src, packet.dst)
        except BadChecksum:
            return self._drop(BAD_CHECKSUM)
        except MalformedFrame:
            return self._drop(MALFORMED)
        queue = self.sockets.get(udp.dport)
        if queue is None:
            return self._drop(NO_SOCKET)
        if len(queue) >= UDP_QUEUE_MAX:
            return self._drop(SOCKET_FULL)
        queue.append(Datagram(packet.src, udp.sport, udp.dport, udp.payload, now_ns))
        return []

    # --- sending ------------------------------------------------------------

    def _take_ip_id(self) -> int:
        ident = self.next_ip_id
        self.next_ip_id = (ident + 1) & 0xFFFF
        return ident

    def _need_address(self, dst_ip: str) -> None:
        ip_to_bytes(dst_ip)
        if self.ip is None and dst_ip != IPV4_BROADCAST:
            raise ValueError("no IPv4 address configured: only broadcast can be sent")

    def _send_ip(self, dst_ip: str, proto: int, payload: bytes, df: bool,
                 now_ns: int) -> list[bytes]:
        packet = build_ipv4(self.ip or IPV4_ANY, dst_ip, proto, payload,
                            self._take_ip_id(), df=df)
        if dst_ip == IPV4_BROADCAST:
            return [ipv4_frame(BROADCAST, self.mac, packet)]
        if dst_ip == self.ip:
            # loopback: never on the wire, answered at once
            return self._ip_in(packet, now_ns)
        mac = self.arp_cache.get(dst_ip)
        if mac is not None:
            return [ipv4_frame(mac, self.mac, packet)]
        waiting = self.resolving.get(dst_ip)
        if waiting is not None:
            if len(waiting.packets) >= ARP_QUEUE_MAX:
                del waiting.packets[0]      # Linux drops the oldest
                self._drop(ARP_QUEUE_FULL)
            waiting.packets.append(packet)
            return []
        self.resolving[dst_ip] = Resolution(1, now_ns + ARP_RETRANS_NS, [packet])
        return [arp_request(self.mac, self.ip, dst_ip)]

    def send_echo(self, dst_ip: str, ident: int, seq: int, payload: bytes,
                  now_ns: int) -> list[bytes]:
        """One ping. The reply's RTT is measured from now_ns, the moment
        ping handed the request to the kernel, so it includes any ARP
        resolution, as a real first ping's does."""
        self._need_address(dst_ip)
        ident, seq = ident & 0xFFFF, seq & 0xFFFF
        self.pings[(dst_ip, ident, seq)] = now_ns
        request = build_icmp_echo(ICMP_ECHO, ident, seq, payload)
        # ping's socket does path-MTU discovery: DF set
        return self._send_ip(dst_ip, IPPROTO_ICMP, request, df=True, now_ns=now_ns)

    def udp_bind(self, port: int) -> None:
        _check_port(port)
        if port in self.sockets:
            raise ValueError(f"UDP port {port} is already bound")
        self.sockets[port] = []

    def udp_close(self, port: int) -> None:
        if self.sockets.pop(port, None) is None:
            raise ValueError(f"UDP port {port} is not bound")

    def udp_send(self, dst_ip: str, sport: int, dport: int, payload: bytes,
                 now_ns: int = 0) -> list[bytes]:
        """now_ns dates the ARP request, if one is needed, for its retries."""
        _check_port(sport)
        _check_port(dport)
        self._need_address(dst_ip)
        datagram = build_udp(self.ip or IPV4_ANY, dst_ip, sport, dport, payload)
        return self._send_ip(dst_ip, IPPROTO_UDP, datagram, df=True, now_ns=now_ns)

    def udp_recv(self, port: int) -> Datagram | None:
        queue = self.sockets.get(port)
        if queue is None:
            raise ValueError(f"UDP port {port} is not bound")
        return queue.pop(0) if queue else None

    # --- the ARP timer ------------------------------------------------------

    def next_deadline(self) -> int | None:
        """When poll next has work to do, or None."""
        return min((r.next_probe_ns for r in self.resolving.values()), default=None)

    def poll(self, now_ns: int) -> list[bytes]:
        """Probe again for addresses still unresolved; give up on those
        probed ARP_MAX_PROBES times, dropping what waited for them."""
        out: list[bytes] = []
        for ip, waiting in list(self.resolving.items()):
            if now_ns < waiting.next_probe_ns:
                continue
            if waiting.probes >= ARP_MAX_PROBES:
                del self.resolving[ip]
                self._drop(ARP_FAILED, len(waiting.packets))
                continue
            waiting.probes += 1
            waiting.next_probe_ns += ARP_RETRANS_NS
            out.append(arp_request(self.mac, self.ip, ip))
        return out


def _check_port(port: int) -> None:
    if not 0 < port <= 0xFFFF:
        raise ValueError(f"UDP port {port} is outside 1..65535")
