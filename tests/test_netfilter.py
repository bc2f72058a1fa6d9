"""A backend's per-vif checks (hv/guest/netfilter.py): anti-spoofing, log
rules, netback's credit shaper and xl's rate= parser."""

from __future__ import annotations

import pickle

import pytest

from hv.guest import ether
from hv.guest.ether import BROADCAST, TCP_ACK, TCP_SYN
from hv.guest.netfilter import LogRule, Shaper, SpoofRules, log_lines

GUEST = bytes.fromhex("00163e000001")
OTHER = bytes.fromhex("00163e0000ff")
PEER = bytes.fromhex("00163e000002")
MS = 1_000_000

RULES = SpoofRules("vif1.0", macs=(GUEST,), ips=("10.0.0.1",))


def udp_frame(src_mac: bytes, src_ip: str, dst_ip: str, sport: int, dport: int) -> bytes:
    datagram = ether.build_udp(src_ip, dst_ip, sport, dport, b"x")
    return ether.ipv4_frame(BROADCAST, src_mac,
                            ether.build_ipv4(src_ip, dst_ip, ether.IPPROTO_UDP, datagram, 1))


def tcp_frame(flags: int) -> bytes:
    segment = ether.build_tcp("10.0.0.1", "10.0.0.2", 1234, 80, 1, 0, flags)
    return ether.ipv4_frame(PEER, GUEST,
                            ether.build_ipv4("10.0.0.1", "10.0.0.2", ether.IPPROTO_TCP, segment, 1))


# --- anti-spoofing ---------------------------------------------------------

def test_own_addresses_pass():
    assert RULES.check(udp_frame(GUEST, "10.0.0.1", "10.0.0.2", 1, 2)) is None
    assert RULES.check(ether.arp_request(GUEST, "10.0.0.1", "10.0.0.2")) is None


def test_spoofed_sources_are_refused_with_the_reason():
    assert RULES.check(udp_frame(OTHER, "10.0.0.1", "10.0.0.2", 1, 2)) == \
        "vif1.0: source MAC 00:16:3e:00:00:ff is not the vif's"
    assert RULES.check(udp_frame(GUEST, "10.0.0.66", "10.0.0.2", 1, 2)) == \
        "vif1.0: source IP 10.0.0.66 is not the vif's"


def test_arp_sender_addresses_are_checked():
    # the Ethernet source is right, the ARP sender is not
    lying_ip = ether.build_ethernet(BROADCAST, GUEST, ether.ETH_P_ARP,
                                    ether.build_arp(1, GUEST, "10.0.0.9", bytes(6), "10.0.0.2"))
    assert RULES.check(lying_ip) == "vif1.0: ARP sender IP 10.0.0.9 is not the vif's"
    lying_mac = ether.build_ethernet(BROADCAST, GUEST, ether.ETH_P_ARP,
                                     ether.build_arp(2, OTHER, "10.0.0.1", PEER, "10.0.0.2"))
    assert RULES.check(lying_mac) == "vif1.0: ARP sender MAC 00:16:3e:00:00:ff is not the vif's"
    probe = ether.arp_request(GUEST, "0.0.0.0", "10.0.0.1")
    assert RULES.check(probe) is None


def test_dhcp_is_always_allowed():
    assert RULES.check(udp_frame(GUEST, "0.0.0.0", "255.255.255.255", 68, 67)) is None
    assert RULES.check(udp_frame(GUEST, "0.0.0.0", "255.255.255.255", 67, 68)) == \
        "vif1.0: source IP 0.0.0.0 is not the vif's"


def test_no_addresses_configured_allows_anything():
    anything = SpoofRules("vif2.0")
    assert anything.check(udp_frame(OTHER, "192.168.1.1", "10.0.0.2", 1, 2)) is None
    mac_only = SpoofRules("vif2.0", macs=(GUEST,))
    assert mac_only.check(udp_frame(GUEST, "192.168.1.1", "10.0.0.2", 1, 2)) is None


def test_other_ethertypes_pass_and_broken_frames_do_not():
    ipv6 = ether.build_ethernet(PEER, GUEST, ether.ETH_P_IPV6, bytes(40))
    assert RULES.check(ipv6) is None
    short_ip = ether.build_ethernet(PEER, GUEST, ether.ETH_P_IP, b"\x45\x00", pad=False)
    assert RULES.check(short_ip) == "vif1.0: IPv4 packet of 2 bytes is shorter than its header"
    assert RULES.check(b"\x00" * 6) == "vif1.0: frame of 6 bytes is shorter than an Ethernet header"


# --- logging ----------------------------------------------------------------

def test_log_tcp_syn():
    rule = LogRule.parse("log tcp syn")
    assert rule.match("vif1.0", tcp_frame(TCP_SYN)) == "vif1.0: TCP SYN 10.0.0.1:1234 -> 10.0.0.2:80"
    assert rule.match("vif1.0", tcp_frame(TCP_SYN | TCP_ACK)) is None
    assert rule.match("vif1.0", tcp_frame(TCP_ACK)) is None
    assert rule.match("vif1.0", udp_frame(GUEST, "10.0.0.1", "10.0.0.2", 1, 2)) is None
    corrupt = bytearray(tcp_frame(TCP_SYN))
    corrupt[14 + 20 + 17] ^= 0xFF       # the TCP checksum's low byte
    assert rule.match("vif1.0", bytes(corrupt)) is None


def test_other_log_rules():
    frame = udp_frame(GUEST, "10.0.0.1", "10.0.0.2", 1000, 53)
    ping = ether.ipv4_frame(PEER, GUEST, ether.build_ipv4(
        "10.0.0.1", "10.0.0.2", ether.IPPROTO_ICMP,
        ether.build_icmp_echo(ether.ICMP_ECHO, 7, 3, b""), 1))
    rules = [LogRule.parse(text) for text in ("log udp", "log icmp", "log arp", "log TCP  SYN")]
    assert log_lines(rules, "vif1.0", frame) == ["vif1.0: UDP 10.0.0.1:1000 -> 10.0.0.2:53 len 1"]
    assert log_lines(rules, "vif1.0", ping) == ["vif1.0: ICMP echo request id 7 seq 3 10.0.0.1 -> 10.0.0.2"]
    assert log_lines(rules, "vif1.0", ether.arp_request(GUEST, "10.0.0.1", "10.0.0.2")) == \
        ["vif1.0: ARP who-has 10.0.0.2 tell 10.0.0.1"]
    assert log_lines(rules, "vif1.0", ether.arp_reply(PEER, "10.0.0.2", GUEST, "10.0.0.1")) == \
        ["vif1.0: ARP 10.0.0.2 is-at 00:16:3e:00:00:02"]
    assert log_lines(rules, "vif1.0", tcp_frame(TCP_SYN)) == ["vif1.0: TCP SYN 10.0.0.1:1234 -> 10.0.0.2:80"]


def test_log_rule_errors():
    with pytest.raises(ValueError, match="does not start with 'log'"):
        LogRule.parse("drop tcp syn")
    with pytest.raises(ValueError, match="must be one of 'tcp syn', 'udp', 'icmp', 'arp'"):
        LogRule.parse("log tcp fin")


# --- rate= ------------------------------------------------------------------

# --- the shaper ------------------------------------------------------------

def test_shaper_spends_credit_then_waits_for_the_window():
    shaper = Shaper(25_000, 20 * MS)       # rate=10Mb/s@20ms
    assert (shaper.credit_bytes, shaper.interval_ns) == (25_000, 20 * MS)
    assert shaper.admit(10_000, 0) and shaper.admit(10_000, 1 * MS)
    assert not shaper.admit(10_000, 2 * MS)         # 5000 left
    assert shaper.next_at(2 * MS) == 20 * MS
    assert not shaper.admit(10_000, 10 * MS)        # the timer is still pending
    assert shaper.admit(10_000, 20 * MS)            # 5000 + 25000 credit
    assert shaper.remaining == 20_000
    assert shaper.admit(1500, 20 * MS) and shaper.remaining == 18_500
    assert shaper.limited == 2


def test_small_packets_go_while_credit_lasts():
    shaper = Shaper(3000, 10 * MS)
    assert [shaper.admit(1000, t) for t in range(4)] == [True, True, True, False]
    # the next window opens at 10 ms
    assert shaper.next_at(5) == 10 * MS
    assert shaper.admit(1000, 10 * MS) and shaper.remaining == 2000


def test_a_packet_bigger_than_one_interval_waits_for_credit_to_build():
    shaper = Shaper(25_000, 20 * MS)
    assert not shaper.admit(60_000, 0)
    assert shaper.next_at(0) == 20 * MS
    assert not shaper.admit(60_000, 20 * MS)        # 50000: still short
    assert shaper.next_at(20 * MS) == 40 * MS
    assert shaper.admit(60_000, 40 * MS)            # 75000
    assert shaper.remaining == 15_000


def test_credit_is_capped_at_128k():
    shaper = Shaper(100_000, 10 * MS)
    assert not shaper.admit(110_000, 0)
    assert shaper.admit(110_000, 10 * MS)           # min(200000, 131072) - 110000
    assert shaper.remaining == 21_072
    with pytest.raises(ValueError, match="exceeds the largest burst, 131072"):
        shaper.admit(131_073, 20 * MS)


def test_late_packet_gets_credit_twice_as_netback_gives_it():
    # after a quiet spell the window restarts now, but the timer is set for
    # the end of the old window, already past: credit is added again at once
    shaper = Shaper(60_000, 10 * MS)
    assert shaper.admit(60_000, 0)
    assert not shaper.admit(70_000, 100 * MS)
    assert shaper.remaining == 60_000
    assert shaper.next_at(100 * MS) == 100 * MS
    assert shaper.admit(70_000, 100 * MS)
    assert shaper.remaining == 50_000


def test_shaper_state_pickles():
    shaper = Shaper(25_000, 20 * MS, now_ns=5)
    shaper.admit(20_000, 5)
    shaper.admit(20_000, 6)
    copy = pickle.loads(pickle.dumps(shaper))
    assert [copy.admit(20_000, t) for t in (7, 25 * MS, 26 * MS)] == \
        [shaper.admit(20_000, t) for t in (7, 25 * MS, 26 * MS)] == [False, True, False]


def test_shaper_refuses_negative_settings():
    with pytest.raises(ValueError, match="negative"):
        Shaper(-1, 10)
    with pytest.raises(ValueError, match="negative"):
        Shaper(1, -10)
