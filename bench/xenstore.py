"""xenstored over its UNIX socket: ours against Xen 4.17's C daemon, side
by side in one run, with the same client for both.

    python bench/xenstore.py [--quick] [--repeat N]

Figures:
  pipelined requests per second: batches of 64, WRITE and READ alternating
    over 500 keys, each batch sent whole and then its replies drained
    (ours / C aim >= 0.5)
  round trips per second: one client, one READ at a time (no aim)
  the client's own CPU use while pipelining, per cent of one CPU (no aim)

Ours runs in a process of its own (a host serving its socket), as the C
daemon does, so that the client's work is not counted against it. The C
daemon is started as the tests start it (tests/xswire.py); where it cannot
run here, only our figures are printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

from common import print_table  # noqa: E402  (puts the repository on the path)

from hv.public.io.xs_wire import XS_ERROR, XS_READ, XS_WRITE  # noqa: E402

HEADER = struct.Struct("<IIII")
BENCH_DIR = os.path.dirname(os.path.abspath(__file__))


# ------------------------------------------------------------ the client
def pipelined(path: str, n: int, batch: int = 64) -> float:
    """Requests per second: ``n`` requests in batches of ``batch``; request
    j writes /bench/k<j/2 mod 500> when j is even and reads it back when odd."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    replies = sock.makefile("rb")
    pack, unpack = HEADER.pack, HEADER.unpack
    t0 = time.perf_counter()
    i = 0
    while i < n:
        end = min(i + batch, n)
        out = []
        for j in range(i, end):
            key = b"/bench/k%d" % (j // 2 % 500)
            if j % 2 == 0:
                payload = key + b"\0" + b"v%d" % j
                out.append(pack(XS_WRITE, j, 0, len(payload)) + payload)
            else:
                out.append(pack(XS_READ, j, 0, len(key) + 1) + key + b"\0")
        sock.sendall(b"".join(out))
        for j in range(i, end):
            type_, req_id, _tx, length = unpack(replies.read(16))
            body = replies.read(length)
            if type_ == XS_ERROR or req_id != j:
                raise RuntimeError(f"{path}: request {j} answered {type_} {req_id} {body!r}")
        i = end
    elapsed = time.perf_counter() - t0
    replies.close()
    sock.close()
    return n / elapsed


def round_trips(path: str, n: int) -> float:
    """Round trips per second: READ of one node, each sent once the reply
    to the one before has come."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    key = b"/bench/rtt\0"
    setup = HEADER.pack(XS_WRITE, 1, 0, len(key) + 5) + key + b"value"
    sock.sendall(setup)
    sock.recv(64)
    request = HEADER.pack(XS_READ, 2, 0, len(key)) + key
    want = 16 + 5
    send, recv = sock.send, sock.recv
    t0 = time.perf_counter()
    for _ in range(n):
        send(request)
        got = recv(64)
        while len(got) < want:
            got += recv(64)
    elapsed = time.perf_counter() - t0
    if got[16:] != b"value":
        raise RuntimeError(f"{path}: READ answered {got!r}")
    sock.close()
    return n / elapsed


# ------------------------------------------------------------ the daemons
def serve_ours(path: str) -> None:
    """The child process: a small host serving xenstore until stdin closes."""
    from hv.host import Host
    from hv.xen.hypervisor import MiB
    host = Host(cpus=2, memory=1024 * MiB, dom0_memory=128 * MiB)
    host.serve_xenstore(path)
    print("ready", flush=True)
    sys.stdin.read()
    host.close()


class Ours:
    name = "ours"

    def __init__(self, tmpdir: str):
        self.path = os.path.join(tmpdir, "ours.socket")
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve",
                                      self.path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("our xenstored did not start")

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(10)
        self.proc.stdout.close()


class RealXenstored:
    """Xen 4.17's C xenstored, under the tests' shim."""
    name = "C xenstored"

    def __init__(self, tmpdir: str):
        import pytest
        from tests.xswire import start_real_xenstored, stop_real_xenstored
        self._stop = stop_real_xenstored
        try:
            self.proc, self.path = start_real_xenstored(os.path.join(tmpdir, "c"))
        except pytest.skip.Exception as e:
            raise RuntimeError(str(e)) from None

    def stop(self) -> None:
        self._stop(self.proc)


def _spread(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (default 5)")
    parser.add_argument("--serve", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_ours(args.serve)
        return
    scale = 10 if args.quick else 1
    n_pipe, n_rtt = 20000 // scale, 10000 // scale
    tmpdir = tempfile.mkdtemp(prefix="xs-bench-")
    daemons = [Ours(tmpdir)]
    try:
        daemons.append(RealXenstored(tmpdir))
    except (ImportError, RuntimeError) as e:
        print(f"C xenstored not measured: {str(e).splitlines()[0]}")
    pipe: dict[str, list[float]] = {d.name: [] for d in daemons}
    rtt: dict[str, list[float]] = {d.name: [] for d in daemons}
    client_cpu: dict[str, list[float]] = {d.name: [] for d in daemons}
    try:
        for d in daemons:                             # warm up: the keys exist, caches are hot
            pipelined(d.path, 2000)
            round_trips(d.path, 500)
        # Runs alternate between the daemons, so that the machine's drift
        # falls on both alike.
        for _ in range(args.repeat):
            for d in daemons:
                cpu0, wall0 = time.process_time(), time.perf_counter()
                pipe[d.name].append(pipelined(d.path, n_pipe))
                client_cpu[d.name].append(100 * (time.process_time() - cpu0)
                                          / (time.perf_counter() - wall0))
            for d in daemons:
                rtt[d.name].append(round_trips(d.path, n_rtt))
    finally:
        for d in daemons:
            d.stop()
        shutil.rmtree(tmpdir, ignore_errors=True)
    rows = [(f"pipelined (batch 64), {name}, requests/s", _spread(v), None, "")
            for name, v in pipe.items()]
    if len(daemons) == 2:
        ratios = [a / b for a, b in zip(pipe["ours"], pipe["C xenstored"])]
        rows.append(("pipelined, ours / C", _spread(ratios), 0.5, ">="))
    # How busy the client itself was: near 100%, a figure is the client's.
    rows += [(f"pipelined, client CPU % against {name}", _spread(v), None, "")
             for name, v in client_cpu.items()]
    rows += [(f"round trips, {name}, per s", _spread(v), None, "") for name, v in rtt.items()]
    if len(daemons) == 2:
        ratios = [a / b for a, b in zip(rtt["ours"], rtt["C xenstored"])]
        rows.append(("round trips, ours / C", _spread(ratios), None, ""))
    print_table("xenlab xenstored benchmarks", args.repeat, rows)


if __name__ == "__main__":
    main()
