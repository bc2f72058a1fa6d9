"""A privileged client inside the host (libxenstore's role for the
toolstack in dom0): each call is one request through the same dispatch
every other connection goes through, answered at once."""

from __future__ import annotations

from hv.public.io.xs_wire import (
    XS_DIRECTORY, XS_ERROR, XS_GET_DOMAIN_PATH, XS_GET_PERMS, XS_INTRODUCE, XS_MKDIR, XS_READ,
    XS_RELEASE, XS_RM, XS_SET_PERMS, XS_TRANSACTION_END, XS_TRANSACTION_START, XS_UNWATCH,
    XS_WATCH, XS_WATCH_EVENT, XS_WRITE, XS_CONTROL, XS_RESUME,
)
from hv.public.io.xs_wire import XSD_ERRORS
from hv.public.errno import EINVAL
from hv.xenstore.errors import XsError
from hv.xenstore.protocol import HEADER, Message, get_strings
from hv.xenstore.perms import Perms, format_perm, parse_perms

_ERRNO = {name.encode(): number for number, name in XSD_ERRORS}


def _b(text) -> bytes:
    return text if isinstance(text, bytes) else str(text).encode()


class XsClient:
    def __init__(self, xenstored):
        self.xenstored = xenstored
        self.conn = xenstored.connect("local")
        self.events: list[tuple[bytes, bytes]] = []
        self._req_id = 0

    def close(self) -> None:
        self.xenstored.disconnect(self.conn)

    def request(self, type_: int, payload: bytes, tx: int = 0) -> bytes:
        self._req_id += 1
        self.xenstored.process(self.conn, Message(type_, self._req_id, tx, payload))
        reply = self._drain()
        rtype, body = reply
        if rtype == XS_ERROR:
            raise XsError(_ERRNO.get(body.rstrip(b"\0"), EINVAL))
        return body

    def poll_events(self) -> list[tuple[bytes, bytes]]:
        """Watch events that came since the last call (and the last
        request), taken off the list."""
        self._drain()
        events, self.events = self.events, []
        return events

    def has_events(self) -> bool:
        """Whether watch events wait, without taking them."""
        self._drain()
        return bool(self.events)

    def _drain(self):
        reply = None
        for data, _is_reply in self.conn.out:
            rtype, req_id, _tx, length = HEADER.unpack_from(data)
            body = data[16:16 + length]
            if rtype == XS_WATCH_EVENT:
                path, token = get_strings(body)[:2]
                self.events.append((path, token))
            elif req_id == self._req_id:
                reply = (rtype, body)
        self.conn.clear_output()
        return reply

    # ------------------------------------------------------------ xs_* calls
    def read(self, path, tx: int = 0) -> bytes:
        return self.request(XS_READ, _b(path) + b"\0", tx)

    def write(self, path, value, tx: int = 0) -> None:
        self.request(XS_WRITE, _b(path) + b"\0" + _b(value), tx)

    def mkdir(self, path, tx: int = 0) -> None:
        self.request(XS_MKDIR, _b(path) + b"\0", tx)

    def rm(self, path, tx: int = 0) -> None:
        self.request(XS_RM, _b(path) + b"\0", tx)

    def directory(self, path, tx: int = 0) -> list[bytes]:
        return get_strings(self.request(XS_DIRECTORY, _b(path) + b"\0", tx))

    def get_perms(self, path, tx: int = 0) -> Perms:
        return parse_perms(get_strings(self.request(XS_GET_PERMS, _b(path) + b"\0", tx)))

    def set_perms(self, path, perms, tx: int = 0) -> None:
        """``perms``: strings such as "b0", "r5", or Perm tuples."""
        items = [p if isinstance(p, (str, bytes)) else format_perm(p) for p in perms]
        self.request(XS_SET_PERMS, _b(path) + b"\0" + b"".join(_b(p) + b"\0" for p in items), tx)

    def exists(self, path, tx: int = 0) -> bool:
        try:
            self.read(path, tx)
        except XsError as e:
            if e.errno == 2:
                return False
            raise
        return True

    def watch(self, path, token) -> None:
        self.request(XS_WATCH, _b(path) + b"\0" + _b(token) + b"\0")

    def unwatch(self, path, token) -> None:
        self.request(XS_UNWATCH, _b(path) + b"\0" + _b(token) + b"\0")

    def transaction_start(self) -> int:
        return int(self.request(XS_TRANSACTION_START, b"\0").rstrip(b"\0"))

    def transaction_end(self, tx: int, commit: bool = True) -> None:
        self.request(XS_TRANSACTION_END, b"T\0" if commit else b"F\0", tx)

    def get_domain_path(self, domid: int) -> bytes:
        return self.request(XS_GET_DOMAIN_PATH, b"%d\0" % domid).rstrip(b"\0")

    def introduce(self, domid: int, mfn: int, port: int) -> None:
        self.request(XS_INTRODUCE, b"%d\0%d\0%d\0" % (domid, mfn, port))

    def release(self, domid: int) -> None:
        self.request(XS_RELEASE, b"%d\0" % domid)

    def resume(self, domid: int) -> None:
        self.request(XS_RESUME, b"%d\0" % domid)

    def control(self, *args) -> bytes:
        return self.request(XS_CONTROL, b"".join(_b(a) + b"\0" for a in args))
