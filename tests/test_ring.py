"""The generic shared ring (hv/guest/ring.py) against io/ring.h itself:
tests/c/ring_probe.c drives Xen's macros through a script whose indices
cross 2^32 and prints the page after each step; the same script through
the Python ends must leave the same bytes and the same answers."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from hv.guest.ring import RingEnd, ring_size, shared_ring_init

TESTS = Path(__file__).resolve().parent
PROBE = TESTS / "c" / "ring_probe.c"
BUILD = TESTS / ".build"
REQ, RSP = 16, 8          # the probe's entry sizes; its slots are 16 bytes


def c_script() -> list[tuple[str, int, int, str]]:
    gcc = shutil.which("gcc")
    if gcc is None or not Path("/usr/include/xen/io/ring.h").exists():
        pytest.skip("needs gcc and Xen's public headers (libxen-dev)")
    BUILD.mkdir(exist_ok=True)
    exe = BUILD / f"ring_probe.{os.getpid()}"
    subprocess.run([gcc, "-Wall", "-Werror", "-D__XEN_INTERFACE_VERSION__=0x00040e00",
                    "-o", str(exe), str(PROBE)], check=True, capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    exe.unlink()
    return [(w, int(f), int(n), h) for w, f, n, h in (line.split() for line in out.splitlines())]


def python_script() -> list[tuple[str, int, int, str]]:
    page = bytearray(4096)
    steps = []
    nr = ring_size(4096, REQ)

    def dump(what, flag):
        steps.append((what, int(flag), nr, page[:64 + 16 * 8].hex()))

    shared_ring_init(page)
    front, back = RingEnd(True, REQ), RingEnd(False, REQ)
    start = 0xFFFFFFFD
    struct.pack_into("<IIII", page, 0, start, start + 1, start, start + 1)
    front.prod_pvt = front.cons = back.prod_pvt = back.cons = start
    dump("init", 0)
    for i in range(5):
        front.produce(page, struct.pack("<I", 0x100 + i) + bytes([0xA0 + i]) * 12)
        if i in (1, 4):
            dump("push_requests", front.push(page))
    dump("unconsumed_requests", back.unconsumed(page))
    for i in range(3):
        req_id = struct.unpack_from("<I", back.consume(page))[0]
        back.produce(page, struct.pack("<IhH", req_id, -i, 0))
    dump("push_responses", back.push(page))
    dump("final_check_responses", front.final_check(page) and front.unconsumed(page))
    front.cons = (front.cons + 3) & 0xFFFFFFFF
    dump("final_check_responses", front.final_check(page))
    dump("final_check_requests", back.final_check(page) and back.unconsumed(page))
    back.cons = (back.cons + 2) & 0xFFFFFFFF
    dump("final_check_requests", back.final_check(page))
    return steps


def test_the_ring_leaves_the_bytes_xens_macros_leave():
    expected = c_script()
    got = python_script()
    assert [s[:3] for s in got] == [s[:3] for s in expected]
    for (what, _, _, ours), (_, _, _, xens) in zip(got, expected):
        # The response slots reuse request slots: only the shared bytes and
        # the slots are compared, the response's 8 bytes within its 16.
        assert ours == xens, what


def test_ring_sizes_are_xens():
    assert ring_size(4096, 12) == 256          # netif tx
    assert ring_size(4096, 8) == 256           # netif rx (504 fit)
    assert ring_size(4096, 112) == 32          # blkif


def test_a_full_ring_and_a_lying_frontend():
    page = bytearray(4096)
    shared_ring_init(page)
    front, back = RingEnd(True, 112), RingEnd(False, 112)
    for _ in range(32):
        front.produce(page, b"r")
    assert front.full()
    front.push(page)
    struct.pack_into("<I", page, 0, 1000)      # the frontend claims 1000 requests
    assert back.unconsumed(page) == 32         # never more than it can answer
    for _ in range(32):
        assert not back.request_cons_overflow()
        back.consume(page)
    assert back.request_cons_overflow()
