"""What a backend domain checks on each vif's traffic: anti-spoofing, log
rules, the transmit rate shaper of netback, and the parser for the
``rate=`` keyword of a vif spec.

Anti-spoofing follows Xen's vif hotplug scripts: with ``ip=`` set, a
guest may send IPv4 only from those addresses, and may always ask a DHCP
server (UDP 68 -> 67) for one; with no address set, anything goes. On top
of that (as ebtables rules would) the source MAC and ARP's sender
addresses are held to the vif's own."""

from __future__ import annotations

from dataclasses import dataclass

from hv.guest.ether import (
    ARPOP_REPLY,
    ARPOP_REQUEST,
    ETH_P_ARP,
    ETH_P_IP,
    ICMP_ECHO,
    ICMP_ECHOREPLY,
    IPPROTO_ICMP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV4_ANY,
    MalformedFrame,
    mac_to_str,
    parse_arp,
    parse_ethernet,
    parse_icmp,
    parse_ipv4,
    parse_tcp,
    parse_udp,
)

DHCP_CLIENT_PORT = 68
DHCP_SERVER_PORT = 67


# --- anti-spoofing -------------------------------------------------------

@dataclass(frozen=True)
class SpoofRules:
    """Allowed source addresses for the frames one vif sends; an empty
    tuple allows any."""
    vif: str
    macs: tuple[bytes, ...] = ()
    ips: tuple[str, ...] = ()

    def check(self, frame: bytes) -> str | None:
        """None if the frame may enter the bridge, else why not."""
        try:
            eth = parse_ethernet(frame)
        except MalformedFrame as e:
            return f"{self.vif}: {e.reason}"
        if self.macs and eth.src not in self.macs:
            return f"{self.vif}: source MAC {mac_to_str(eth.src)} is not the vif's"
        if eth.ethertype == ETH_P_ARP:
            return self._check_arp(eth.payload)
        if eth.ethertype == ETH_P_IP and self.ips:
            return self._check_ipv4(eth.payload)
        return None

    def _check_arp(self, payload: bytes) -> str | None:
        try:
            arp = parse_arp(payload)
        except MalformedFrame as e:
            return f"{self.vif}: {e.reason}"
        if arp is None:
            return None
        if self.macs and arp.sha not in self.macs:
            return f"{self.vif}: ARP sender MAC {mac_to_str(arp.sha)} is not the vif's"
        # 0.0.0.0 is the sender of an address probe (RFC 5227), which claims nothing
        if self.ips and arp.spa != IPV4_ANY and arp.spa not in self.ips:
            return f"{self.vif}: ARP sender IP {arp.spa} is not the vif's"
        return None

    def _check_ipv4(self, payload: bytes) -> str | None:
        try:
            packet = parse_ipv4(payload)
        except MalformedFrame as e:
            return f"{self.vif}: {e.reason}"
        if packet.src in self.ips:
            return None
        if packet.proto == IPPROTO_UDP and not packet.is_fragment and len(packet.payload) >= 4:
            sport = int.from_bytes(packet.payload[0:2], "big")
            dport = int.from_bytes(packet.payload[2:4], "big")
            if (sport, dport) == (DHCP_CLIENT_PORT, DHCP_SERVER_PORT):
                return None
        return f"{self.vif}: source IP {packet.src} is not the vif's"


# --- logging ---------------------------------------------------------------

LOG_KINDS = ("tcp syn", "udp", "icmp", "arp")


@dataclass(frozen=True)
class LogRule:
    """A rule such as "log tcp syn": which frames leave a line in the log."""
    kind: str

    @classmethod
    def parse(cls, text: str) -> LogRule:
        words = text.split()
        if not words or words[0] != "log":
            raise ValueError(f"log rule {text!r} does not start with 'log'")
        kind = " ".join(words[1:]).lower()
        if kind not in LOG_KINDS:
            raise ValueError(f"log rule {text!r}: what to log must be one of "
                             + ", ".join(repr(k) for k in LOG_KINDS))
        return cls(kind)

    def match(self, vif: str, frame: bytes) -> str | None:
        """The log line for a frame this rule matches, else None. Frames
        too broken to read match nothing: the spoofing check speaks for them."""
        try:
            eth = parse_ethernet(frame)
            if self.kind == "arp":
                return _arp_line(vif, eth) if eth.ethertype == ETH_P_ARP else None
            if eth.ethertype != ETH_P_IP:
                return None
            packet = parse_ipv4(eth.payload)
            if packet.frag_offset:
                return None     # a later fragment carries no transport header
            if self.kind == "tcp syn" and packet.proto == IPPROTO_TCP:
                tcp = parse_tcp(packet.payload, packet.src, packet.dst)
                if tcp.is_syn:
                    return f"{vif}: TCP SYN {packet.src}:{tcp.sport} -> {packet.dst}:{tcp.dport}"
            elif self.kind == "udp" and packet.proto == IPPROTO_UDP:
                udp = parse_udp(packet.payload, packet.src, packet.dst)
                return (f"{vif}: UDP {packet.src}:{udp.sport} -> {packet.dst}:{udp.dport}"
                        f" len {len(udp.payload)}")
            elif self.kind == "icmp" and packet.proto == IPPROTO_ICMP:
                icmp = parse_icmp(packet.payload)
                return f"{vif}: ICMP {_icmp_name(icmp)} {packet.src} -> {packet.dst}"
        except MalformedFrame:
            return None
        return None


def _icmp_name(icmp) -> str:
    if icmp.type in (ICMP_ECHO, ICMP_ECHOREPLY):
        name = "echo request" if icmp.type == ICMP_ECHO else "echo reply"
        return f"{name} id {icmp.ident} seq {icmp.seq}"
    return f"type {icmp.type} code {icmp.code}"


def _arp_line(vif: str, eth) -> str | None:
    arp = parse_arp(eth.payload)
    if arp is None:
        return None
    if arp.op == ARPOP_REQUEST:
        return f"{vif}: ARP who-has {arp.tpa} tell {arp.spa}"
    if arp.op == ARPOP_REPLY:
        return f"{vif}: ARP {arp.spa} is-at {mac_to_str(arp.sha)}"
    return f"{vif}: ARP op {arp.op}"


def log_lines(rules: list[LogRule] | tuple[LogRule, ...], vif: str, frame: bytes) -> list[str]:
    return [line for rule in rules if (line := rule.match(vif, frame)) is not None]


# --- netback's transmit shaper ---------------------------------------------

MAX_BURST = 131072      # netback lets credit build up to a 128 KiB jumbo packet


class Shaper:
    """Credit-based, as Linux netback's transmit side: the guest may send
    ``bytes_per_interval`` bytes each ``interval_ns``.

    Credit is spent by each packet. A packet that does not fit the credit
    left waits: once an interval has passed since the window opened, one
    more interval's worth is added (not "refilled": unused credit is kept),
    capped at max(128 KiB, bytes_per_interval) so that a packet bigger than
    one interval's credit still goes, after enough intervals. If it still
    does not fit, a timer is set for the window's end, when credit is added
    again. Nothing runs on its own here: the caller asks ``admit`` again at
    ``next_at``."""

    def __init__(self, bytes_per_interval: int, interval_ns: int, now_ns: int = 0):
        if bytes_per_interval < 0:
            raise ValueError(f"credit {bytes_per_interval} bytes is negative")
        if interval_ns < 0:
            raise ValueError(f"interval {interval_ns} ns is negative")
        self.credit_bytes = bytes_per_interval
        self.interval_ns = interval_ns
        self.remaining = bytes_per_interval
        self.window_start_ns = now_ns
        self.timer_ns: int | None = None        # the credit timer, when armed
        self.limited = 0                        # packets made to wait

    @property
    def max_burst(self) -> int:
        return max(MAX_BURST, self.credit_bytes)

    def _add_credit(self) -> None:
        self.remaining = min(self.remaining + self.credit_bytes, self.max_burst)

    def admit(self, size: int, now_ns: int) -> bool:
        """Whether a packet of size bytes may go at now_ns; if so its size
        is spent. Ask in time order."""
        if size > self.max_burst:
            # no credit ever covers it; netback refuses such a request before
            # it gets here (a transmit request is at most 64 KiB)
            raise ValueError(f"packet of {size} bytes exceeds the largest burst, {self.max_burst}")
        if self.timer_ns is not None and now_ns >= self.timer_ns:
            self.timer_ns = None
            self._add_credit()
        if size <= self.remaining:
            self.remaining -= size
            return True
        if self.timer_ns is not None:
            self.limited += 1
            return False
        next_credit = self.window_start_ns + self.interval_ns
        if now_ns >= next_credit:
            self.window_start_ns = now_ns
            self._add_credit()
        if size > self.remaining:
            # the timer goes at the end of the old window, which may be now:
            # then the next call adds credit once more straight away
            self.timer_ns = next_credit
            self.window_start_ns = next_credit
            self.limited += 1
            return False
        self.remaining -= size
        return True

    def next_at(self, now_ns: int) -> int:
        """When credit is next added, and a refused packet is worth
        offering again (now_ns if that moment has already come)."""
        when = self.timer_ns if self.timer_ns is not None \
            else self.window_start_ns + self.interval_ns
        return max(when, now_ns)
