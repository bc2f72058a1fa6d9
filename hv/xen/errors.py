"""Errors inside the hypervisor are errno values, raised as XenError and
turned into the negative return value once, at the hypercall boundary."""

from hv.public.errno import errno_name


class XenError(Exception):
    __slots__ = ("errno",)

    def __init__(self, errno: int):
        super().__init__(errno)
        self.errno = errno

    def __str__(self) -> str:
        return errno_name(self.errno)
