"""C layouts for Xen's public structures, x86_64.

A structure is declared as a class whose annotations read like the C header::

    @xenstruct
    class EvtchnAllocUnbound:
        dom: domid_t
        remote_dom: domid_t
        port: evtchn_port_t

The decorator turns it into a frozen, slotted dataclass whose fields default to
zero (as a zeroed C struct does), and lays it out the way the C compiler does
on x86_64 (natural alignment, tail padding), so ``SIZE`` and ``offsetof`` can be
held against Xen's own headers, and ``pack``/``unpack`` give the very bytes a
guest and Xen exchange.

Values are checked when a structure is built: an instance always fits its C
layout, so the hypervisor never meets a field it could not have read from
guest memory.

Guest handles (``XEN_GUEST_HANDLE``) are pointers in C. Here the pointed-to
values travel inside the structure (a tuple of frames, of ports...), and the
8-byte slot packs as the integer address when one is given, else zero.
"""

from __future__ import annotations

import dataclasses
import struct as _struct
import sys
from typing import Any, Callable, ClassVar


class CType:
    """A C type with a size, an alignment, and a way in and out of bytes."""

    size: int
    align: int

    def __getitem__(self, count: int) -> "Array":
        return Array(self, count)

    def zero(self) -> Any:
        raise NotImplementedError

    def check(self, value: Any, where: str) -> Any:
        """Return the value in canonical form, or raise ValueError."""
        raise NotImplementedError

    def pack_into(self, buf: bytearray, off: int, value: Any) -> None:
        raise NotImplementedError

    def unpack_from(self, buf, off: int) -> Any:
        raise NotImplementedError


class Scalar(CType):
    __slots__ = ("name", "code", "size", "align", "lo", "hi", "_s")

    def __init__(self, name: str, code: str):
        self.name = name
        self.code = code
        self._s = _struct.Struct("<" + code)
        self.size = self.align = self._s.size
        bits = 8 * self.size
        if code.islower():
            self.lo, self.hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        else:
            self.lo, self.hi = 0, (1 << bits) - 1

    def __repr__(self) -> str:
        return self.name

    def zero(self) -> int:
        return 0

    def check(self, value, where):
        if not isinstance(value, int) or not self.lo <= value <= self.hi:
            raise ValueError(f"{where}: {value!r} does not fit {self.name}")
        return value

    def pack_into(self, buf, off, value):
        self._s.pack_into(buf, off, value)

    def unpack_from(self, buf, off):
        return self._s.unpack_from(buf, off)[0]


class Bytes(CType):
    """``char name[n]``: bytes, NUL-padded."""

    __slots__ = ("size", "align")

    def __init__(self, size: int):
        self.size = size
        self.align = 1

    def __repr__(self) -> str:
        return f"char[{self.size}]"

    def zero(self) -> bytes:
        return b""

    def check(self, value, where):
        if isinstance(value, bytearray):
            value = bytes(value)
        if not isinstance(value, bytes) or len(value) > self.size:
            raise ValueError(f"{where}: expected at most {self.size} bytes, got {value!r:.60}")
        # Trailing NULs are padding: the same bytes give the same value.
        return value.rstrip(b"\0")

    def pack_into(self, buf, off, value):
        buf[off:off + len(value)] = value

    def unpack_from(self, buf, off):
        return bytes(buf[off:off + self.size])


class _Char:
    """``char`` itself is only ever used as an array: ``char[32]``."""

    def __getitem__(self, count: int) -> Bytes:
        return Bytes(count)


class Array(CType):
    __slots__ = ("elem", "count", "size", "align")

    def __init__(self, elem, count: int):
        self.elem = _ctype_of(elem)
        self.count = count
        self.size = self.elem.size * count
        self.align = self.elem.align

    def __repr__(self) -> str:
        return f"{self.elem!r}[{self.count}]"

    def zero(self) -> tuple:
        return (self.elem.zero(),) * self.count

    def check(self, value, where):
        if isinstance(value, list):
            value = tuple(value)
        if not isinstance(value, tuple) or len(value) > self.count:
            raise ValueError(f"{where}: expected at most {self.count} elements")
        value = tuple(self.elem.check(item, f"{where}[{i}]") for i, item in enumerate(value))
        if len(value) < self.count:
            # A short array is zero-filled, as unpacking the same bytes gives.
            value += (self.elem.zero(),) * (self.count - len(value))
        return value

    def pack_into(self, buf, off, value):
        step = self.elem.size
        for i, item in enumerate(value):
            self.elem.pack_into(buf, off + i * step, item)

    def unpack_from(self, buf, off):
        step = self.elem.size
        return tuple(self.elem.unpack_from(buf, off + i * step) for i in range(self.count))


class Handle(CType):
    """``XEN_GUEST_HANDLE(T)``: a 64-bit guest pointer."""

    __slots__ = ("size", "align", "target")

    def __init__(self, target: str = "void"):
        self.size = self.align = 8
        self.target = target

    def __repr__(self) -> str:
        return f"XEN_GUEST_HANDLE({self.target})"

    def zero(self):
        return None

    def check(self, value, where):
        if isinstance(value, list):
            value = tuple(value)
        if isinstance(value, int) and not 0 <= value < 1 << 64:
            raise ValueError(f"{where}: address {value!r} does not fit 64 bits")
        return value

    def pack_into(self, buf, off, value):
        address = value if isinstance(value, int) else 0
        _struct.pack_into("<Q", buf, off, address)

    def unpack_from(self, buf, off):
        return _struct.unpack_from("<Q", buf, off)[0] or None


class Union(CType):
    """A C union. Its value is one variant: a structure instance, an int (for
    a scalar variant), raw bytes, or None (all zero)."""

    __slots__ = ("variants", "size", "align", "_scalar")

    def __init__(self, *variants):
        self.variants = tuple(_ctype_of(v) for v in variants)
        self.size = max(v.size for v in self.variants)
        self.align = max(v.align for v in self.variants)
        size = self.size
        self.size = (size + self.align - 1) // self.align * self.align
        self._scalar = next((v for v in self.variants if isinstance(v, Scalar)), None)

    def zero(self):
        return None

    def check(self, value, where):
        if value is None:
            return value
        if isinstance(value, (bytes, bytearray)):
            if len(value) > self.size:
                raise ValueError(f"{where}: union holds at most {self.size} bytes")
            # Trailing NULs are padding; all-zero bytes are the zero union.
            return bytes(value).rstrip(b"\0") or None
        if isinstance(value, int) and self._scalar is not None:
            return self._scalar.check(value, where)
        if any(isinstance(v, StructType) and isinstance(value, v.cls) for v in self.variants):
            return value
        raise ValueError(f"{where}: {value!r} is not a variant of this union")

    def pack_into(self, buf, off, value):
        if value is None:
            return
        if isinstance(value, bytes):
            buf[off:off + len(value)] = value
        elif isinstance(value, int):
            self._scalar.pack_into(buf, off, value)
        else:
            type(value).CTYPE.pack_into(buf, off, value)

    def unpack_from(self, buf, off):
        return bytes(buf[off:off + self.size])


class StructType(CType):
    """The CType of a @xenstruct class, for nesting."""

    __slots__ = ("cls", "size", "align")

    def __init__(self, cls, size: int, align: int):
        self.cls = cls
        self.size = size
        self.align = align

    def __repr__(self) -> str:
        return self.cls.__name__

    def zero(self):
        return self.cls()

    def check(self, value, where):
        if not isinstance(value, self.cls):
            raise ValueError(f"{where}: expected {self.cls.__name__}, got {type(value).__name__}")
        return value

    def pack_into(self, buf, off, value):
        for f in self.cls.FIELDS:
            f.ctype.pack_into(buf, off + f.offset, getattr(value, f.name))

    def unpack_from(self, buf, off):
        return self.cls.unpack(buf, off)


def _ctype_of(t) -> CType:
    if isinstance(t, CType):
        return t
    ctype = getattr(t, "CTYPE", None)
    if isinstance(ctype, StructType):
        return ctype
    raise TypeError(f"{t!r} is not a C type")


# ---------------------------------------------------------------- C scalars
uint8_t = Scalar("uint8_t", "B")
int8_t = Scalar("int8_t", "b")
uint16_t = Scalar("uint16_t", "H")
int16_t = Scalar("int16_t", "h")
uint32_t = Scalar("uint32_t", "I")
int32_t = Scalar("int32_t", "i")
uint64_t = Scalar("uint64_t", "Q")
int64_t = Scalar("int64_t", "q")
char = _Char()

# x86_64 is LP64: long and unsigned long are 64 bits.
unsigned_int = uint32_t
int_ = int32_t
unsigned_long = uint64_t
long_ = int64_t
xen_ulong_t = uint64_t
xen_pfn_t = uint64_t
uint64_aligned_t = uint64_t
domid_t = uint16_t
evtchn_port_t = uint32_t
grant_ref_t = uint32_t
grant_handle_t = uint32_t
RING_IDX = uint32_t


def handle(target: str = "void") -> Handle:
    return Handle(target)


def union(*variants) -> Union:
    return Union(*variants)


# ------------------------------------------------------------ the decorator
@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    offset: int
    size: int
    ctype: CType


def _round_up(n: int, align: int) -> int:
    return (n + align - 1) // align * align


def xenstruct(cls=None, *, size: int | None = None):
    """Make ``cls`` a frozen dataclass with a C layout.

    ``size`` pads the structure to a fixed size, for the few public structures
    that are declared with an explicit pad (the domctl union, the page-sized
    shared info).
    """

    def wrap(cls):
        return _make_struct(cls, size)

    return wrap if cls is None else wrap(cls)


def _make_struct(cls, fixed_size: int | None):
    annotations = dict(cls.__dict__.get("__annotations__", {}))
    scope = vars(sys.modules[cls.__module__])
    fields: list[Field] = []
    offset = 0
    align = 1
    for name, t in annotations.items():
        if isinstance(t, str):  # postponed annotations
            t = eval(t, scope)
        if getattr(t, "__origin__", None) is ClassVar or t is ClassVar:
            continue
        ctype = _ctype_of(t)
        offset = _round_up(offset, ctype.align)
        fields.append(Field(name, offset, ctype.size, ctype))
        offset += ctype.size
        align = max(align, ctype.align)
        if name not in cls.__dict__:
            setattr(cls, name, ctype.zero())
        # dataclasses reads annotations; give it plain ones.
        annotations[name] = Any
    cls.__annotations__ = annotations
    total = _round_up(offset, align)
    if fixed_size is not None:
        if fixed_size < total:
            raise TypeError(f"{cls.__name__}: fields need {total} bytes, more than {fixed_size}")
        total = fixed_size

    cls = dataclasses.dataclass(frozen=True, slots=True, init=False)(cls)
    cls.__init__ = _make_init(cls, fields)
    cls.replace = _make_replace(cls, fields)
    cls.FIELDS = tuple(fields)
    cls._FIELD_BY_NAME = {f.name: f for f in fields}
    cls.SIZE = total
    cls.ALIGN = align
    cls.CTYPE = StructType(cls, total, align)
    cls.pack = _pack
    cls.unpack = classmethod(_unpack)
    cls.offsetof = classmethod(_offsetof)
    cls.__class_getitem__ = classmethod(lambda c, n: Array(c.CTYPE, n))
    return cls


def _check_code(cls, i: int, f: Field, indent: str) -> str:
    """Source that checks (and canonicalises) the local named like the
    field: scalars inline, the rest through their C type."""
    where = f"'{cls.__name__}.{f.name}'"
    if isinstance(f.ctype, Scalar):
        return (f"{indent}if {f.name}.__class__ is not int or not "
                f"{f.ctype.lo} <= {f.name} <= {f.ctype.hi}:\n"
                f"{indent}    _c{i}.check({f.name}, {where})")
    return f"{indent}{f.name} = _c{i}.check({f.name}, {where})"


def _compile(source: str, name: str, env: dict[str, Any]) -> Callable:
    exec(source, env)
    return env[name]


def _make_init(cls, fields: list[Field]) -> Callable:
    """__init__ with every field defaulting to its zero, each value checked;
    defaults are already canonical and skip the check."""
    env: dict[str, Any] = {}
    params = ", ".join(f"{f.name}=_d{i}" for i, f in enumerate(fields))
    lines = [f"def __init__(self, {params}):"]
    for i, f in enumerate(fields):
        env[f"_c{i}"] = f.ctype
        env[f"_d{i}"] = f.ctype.zero()
        # Frozen: write through the slot's descriptor, which is also the
        # quickest way in.
        env[f"_s{i}"] = cls.__dict__[f.name].__set__
        if isinstance(f.ctype, Scalar):
            lines.append(_check_code(cls, i, f, "    "))
        else:
            lines.append(f"    if {f.name} is not _d{i}:\n" + _check_code(cls, i, f, "        "))
        lines.append(f"    _s{i}(self, {f.name})")
    if not fields:
        lines.append("    pass")
    return _compile("\n".join(lines), "__init__", env)


def _make_replace(cls, fields: list[Field]) -> Callable:
    """replace(**changes): a copy with some fields changed, how Xen's OUT
    fields come back. Only the changed fields are checked; the others were
    checked when this instance was made."""
    if not fields:
        return lambda self: self
    env: dict[str, Any] = {"_M": _MISSING, "_new": object.__new__, "_cls": cls}
    params = ", ".join(f"{f.name}=_M" for f in fields)
    lines = [f"def replace(self, *, {params}):", "    new = _new(_cls)"]
    for i, f in enumerate(fields):
        env[f"_c{i}"] = f.ctype
        env[f"_s{i}"] = cls.__dict__[f.name].__set__
        lines.append(f"    if {f.name} is _M:\n        _s{i}(new, self.{f.name})\n    else:\n"
                     + _check_code(cls, i, f, "        ")
                     + f"\n        _s{i}(new, {f.name})")
    lines.append("    return new")
    return _compile("\n".join(lines), "replace", env)


_MISSING = object()


def _pack(self) -> bytes:
    buf = bytearray(self.SIZE)
    for f in self.FIELDS:
        f.ctype.pack_into(buf, f.offset, getattr(self, f.name))
    return bytes(buf)




def decode_by_cmd(values: dict, payloads: dict) -> dict:
    """For a structure whose union ``u`` holds what its ``cmd`` names (the
    domctl, sysctl and platform_op calls): the union's bytes unpacked as
    that sub-op's structure."""
    payload = payloads.get(values["cmd"])
    if payload is not None and isinstance(values["u"], bytes):
        values["u"] = payload.unpack(values["u"].ljust(payload.SIZE, b"\0"))
    return values


def _unpack(cls, buf, offset: int = 0):
    if len(buf) - offset < cls.SIZE:
        raise ValueError(f"{cls.__name__} needs {cls.SIZE} bytes, got {len(buf) - offset}")
    values = {f.name: f.ctype.unpack_from(buf, offset + f.offset) for f in cls.FIELDS}
    decode = getattr(cls, "_decode", None)
    if decode is not None:
        values = decode(values)
    return cls(**values)


def _offsetof(cls, name: str) -> int:
    for f in cls.FIELDS:
        if f.name == name:
            return f.offset
    raise KeyError(f"{cls.__name__} has no field {name}")


def sizeof(cls) -> int:
    return _ctype_of(cls).size


def offsetof(cls, name: str) -> int:
    return cls.offsetof(name)


def cstr(raw: bytes) -> str:
    """A NUL-terminated C string from a char array."""
    return raw.split(b"\0", 1)[0].decode("latin-1")
