"""Devices in a snapshot: a machine with disks and a network, saved in
the middle of their I/O and restored, goes on exactly as the original does;
and the same machine built twice gives the same trace."""

from __future__ import annotations

from hv.host import Host
from tests.devices import console, device_host, guest, image, settle, vbd
from tests.test_netif import vif


def build(tmp_path, name: str):
    host, xs = device_host()
    path = image(tmp_path, f"{name}.raw")
    _, a = guest(host, xs, "alpha", ["sleep 10ms", "ping 10.0.0.2 -c 4 -i 0.05",
                                     "dd write xvda 1M bs=8k", "dd verify xvda 1M"],
                 [vif(1), vbd(path)])
    _, b = guest(host, xs, "beta", ["udp-echo 9000 3"], [vif(2)])
    return host, a, b, path


def test_a_restored_machine_goes_on_as_the_original(tmp_path):
    host, a, b, path = build(tmp_path, "one")
    settle(host, 120)                                   # pings going, dd not yet
    saved = host.snapshot()
    settle(host, 800)
    original = console(host, a)
    original_trace = [r[1:] for r in host.xen.trace][-200:]
    assert "verify ok" in original

    restored = Host.restore(saved)
    settle(restored, 800)
    assert console(restored, a) == original
    assert [r[1:] for r in restored.xen.trace][-200:] == original_trace
    restored.close()


def strip(host):
    """The trace, less the records that name the image files (their paths differ)."""
    return [(r.time, r.domid, r.kind, r.name, repr(r.result)) for r in host.xen.trace
            if "raw" not in repr(r.args)]


def test_the_same_machine_twice_gives_the_same_trace(tmp_path):
    first, a1, _, _ = build(tmp_path, "first")
    second, a2, _, _ = build(tmp_path, "second")
    settle(first, 500)
    settle(second, 500)
    assert console(first, a1) == console(second, a2)
    assert strip(first) == strip(second)
