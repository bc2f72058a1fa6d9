"""A xenstore watch on the host service's xenstore socket, as
xenstore-watch puts one: a connection of its own, one XS_WATCH, and each
XS_WATCH_EVENT's path as it comes. `xl xenstore watch` and the dashboard
both use it; it speaks the wire protocol itself, so that neither loads
hv/ for it (the numbers are xs_wire.h's)."""

from __future__ import annotations

import socket
import struct
from typing import Callable, Iterator

XS_WATCH = 4
XS_WATCH_EVENT = 15
XS_ERROR = 16
HEADER = struct.Struct("<IIII")       # type, req_id, tx_id, len
TOKEN = b"xl-watch"
# How long a read waits before the watcher asks whether to stop.
POLL_S = 0.1


class WatchError(Exception):
    """xenstored refused the watch, or went away: one line."""


class Watch:
    def __init__(self, socket_path: str, path: str = "/"):
        self.socket_path = socket_path
        self.path = path
        self._sock: socket.socket | None = None

    def __enter__(self) -> "Watch":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.socket_path)
        except OSError as e:
            sock.close()
            raise WatchError(f"can't reach xenstored at {self.socket_path}: {e.strerror}") from None
        payload = self.path.encode() + b"\0" + TOKEN + b"\0"
        sock.sendall(HEADER.pack(XS_WATCH, 1, 0, len(payload)) + payload)
        sock.settimeout(POLL_S)
        self._sock = sock
        return self

    def __exit__(self, *exc) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def events(self, stopped: Callable[[], bool]) -> Iterator[str]:
        """Each event's path, until ``stopped()`` says so. The first is
        the one xenstored fires for every new watch, at once."""
        buf = b""
        while not stopped():
            try:
                data = self._sock.recv(65536)
            except socket.timeout:
                continue
            except OSError as e:
                raise WatchError(f"xenstored: {e.strerror}") from None
            if not data:
                raise WatchError("xenstored closed the connection")
            buf += data
            while len(buf) >= HEADER.size:
                type_, _req, _tx, length = HEADER.unpack_from(buf)
                if len(buf) < HEADER.size + length:
                    break
                payload, buf = buf[HEADER.size:HEADER.size + length], buf[HEADER.size + length:]
                if type_ == XS_ERROR:
                    reason = payload.rstrip(b"\0").decode(errors="replace")
                    raise WatchError(f"can't watch {self.path}: {reason}")
                if type_ == XS_WATCH_EVENT:
                    yield payload.split(b"\0", 1)[0].decode(errors="replace")


def watch(socket_path: str, path: str, emit: Callable[[str], None], count: int | None = None) -> None:
    """`xl xenstore watch`: ``emit`` each event's path until ``count``
    came (None: until interrupted)."""
    seen = 0
    with Watch(socket_path, path) as w:
        for changed in w.events(lambda: count is not None and seen >= count):
            emit(changed)
            seen += 1
            if count is not None and seen >= count:
                return
