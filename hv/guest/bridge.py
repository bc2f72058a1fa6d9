"""The Linux software bridge a backend domain puts its vifs on (xenbr0):
a learning switch. Each frame teaches the bridge which port its source
address lives behind; frames for an address it knows go to that port
alone, everything else floods to every other port. An address not heard
from for the ageing time (300 s, Linux's default) is forgotten.

Spanning tree is off, as on a Xen host's bridge, so the STP group address
floods like other multicast while the other IEEE link-local groups
(pause frames, LLDP, 802.1X) stay on their segment.

Ports are names; the bridge only decides where a frame goes, and its
caller delivers it. Times are virtual nanoseconds from that caller."""

from __future__ import annotations

import os
from dataclasses import dataclass

from hv.guest.ether import ETH_HLEN, is_multicast_mac, is_valid_unicast_mac, mac_to_str
from hv.guest.pcap import PcapWriter

AGEING_NS = 300 * 1_000_000_000     # BR_DEFAULT_AGEING_TIME
GC_INTERVAL_NS = 1_000_000_000
LINK_LOCAL_PREFIX = bytes.fromhex("0180c20000")
STP_GROUP = bytes.fromhex("0180c2000000")

# why a frame went nowhere: the keys of Bridge.drops
RUNT = "runt frame"
INVALID_SOURCE = "invalid source address"
LINK_LOCAL = "link-local group"
SAME_PORT = "destination on ingress port"
NO_OTHER_PORT = "no other port"


@dataclass
class PortStats:
    rx_packets: int = 0     # entering the bridge through this port
    rx_bytes: int = 0
    tx_packets: int = 0     # sent out of this port by the bridge
    tx_bytes: int = 0
    dropped: int = 0        # entered here and went nowhere


@dataclass
class FdbEntry:
    port: str
    updated_ns: int


class Bridge:
    def __init__(self, name: str = "xenbr0", ageing_ns: int = AGEING_NS):
        if ageing_ns < 0:
            raise ValueError(f"ageing time {ageing_ns} ns is negative")
        self.name = name
        self.ageing_ns = ageing_ns      # 0 forgets at once: the bridge acts as a hub
        self.ports: dict[str, PortStats] = {}
        self.fdb: dict[bytes, FdbEntry] = {}
        self.drops: dict[str, int] = {}
        self.capture: PcapWriter | None = None
        self._next_gc_ns = 0

    # --- ports --------------------------------------------------------------

    def add_port(self, port: str) -> None:
        if port in self.ports:
            raise ValueError(f"{port} is already a port of {self.name}")
        self.ports[port] = PortStats()

    def remove_port(self, port: str) -> None:
        if self.ports.pop(port, None) is None:
            raise ValueError(f"{port} is not a port of {self.name}")
        self.fdb = {mac: e for mac, e in self.fdb.items() if e.port != port}

    # --- the forwarding database -------------------------------------------

    def _expired(self, entry: FdbEntry, now_ns: int) -> bool:
        return now_ns >= entry.updated_ns + self.ageing_ns

    def lookup(self, mac: bytes, now_ns: int) -> str | None:
        entry = self.fdb.get(bytes(mac))
        if entry is None:
            return None
        if self._expired(entry, now_ns):
            del self.fdb[bytes(mac)]
            return None
        return entry.port

    def fdb_entries(self, now_ns: int) -> list[tuple[bytes, str, int]]:
        """(MAC, port, age in ns) of the live entries, sorted by port then MAC."""
        live = [(mac, e.port, now_ns - e.updated_ns) for mac, e in self.fdb.items()
                if not self._expired(e, now_ns)]
        return sorted(live, key=lambda row: (row[1], row[0]))

    def _collect_garbage(self, now_ns: int) -> None:
        # lookups expire lazily; the sweep keeps addresses never looked up
        # again from piling up
        if now_ns < self._next_gc_ns:
            return
        self._next_gc_ns = now_ns + GC_INTERVAL_NS
        self.fdb = {mac: e for mac, e in self.fdb.items() if not self._expired(e, now_ns)}

    # --- forwarding ---------------------------------------------------------

    def forward(self, in_port: str, frame: bytes, now_ns: int) -> list[str]:
        """The ports a frame entering through in_port is to be sent out of."""
        stats = self.ports.get(in_port)
        if stats is None:
            raise ValueError(f"{in_port} is not a port of {self.name}")
        stats.rx_packets += 1
        stats.rx_bytes += len(frame)
        if self.capture is not None:
            self.capture.record(now_ns, frame)
        if len(frame) < ETH_HLEN:
            return self._drop(stats, RUNT)
        dst, src = bytes(frame[0:6]), bytes(frame[6:12])
        if not is_valid_unicast_mac(src):
            return self._drop(stats, INVALID_SOURCE)
        self._collect_garbage(now_ns)
        self.fdb[src] = FdbEntry(in_port, now_ns)
        if dst[:5] == LINK_LOCAL_PREFIX and dst[5] <= 0x0F and dst != STP_GROUP:
            return self._drop(stats, LINK_LOCAL)
        if is_multicast_mac(dst):
            out = [p for p in self.ports if p != in_port]
        else:
            known = self.lookup(dst, now_ns)
            if known == in_port:
                return self._drop(stats, SAME_PORT)
            out = [known] if known is not None else [p for p in self.ports if p != in_port]
        if not out:
            return self._drop(stats, NO_OTHER_PORT)
        for port in out:
            self.ports[port].tx_packets += 1
            self.ports[port].tx_bytes += len(frame)
        return out

    def _drop(self, stats: PortStats, reason: str) -> list[str]:
        stats.dropped += 1
        self.drops[reason] = self.drops.get(reason, 0) + 1
        return []

    # --- capture ------------------------------------------------------------

    def capture_start(self, path: str | os.PathLike) -> None:
        """Write every frame entering the bridge to a pcap file, stamped
        with its virtual time."""
        if self.capture is not None:
            raise ValueError(f"{self.name} is already capturing to {self.capture.path}")
        self.capture = PcapWriter(path)

    def capture_stop(self) -> None:
        if self.capture is None:
            raise ValueError(f"{self.name} is not capturing")
        self.capture.close()
        self.capture = None

    def dump(self, now_ns: int) -> str:
        """The forwarding database as brctl showmacs lays it out."""
        lines = [f"{self.name}: port\tmac addr\t\tageing timer"]
        for mac, port, age in self.fdb_entries(now_ns):
            lines.append(f"  {port}\t{mac_to_str(mac)}\t{age / 1e9:8.2f}")
        return "\n".join(lines)
