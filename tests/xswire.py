"""xenstore's wire protocol spoken by hand over a UNIX socket, and Xen 4.17's
own C xenstored started on this machine to speak it with.

A message is a 16-byte little-endian header (type, req_id, tx_id, len) and
`len` bytes of payload (xen/include/public/io/xs_wire.h).  A reply echoes the
request's req_id and tx_id; watch events (XS_WATCH_EVENT) may arrive between
a request and its reply, so `request()` keeps them in `client.events`.

The real daemon needs Xen's hypervisor interfaces; tests/c/xenstored_shim.c,
preloaded into it, stands in for them (only dom0 exists).  Build products go
to tests/.build.
"""

from __future__ import annotations

import hashlib
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hv.public.io.xs_wire import XS_WATCH_EVENT, XSD_TYPE_NAMES

HEADER = struct.Struct("<IIII")

TESTS = Path(__file__).resolve().parent
BUILD_DIR = TESTS / ".build"
SHIM_SOURCE = TESTS / "c" / "xenstored_shim.c"
XENSTORED = Path("/usr/lib/xen-4.17/bin/xenstored")
# The shim's prototypes come from libxenctrl's, libxenevtchn's and
# libxengnttab's headers (Debian: libxen-dev).
SHIM_HEADERS = (Path("/usr/include/xenctrl.h"), Path("/usr/include/xenevtchn.h"),
                Path("/usr/include/xengnttab.h"))


def nul_join(*parts: str | bytes) -> bytes:
    """Each part followed by a NUL: `path\\0token\\0`."""
    return b"".join((p.encode() if isinstance(p, str) else p) + b"\0" for p in parts)


def type_name(msg_type: int) -> str:
    return XSD_TYPE_NAMES.get(msg_type, f"TYPE{msg_type}")


@dataclass(frozen=True)
class Reply:
    type: int
    req_id: int
    tx_id: int
    payload: bytes

    @property
    def name(self) -> str:
        return type_name(self.type)

    @property
    def is_event(self) -> bool:
        return self.type == XS_WATCH_EVENT

    def strings(self) -> list[bytes]:
        """The payload cut at every NUL (the last piece is what follows the
        final NUL, usually empty)."""
        return self.payload.split(b"\0")


class ConnectionClosed(ConnectionError):
    """The daemon closed the connection."""


class WireClient:
    """One connection to a xenstored socket.  Not thread-safe."""

    def __init__(self, path: str | os.PathLike, timeout: float = 5.0):
        self.path = str(path)
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(self.path)
        self.events: list[Reply] = []
        self._next_req_id = 1
        self._buf = b""

    # ------------------------------------------------------------- sending
    def send(self, msg_type: int, payload: bytes = b"", tx_id: int = 0,
             req_id: int | None = None) -> int:
        if req_id is None:
            req_id = self._next_req_id
            self._next_req_id = (self._next_req_id + 1) & 0xFFFFFFFF or 1
        self.send_raw(HEADER.pack(msg_type, req_id, tx_id, len(payload)) + payload)
        return req_id

    def send_raw(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as e:
            raise ConnectionClosed(str(e)) from e

    # ----------------------------------------------------------- receiving
    def _fill(self, want: int, deadline: float) -> None:
        while len(self._buf) < want:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no complete message from {self.path} in time")
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                continue
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError as e:
                raise ConnectionClosed(str(e)) from e
            if not chunk:
                raise ConnectionClosed(f"{self.path} closed the connection")
            self._buf += chunk

    def recv(self, timeout: float | None = None) -> Reply:
        """The next message, reply or event, in arrival order."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._fill(HEADER.size, deadline)
        msg_type, req_id, tx_id, length = HEADER.unpack_from(self._buf)
        self._fill(HEADER.size + length, deadline)
        payload = self._buf[HEADER.size:HEADER.size + length]
        self._buf = self._buf[HEADER.size + length:]
        return Reply(msg_type, req_id, tx_id, payload)

    def reply_to(self, req_id: int, timeout: float | None = None) -> Reply:
        """The reply carrying req_id; watch events met on the way go to
        self.events.  A stray reply to some other request is an error: this
        client has one request in flight at a time."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            msg = self.recv(max(0.0, deadline - time.monotonic()))
            if msg.is_event:
                self.events.append(msg)
                continue
            if msg.req_id != req_id:
                raise AssertionError(f"reply to req_id {msg.req_id} while waiting for {req_id}: {msg}")
            return msg

    def request(self, msg_type: int, payload: bytes = b"", tx_id: int = 0,
                timeout: float | None = None) -> Reply:
        return self.reply_to(self.send(msg_type, payload, tx_id), timeout)

    def wait_event(self, timeout: float | None = None) -> Reply | None:
        """The oldest watch event not yet taken, waiting for one up to
        `timeout` seconds; None if none comes."""
        if self.events:
            return self.events.pop(0)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            try:
                msg = self.recv(max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                return None
            if msg.is_event:
                return msg
            raise AssertionError(f"unsolicited reply while waiting for a watch event: {msg}")

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> WireClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ------------------------------------------------------- the real daemon
def _skip(reason: str):
    import pytest
    pytest.skip(reason)


def build_shim() -> Path:
    """tests/.build/xenstored_shim-<hash of its source>.so, built once."""
    gcc = shutil.which("gcc")
    if gcc is None:
        _skip("gcc is not installed: cannot build tests/c/xenstored_shim.c")
    for header in SHIM_HEADERS:
        if not header.exists():
            _skip(f"{header} is missing (Debian: libxen-dev): cannot build the xenstored shim")
    # Named by content, not judged by mtime: a checkout of an older source
    # must not reuse a library built from a newer one.
    digest = hashlib.sha256(SHIM_SOURCE.read_bytes()).hexdigest()[:16]
    shim = BUILD_DIR / f"xenstored_shim-{digest}.so"
    if shim.exists():
        return shim
    BUILD_DIR.mkdir(exist_ok=True)
    # Build under a private name, then rename: parallel test runs never
    # preload a half-written library.
    tmp = BUILD_DIR / f"xenstored_shim.{os.getpid()}.tmp.so"
    built = subprocess.run(
        [gcc, "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror",
         "-o", str(tmp), str(SHIM_SOURCE), "-ldl"],
        capture_output=True, text=True, check=False)
    if built.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise AssertionError(f"{SHIM_SOURCE.name} does not build:\n{built.stderr}")
    os.replace(tmp, shim)
    return shim


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def start_real_xenstored(tmpdir: str | os.PathLike, *args: str,
                         timeout: float = 10.0) -> tuple[subprocess.Popen, str]:
    """Start Xen 4.17's C xenstored serving tmpdir/run/socket, in the
    foreground, with the shim preloaded.  Returns (process, socket path) once
    the socket accepts connections; stop it with stop_real_xenstored().
    Skips the calling test when the daemon, gcc or Xen's headers are missing,
    or when the daemon cannot run here."""
    if not XENSTORED.exists():
        _skip(f"{XENSTORED} is not installed (Debian: xen-utils-4.17)")
    shim = build_shim()
    base = Path(tmpdir)
    rundir = base / "run"
    rundir.mkdir(parents=True, exist_ok=True)
    sock_path = rundir / "socket"
    sock_path.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("XENSTORED_")}
    # The daemon binds $XENSTORED_PATH when set, else $XENSTORED_RUNDIR/socket:
    # an inherited XENSTORED_PATH would make it take over someone else's.  Its
    # database lives in memory (the default), so nothing else is written.
    env.update(XENSTORED_RUNDIR=str(rundir), XENSTORED_ROOTDIR=str(rundir),
               XENSTORED_PATH=str(sock_path), LD_PRELOAD=str(shim))
    out = open(base / "xenstored.out", "wb")
    err = open(base / "xenstored.err", "wb")
    try:
        proc = subprocess.Popen([str(XENSTORED), "-N", *args], env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err, start_new_session=True)
    finally:
        out.close()
        err.close()
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            _skip(f"xenstored exited with status {proc.returncode} at start-up:\n"
                  f"{_tail(base / 'xenstored.err')}")
        if sock_path.exists():
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                    probe.connect(str(sock_path))
                return proc, str(sock_path)
            except OSError:
                pass
        if time.monotonic() > deadline:
            stop_real_xenstored(proc)
            _skip(f"xenstored did not open {sock_path} within {timeout}s:\n"
                  f"{_tail(base / 'xenstored.err')}")
        time.sleep(0.02)


def stop_real_xenstored(proc: subprocess.Popen, timeout: float = 5.0) -> int:
    """Stop the daemon started above; returns its exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    return proc.returncode


@contextmanager
def real_xenstored(tmpdir: str | os.PathLike, *args: str) -> Iterator[str]:
    """`with real_xenstored(tmp) as socket_path:` -- or, in a fixture,
    `with real_xenstored(tmp_path) as path: yield path`."""
    proc, path = start_real_xenstored(tmpdir, *args)
    try:
        yield path
    finally:
        stop_real_xenstored(proc)
