"""xenstore's errors: an errno inside, its name on the wire (xsd_errors),
converted in one place."""

from __future__ import annotations

from hv.public.io.xs_wire import XSD_ERRORS

_NAMES = dict(XSD_ERRORS)


class XsError(Exception):
    """A request failed with ``errno``."""

    def __init__(self, errno: int):
        super().__init__(wire_error(errno)[:-1].decode())
        self.errno = errno


def wire_error(errno: int) -> bytes:
    """The XS_ERROR payload for ``errno``: its name and a NUL. An errno the
    wire has no name for travels as EINVAL, as send_error() does it."""
    return _NAMES.get(errno, "EINVAL").encode() + b"\0"
