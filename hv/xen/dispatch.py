"""The switch at the top of every do_*_op in Xen, written once: a sub-op
number picks a handler and the structure its argument must be. A number Xen
does not know is -ENOSYS; an argument that is not that structure could not
have come from guest memory, which for Xen is -EFAULT."""

from __future__ import annotations

from typing import Callable

from hv.public.errno import EFAULT, ENOSYS
from hv.xen.errors import XenError


def copy_from_guest(arg, arg_type: type):
    """The argument as the structure it must be, or -EFAULT: for handlers
    that check something else first, as Xen's do before copying."""
    if type(arg) is not arg_type:
        raise XenError(EFAULT)
    return arg


class SubOps:
    def __init__(self, table: dict[int, tuple[Callable, type | None]]):
        self._table = table

    def lookup(self, cmd, arg) -> Callable:
        if not isinstance(cmd, int):
            raise XenError(EFAULT)
        entry = self._table.get(cmd)
        if entry is None:
            raise XenError(ENOSYS)
        handler, arg_type = entry
        if arg_type is not None and type(arg) is not arg_type:   # copy_from_guest, inline
            raise XenError(EFAULT)
        return handler

    def __contains__(self, cmd) -> bool:
        return cmd in self._table
