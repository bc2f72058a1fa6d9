"""Our xenstored's UNIX socket against clients written elsewhere: Debian's
xenstore-utils (libxenstore's own tools) and PyPI's pyxs. Every expected
output below is what the same command prints against Xen 4.17's C
xenstored. Then the socket itself: many clients at once, a client whose
watch fires while the machine runs, the socket file's mode, a stale socket
left by a dead process, and broken headers."""

from __future__ import annotations

import errno
import gc
import os
import random
import shutil
import socket
import stat
import struct
import subprocess
import sys
import threading
import time

import pytest

from hv.host import Host
from hv.public.io.xs_wire import (
    XS_DIRECTORY, XS_ERROR, XS_READ, XS_WATCH, XS_WATCH_EVENT, XS_WRITE,
)
from hv.xen.hypervisor import MiB
from hv.xen.timer import NS_PER_S
from hv.xenstore.client import XsClient
from hv.xenstore.perms import PERM_READ, PERM_WRITE, Perm

HEADER = struct.Struct("<IIII")




class Wire:
    """Just enough of the wire protocol to drive the socket by hand."""

    def __init__(self, path: str, timeout: float = 5.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.events: list[tuple[bytes, bytes]] = []
        self.req_id = 0

    def send(self, type_: int, payload: bytes, tx: int = 0) -> int:
        self.req_id += 1
        self.sock.sendall(HEADER.pack(type_, self.req_id, tx, len(payload)) + payload)
        return self.req_id

    def recv(self) -> tuple[int, int, int, bytes]:
        while True:
            if len(self.buf) >= 16:
                type_, req_id, tx, length = HEADER.unpack_from(self.buf)
                if len(self.buf) >= 16 + length:
                    body = self.buf[16:16 + length]
                    self.buf = self.buf[16 + length:]
                    return type_, req_id, tx, body
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk

    def request(self, type_: int, payload: bytes, tx: int = 0) -> tuple[int, bytes]:
        req_id = self.send(type_, payload, tx)
        while True:
            type_, got, _tx, body = self.recv()
            if type_ == XS_WATCH_EVENT:
                path, token = body.split(b"\0")[:2]
                self.events.append((path, token))
                continue
            assert got == req_id
            return type_, body

    def event(self) -> tuple[bytes, bytes]:
        if not self.events:
            type_, _req, _tx, body = self.recv()
            assert type_ == XS_WATCH_EVENT, (type_, body)
            path, token = body.split(b"\0")[:2]
            self.events.append((path, token))
        return self.events.pop(0)

    def closed_by_peer(self) -> bool:
        """True once the other end has closed (EOF or reset)."""
        try:
            return self.sock.recv(65536) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


def _wait_for(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


# ---------------------------------------------------------------- xenstore-utils
TOOLS = ("xenstore-write", "xenstore-read", "xenstore-ls", "xenstore-list",
         "xenstore-exists", "xenstore-rm", "xenstore-chmod", "xenstore-watch")


@pytest.fixture
def xs(served):
    """run(tool, *args) -> CompletedProcess, against our socket."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"xenstore-utils is not installed (missing {', '.join(missing)})")
    host, path = served
    # The tools look for $XENSTORED_PATH first; nothing else of ours leaks in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("XENSTORED_")}
    env["XENSTORED_PATH"] = path

    def run(*argv, check_rc: int | None = 0):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=20,
                              stdin=subprocess.DEVNULL)
        if check_rc is not None:
            assert done.returncode == check_rc, (argv, done.returncode, done.stdout, done.stderr)
        return done

    run.env = env
    run.host = host
    return run


def test_utils_write_read_ls(xs):
    xs("xenstore-write", "/a/b", "hello")
    assert xs("xenstore-read", "/a/b").stdout == "hello\n"
    # dom0's home is there from boot, as xen-init-dom0 leaves it.
    assert xs("xenstore-ls", "-f", "-p").stdout == (
        '/tool = ""   (n0)\n'
        '/tool/xenstored = ""   (n0)\n'
        '/local = ""   (n0)\n'
        '/local/domain = ""   (n0)\n'
        '/local/domain/0 = ""   (n0)\n'
        '/local/domain/0/domid = "0"   (n0)\n'
        '/local/domain/0/name = "Domain-0"   (n0)\n'
        '/a = ""   (n0)\n'
        '/a/b = "hello"   (n0)\n')
    assert xs("xenstore-ls", "-f", "/a").stdout == '/a/b = "hello"\n'
    assert xs("xenstore-ls", "/local/domain").stdout == (
        '0 = ""\n domid = "0"\n name = "Domain-0"\n')
    # Several paths, one answer a line; -p prefixes each with its path.
    assert xs("xenstore-read", "/a/b", "/a").stdout == "hello\n\n"
    assert xs("xenstore-read", "-p", "/a/b").stdout == "/a/b: hello\n"
    assert XsClient(xs.host.xenstored).read("/a/b") == b"hello"


def test_utils_write_pairs_in_one_transaction(xs):
    xs("xenstore-write", "/m/one", "1", "/m/two", "2", "/m/three", "3")
    assert xs("xenstore-list", "/m").stdout == "one\ntwo\nthree\n"
    assert xs("xenstore-read", "/m/one", "/m/two", "/m/three").stdout == "1\n2\n3\n"
    # An odd number of arguments is refused before anything is sent.
    bad = xs("xenstore-write", "/m/four", check_rc=1)
    assert "Usage" in bad.stderr
    assert xs("xenstore-exists", "/m/four", check_rc=1).stdout == ""


def test_utils_list_keeps_insertion_order(xs):
    for name in ("zeta", "alpha", "mid"):
        xs("xenstore-write", f"/order/{name}", name)
    assert xs("xenstore-list", "/order").stdout == "zeta\nalpha\nmid\n"
    assert xs("xenstore-list", "/").stdout == "tool\nlocal\norder\n"


def test_utils_missing_nodes(xs):
    xs("xenstore-write", "/a/b", "hello")
    assert xs("xenstore-exists", "/a/b").returncode == 0
    assert xs("xenstore-exists", "/a/nope", check_rc=1).stdout == ""
    done = xs("xenstore-read", "/nope", check_rc=1)
    assert (done.stdout, done.stderr) == ("", "xenstore-read: couldn't read path /nope\n")
    done = xs("xenstore-ls", "/nope", check_rc=1)
    assert done.stderr == "xenstore-ls: xs_directory (/nope): No such file or directory\n"
    done = xs("xenstore-list", "/nope", check_rc=1)
    assert done.stderr == "xenstore-list: could not list path /nope\n"
    done = xs("xenstore-chmod", "/nope", "r0", check_rc=1)
    assert done.stderr == ("xenstore-chmod: Error occurred setting permissions on '/nope': "
                           "No such file or directory\n")
    # Removing a missing node is fine while its parent exists, not after.
    xs("xenstore-rm", "/a/nope")
    done = xs("xenstore-rm", "/nope/deeper", check_rc=1)
    assert done.stderr == "xenstore-rm: could not remove path /nope/deeper\n"


def test_utils_rm_and_rm_t(xs):
    xs("xenstore-write", "/x/y/z", "1", "/x/q", "2")
    xs("xenstore-rm", "/x/q")
    assert xs("xenstore-ls", "-f", "/x").stdout == '/x/y = ""\n/x/y/z = "1"\n'
    xs("xenstore-write", "/x/q", "2")
    # -t also removes the parents left empty, up to one that is not.
    xs("xenstore-rm", "-t", "/x/y/z")
    assert xs("xenstore-ls", "-f", "/x").stdout == '/x/q = "2"\n'
    xs("xenstore-rm", "/x")
    assert xs("xenstore-exists", "/x", check_rc=1).returncode == 1
    assert xs("xenstore-list", "/").stdout == "tool\nlocal\n"
    assert xs.host.xenstored.check_store() == []


def test_utils_chmod(xs):
    xs("xenstore-write", "/a/b", "hello")
    xs("xenstore-chmod", "/a/b", "r0", "w5")
    assert xs("xenstore-ls", "-f", "-p", "/a").stdout == '/a/b = "hello"   (r0,w5)\n'
    # Without -f the permissions are pushed to the right with dots, for an
    # 80-column terminal when the output is not one.
    assert xs("xenstore-ls", "-p", "/a").stdout == (
        'b = "hello"  . . . . . . . . . . . . . . . . . . . . . . . .  (r0,w5)\n')
    assert XsClient(xs.host.xenstored).get_perms("/a/b") == (Perm(PERM_READ, 0),
                                                            Perm(PERM_WRITE, 5))
    # The parent keeps its own.
    assert xs("xenstore-ls", "-f", "-p", "/").stdout.splitlines()[-2] == '/a = ""   (n0)'


def test_utils_watch(xs):
    watcher = subprocess.Popen(["xenstore-watch", "-n", "2", "/a"], env=xs.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               stdin=subprocess.DEVNULL)
    try:
        # The event a watch fires when it is set, before anything changed.
        assert watcher.stdout.readline() == "/a\n"
        xs("xenstore-write", "/a/c", "5")
        assert watcher.stdout.readline() == "/a/c\n"
        assert watcher.wait(10) == 0
        assert watcher.stdout.read() == ""
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
        watcher.stdout.close()
        watcher.stderr.close()


def test_utils_leave_no_connection_behind(xs, served):
    host, _path = served
    server = host.servers[0]
    for i in range(5):
        xs("xenstore-write", f"/n/{i}", str(i))
    assert _wait_for(lambda: server.clients == 0)
    assert len([c for c in host.xenstored.connections if c.kind == "socket"]) == 0
    assert xs("xenstore-list", "/n").stdout == "0\n1\n2\n3\n4\n"


# ---------------------------------------------------------------- pyxs
@pytest.fixture
def pyxs(served):
    return pytest.importorskip("pyxs", reason="pyxs (PyPI) is not installed")


def _next_within(iterator, seconds: float = 5.0):
    """next(iterator), or AssertionError if nothing comes in time (pyxs'
    wait() blocks for ever)."""
    box = []
    worker = threading.Thread(target=lambda: box.append(next(iterator)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert box, "no watch event in time"
    return box[0]


def test_pyxs_basic_calls(served, pyxs):
    host, path = served
    with pyxs.Client(unix_socket_path=path) as c:
        c.write(b"/vm/1/name", b"guest1")
        assert c.read(b"/vm/1/name") == b"guest1"
        assert c[b"/vm/1/name"] == b"guest1"
        c.mkdir(b"/vm/1/device")
        c.mkdir(b"/vm/1/device")                      # again: still OK
        assert c.list(b"/vm/1") == [b"name", b"device"]
        assert c.exists(b"/vm/1/device") is True
        assert c.exists(b"/vm/1/nope") is False
        assert c.read(b"/vm/1/nope", b"default") == b"default"
        assert c.get_perms(b"/vm/1/name") == [b"n0"]
        c.set_perms(b"/vm/1/name", [b"b0", b"r3"])
        assert c.get_perms(b"/vm/1/name") == [b"b0", b"r3"]
        assert c.get_domain_path(7) == b"/local/domain/7"
        c.delete(b"/vm/1/device")
        assert c.list(b"/vm/1") == [b"name"]
        with pytest.raises(pyxs.PyXSError) as e:
            c.read(b"/vm/1/device")
        assert e.value.args[0] == errno.ENOENT
        with pytest.raises(pyxs.PyXSError) as e:
            c.set_perms(b"/vm/1/name", [b"b99"])         # an owner that does not exist
        assert e.value.args[0] == errno.ENOENT
        assert c.get_perms(b"/vm/1/name") == [b"b0", b"r3"]
    local = XsClient(host.xenstored)
    assert local.read("/vm/1/name") == b"guest1"
    assert local.get_perms("/vm/1/name") == (Perm(PERM_READ | PERM_WRITE, 0), Perm(PERM_READ, 3))


def test_pyxs_transaction_commits(served, pyxs):
    host, path = served
    with pyxs.Client(unix_socket_path=path) as a, pyxs.Client(unix_socket_path=path) as b:
        a.write(b"/t/seen", b"0")
        tx = a.transaction()
        assert tx > 0
        assert a.read(b"/t/seen") == b"0"
        a.write(b"/t/seen", b"1")
        a.write(b"/t/new/deep", b"x")
        # Nobody else sees the transaction's writes before it commits.
        assert b.read(b"/t/seen") == b"0"
        assert b.exists(b"/t/new") is False
        assert a.commit() is True
        assert a.tx_id == 0
        assert b.read(b"/t/seen") == b"1"
        assert b.read(b"/t/new/deep") == b"x"
    assert host.xenstored.check_store() == []


def test_pyxs_transaction_conflict(served, pyxs):
    from pyxs._internal import Op
    host, path = served
    with pyxs.Client(unix_socket_path=path) as a, pyxs.Client(unix_socket_path=path) as b:
        a.write(b"/t/counter", b"1")
        a.transaction()
        value = a.read(b"/t/counter")
        a.write(b"/t/counter", str(int(value) + 1).encode())
        a.write(b"/t/other", b"mine")
        b.write(b"/t/counter", b"100")               # under the transaction's feet
        # pyxs turns EAGAIN into False (and any other error into PyXSError).
        assert a.commit() is False
        assert b.read(b"/t/counter") == b"100"
        assert b.exists(b"/t/other") is False

        # What travels on the wire is XS_ERROR "EAGAIN", which pyxs maps to errno.
        a.transaction()
        a.read(b"/t/counter")
        b.write(b"/t/counter", b"101")
        with pytest.raises(pyxs.PyXSError) as e:
            a.ack(Op.TRANSACTION_END, b"T\0")
        assert e.value.args[0] == errno.EAGAIN
        a.tx_id = 0
        # A transaction that ended is gone: its id now names nothing.
        assert b.read(b"/t/counter") == b"101"
    assert host.xenstored.check_store() == []


def test_pyxs_watch(served, pyxs):
    host, path = served
    with pyxs.Client(unix_socket_path=path) as c, pyxs.Client(unix_socket_path=path) as other:
        c.write(b"/w/x", b"0")
        m = c.monitor()
        m.watch(b"/w", b"tok")
        events = m.wait()
        assert _next_within(events) == (b"/w", b"tok")
        other.write(b"/elsewhere", b"1")             # not watched
        other.write(b"/w/x", b"1")
        assert _next_within(events) == (b"/w/x", b"tok")
        other.delete(b"/w/x")
        assert _next_within(events) == (b"/w/x", b"tok")
        m.unwatch(b"/w", b"tok")
        assert m.watched == set()
    assert [c for c in host.xenstored.connections if c.watches and c.kind == "socket"] == []


# ---------------------------------------------------------------- the socket
def test_many_clients_at_once(served):
    host, path = served
    clients, per_client = 20, 40
    connected = threading.Barrier(clients + 1, timeout=10)
    failures: list[str] = []

    def worker(i: int) -> None:
        try:
            w = Wire(path)
            connected.wait()
            mine = [b"k%d" % j for j in range(per_client)]
            for j, key in enumerate(mine):
                t, body = w.request(XS_WRITE, b"/many/%d/%s\0v%d-%d" % (i, key, i, j))
                assert (t, body) == (XS_WRITE, b"OK\0"), body
            for j, key in enumerate(mine):
                t, body = w.request(XS_READ, b"/many/%d/%s\0" % (i, key))
                assert (t, body) == (XS_READ, b"v%d-%d" % (i, j)), body
            t, body = w.request(XS_DIRECTORY, b"/many/%d\0" % i)
            assert body == b"".join(k + b"\0" for k in mine)
            connected.wait()                          # all still connected
            w.close()
        except Exception as e:                        # noqa: BLE001 - reported below
            failures.append(f"client {i}: {e!r}")
            connected.abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    connected.wait()
    assert _wait_for(lambda: host.servers[0].clients == clients)
    connected.wait()
    for t in threads:
        t.join(30)
    assert failures == []
    assert _wait_for(lambda: host.servers[0].clients == 0)
    local = XsClient(host.xenstored)
    # In the order the clients got there first.
    assert sorted(local.directory("/many"), key=int) == [b"%d" % i for i in range(clients)]
    assert local.read("/many/19/k39") == b"v19-39"
    assert host.xenstored.check_store() == []
    # Still serving.
    w = Wire(path)
    assert w.request(XS_READ, b"/many/0/k0\0") == (XS_READ, b"v0-0")
    w.close()


def test_watch_fires_while_the_host_runs(served):
    from xl.dombuild import build_pv_domain
    from xl.privcmd import Privcmd
    host, path = served
    built = build_pv_domain(Privcmd(host.xen), memory_kib=32 * 1024,
                            workload=["compute 2ms", "sleep 8ms", "loop"])
    domu = host.xen.domains.get(built.domid)
    state = b"/vm/%d/state" % built.domid
    watcher = Wire(path)
    assert watcher.request(XS_WATCH, b"/vm\0tok\0") == (XS_WATCH, b"OK\0")
    assert watcher.event() == (b"/vm", b"tok")
    start = host.now
    written_at = []

    def write_state():
        # Runs inside host.run(), which holds the host's lock.
        XsClient(host.xenstored).write(state, "running")
        written_at.append(host.now)

    host.clock.schedule(start + 4 * NS_PER_S // 10, write_state)
    reader_saw: list[tuple[int, bytes]] = []
    stop = threading.Event()
    first = threading.Event()

    def reader():
        r = Wire(path)
        while not stop.is_set():
            reader_saw.append(r.request(XS_READ, b"/tool/xenstored\0"))
            first.set()
        r.close()

    def other_writer():
        with host.lock:
            XsClient(host.xenstored).write(b"/vm/%d/from-thread" % built.domid, "1")

    threads = [threading.Thread(target=reader), threading.Thread(target=other_writer)]
    for t in threads:
        t.start()
    assert first.wait(5)
    try:
        host.run(until=start + NS_PER_S)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert host.now == start + NS_PER_S
    assert written_at == [start + 4 * NS_PER_S // 10]
    events = {watcher.event(), watcher.event()}
    assert events == {(state, b"tok"), (b"/vm/%d/from-thread" % built.domid, b"tok")}
    assert watcher.request(XS_READ, state + b"\0") == (XS_READ, b"running")
    assert reader_saw and set(reader_saw) == {(XS_READ, b"")}
    # The domain ran meanwhile: about 2 ms of every 10.
    running = domu.vcpus[0].runstate_snapshot(host.now)[2][0]
    assert NS_PER_S // 10 < running < NS_PER_S // 2
    assert host.xenstored.check_store() == []
    watcher.close()


def test_socket_is_owner_only(served):
    _host, path = served
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.getuid()


def test_stale_socket_is_replaced(tmp_path):
    path = str(tmp_path / "socket")
    # A process that bound the socket and died without removing it.
    subprocess.run([sys.executable, "-c",
                    "import os, socket, sys\n"
                    "s = socket.socket(socket.AF_UNIX)\n"
                    "s.bind(sys.argv[1]); s.listen(1)\n"
                    "os._exit(0)\n", path], check=True, timeout=20)
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    with pytest.raises(ConnectionRefusedError):
        Wire(path)
    host = Host(cpus=2, memory=1024 * MiB, dom0_memory=128 * MiB)
    try:
        host.serve_xenstore(path)
        w = Wire(path)
        assert w.request(XS_WRITE, b"/fresh\0yes") == (XS_WRITE, b"OK\0")
        assert w.request(XS_READ, b"/fresh\0") == (XS_READ, b"yes")
        w.close()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        # A live daemon's socket is not taken over, and the server that
        # could not start keeps no descriptor open.
        gc.collect()
        fds = set(os.listdir("/proc/self/fd"))
        for _ in range(3):
            with pytest.raises(OSError) as e:
                host.serve_xenstore(path)
            assert e.value.errno == errno.EADDRINUSE
        # Nothing new is left open (earlier tests' garbage may close some of
        # its own meanwhile, and the live server's thread is still hanging
        # up on the probes that found it alive).
        deadline = time.monotonic() + 5
        while not set(os.listdir("/proc/self/fd")) <= fds and time.monotonic() < deadline:
            time.sleep(0.01)
        assert set(os.listdir("/proc/self/fd")) <= fds
        assert len(host.servers) == 1
        w = Wire(path)
        assert w.request(XS_READ, b"/fresh\0") == (XS_READ, b"yes")
        w.close()
    finally:
        host.close()
    assert not os.path.exists(path)


@pytest.mark.parametrize("header", [
    HEADER.pack(XS_READ, 1, 0, 4097),
    HEADER.pack(XS_WRITE, 2, 0, 0xFFFFFFFF),
    random.Random(7).randbytes(12) + struct.pack("<I", 0x8000_0000),
], ids=["4097", "4GiB", "garbled"])
def test_bad_header_closes_only_its_connection(served, header):
    host, path = served
    good = Wire(path)
    assert good.request(XS_WRITE, b"/keep\0me") == (XS_WRITE, b"OK\0")
    assert good.request(XS_WATCH, b"/keep\0t\0") == (XS_WATCH, b"OK\0")
    assert good.event() == (b"/keep", b"t")
    bad = Wire(path)
    assert bad.request(XS_WATCH, b"/keep\0bad\0") == (XS_WATCH, b"OK\0")
    assert _wait_for(lambda: host.servers[0].clients == 2)
    bad.sock.sendall(header + b"x" * 64)
    assert bad.closed_by_peer()
    bad.close()
    assert _wait_for(lambda: host.servers[0].clients == 1)
    # Its watch went with it; the other connection is untouched.
    assert sorted(w.token for c in host.xenstored.connections for w in c.watches
                  if c.kind == "socket") == [b"t"]
    assert good.request(XS_WRITE, b"/keep\0still") == (XS_WRITE, b"OK\0")
    assert good.event() == (b"/keep", b"t")
    assert good.request(XS_READ, b"/keep\0") == (XS_READ, b"still")
    good.close()
    fresh = Wire(path)
    assert fresh.request(XS_READ, b"/keep\0") == (XS_READ, b"still")
    fresh.close()


def test_largest_payload_is_a_message(served):
    _host, path = served
    w = Wire(path)
    # 4096 bytes is allowed on the wire; a 4094-character name is not a path.
    assert w.request(XS_READ, b"/" + b"a" * 4094 + b"\0") == (XS_ERROR, b"EINVAL\0")
    value = bytes(range(256)) * 15 + b"v" * (4096 - 3840 - len(b"/big\0"))
    assert w.request(XS_WRITE, b"/big\0" + value) == (XS_WRITE, b"OK\0")
    assert w.request(XS_READ, b"/big\0") == (XS_READ, value)
    w.close()


def test_messages_split_and_joined_anyhow(served):
    _host, path = served
    w = Wire(path)
    stream = b"".join(HEADER.pack(XS_WRITE, 100 + i, 0, len(p)) + p
                      for i, p in enumerate(b"/split/%d\0%d" % (i, i) for i in range(50)))
    stream += HEADER.pack(XS_DIRECTORY, 200, 0, 7) + b"/split\0"
    rng = random.Random(3)
    at = 0
    while at < len(stream):
        n = rng.choice((1, 1, 2, 3, 7, 15, 16, 17, 100))
        w.sock.sendall(stream[at:at + n])
        at += n
    replies = [w.recv() for _ in range(51)]
    assert [(t, r, body) for t, r, _tx, body in replies[:50]] == [
        (XS_WRITE, 100 + i, b"OK\0") for i in range(50)]
    assert replies[50][:2] == (XS_DIRECTORY, 200)
    assert replies[50][3] == b"".join(b"%d\0" % i for i in range(50))
    w.close()


def test_half_a_message_then_gone(served):
    host, path = served
    other = Wire(path)
    w = Wire(path)
    w.sock.sendall(HEADER.pack(XS_WRITE, 1, 0, 20) + b"/half\0")
    w.close()
    assert _wait_for(lambda: host.servers[0].clients == 1)
    assert other.request(XS_READ, b"/half\0") == (XS_ERROR, b"ENOENT\0")
    other.close()


def test_a_fault_serving_one_client_costs_only_that_client(tmp_path):
    host = Host(cpus=2, memory=1024 * 2**20, dom0_memory=128 * 2**20)
    try:
        server = host.serve_xenstore(str(tmp_path / "socket"))
        real_process = host.xenstored.process

        def process(conn, msg):
            if msg.payload.startswith(b"/boom"):
                raise RuntimeError("a bug")
            return real_process(conn, msg)

        host.xenstored.process = process
        victim, bystander = socket.socket(socket.AF_UNIX), socket.socket(socket.AF_UNIX)
        victim.connect(server.path)
        bystander.connect(server.path)
        victim.sendall(HEADER.pack(2, 1, 0, 6) + b"/boom\0")
        victim.settimeout(5)
        assert victim.recv(100) == b""                       # its connection went
        bystander.sendall(HEADER.pack(11, 7, 0, 5) + b"/ok\0v")
        bystander.settimeout(5)
        assert bystander.recv(100) == HEADER.pack(11, 7, 0, 3) + b"OK\0"
        assert server.faults == ["RuntimeError: a bug"]
        victim.close()
        bystander.close()
    finally:
        host.close()
