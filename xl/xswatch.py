"""`xl xenstore watch`: what xenstore-watch does, over the host service's
own xenstore socket: one watch, the path of each event as it fires (the
first at once, as xenstored fires every new watch)."""

from __future__ import annotations

import socket
from typing import Callable

from hv.public.io.xs_wire import XS_ERROR, XS_WATCH, XS_WATCH_EVENT
from hv.xenstore.protocol import Parser, encode

TOKEN = b"xl-watch"


class WatchError(Exception):
    """xenstored refused the watch, or went away."""


def watch(socket_path: str, path: str, emit: Callable[[str], None], count: int | None = None) -> None:
    """Watch ``path``, calling ``emit`` with each event's path, until
    ``count`` events came (None: until interrupted)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        try:
            conn.connect(socket_path)
        except OSError as e:
            raise WatchError(f"can't reach xenstored at {socket_path}: {e.strerror}") from None
        conn.sendall(encode(XS_WATCH, 1, 0, path.encode() + b"\0" + TOKEN + b"\0"))
        parser, seen = Parser(), 0
        while count is None or seen < count:
            data = conn.recv(4096)
            if not data:
                raise WatchError("xenstored closed the connection")
            for msg in parser.feed(data):
                if msg.type == XS_ERROR:
                    reason = msg.payload.rstrip(b"\0").decode(errors="replace")
                    raise WatchError(f"can't watch {path}: {reason}")
                if msg.type == XS_WATCH_EVENT and (count is None or seen < count):
                    emit(msg.payload.split(b"\0", 1)[0].decode(errors="replace"))
                    seen += 1
