"""The device strings of xl.cfg (`disk = [...]`, `vif = [...]`, `vtpm = [...]`),
read the way xl reads them.

Disks go through libxlutil's xlu_disk_parse, a flex scanner: every rule is
tried at the current position, the longest match wins and an earlier rule
wins a tie, and a trailing context (`head/trail`) counts towards the length
but is not consumed. That is what makes `phy:` outrank a positional target
and what lets leading blanks vanish while trailing ones stay. The scanner is
reproduced rule for rule below, because its quirks are part of the syntax
people's configs depend on. It follows the scanner Xen 4.17 ships, which was
generated before `trusted`/`untrusted` were added to libxlu_disk_l.l: in
4.17 those words are positional parameters like any other.

Vifs and vTPMs are read by xl itself (xl_parse.c): strtok on commas, a
`key=` prefix match per token. Vif rates go through libxlutil's
xlu_vif_parse_rate. The numbers follow glibc's strtoul/sscanf, which is
where most surprises come from (octal rates, `hd` alone naming a disk).

What libxl fills in later (a vif's bridge, MAC, script, MTU; a vTPM's UUID)
is filled in here, except that what libxl draws at random is derived from
the caller's `domain` (its name or UUID) and `devid` instead, so that the
same config always gives the same machine.

Errors raise DevSpecError (a ValueError) carrying the messages xl would
print, without the "<config file>: " in front of them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

__all__ = [
    "DevSpecError", "DiskSpec", "VifSpec", "VtpmSpec",
    "parse_disk", "parse_vif", "parse_vtpm", "parse_rate", "parse_uuid", "vdev_to_devid",
]


class DevSpecError(ValueError):
    """A device string xl refuses; `messages` are xl's complaints in order."""

    def __init__(self, messages: Sequence[str]):
        self.messages = tuple(messages)
        super().__init__("\n".join(self.messages))


# ---------------------------------------------------------------------------
# C library number parsing, as glibc does it

_ULONG_MAX = (1 << 64) - 1
_LONG_MAX = (1 << 63) - 1
_INT_MAX = (1 << 31) - 1
_C_SPACE = " \t\n\v\f\r"
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _digit(ch: str, base: int) -> int:
    value = _DIGITS.find(ch.lower()) if ch else -1
    return value if 0 <= value < base else -1


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _strtoul(text: str, start: int = 0, base: int = 10) -> tuple[int, int, bool]:
    """glibc strtoul: (value, index of the first unread char, overflowed).

    With no digits the end is `start` itself, as C leaves endptr at nptr.
    A minus sign negates modulo 2**64; overflow gives ULONG_MAX.
    """
    i, n = start, len(text)
    while i < n and text[i] in _C_SPACE:
        i += 1
    negative = False
    if i < n and text[i] in "+-":
        negative = text[i] == "-"
        i += 1
    # "0x" only counts as a prefix when a hex digit follows; otherwise the
    # subject sequence is just "0" and the end stops before the "x".
    if base in (0, 16) and text[i:i + 2].lower() == "0x" and _digit(text[i + 2:i + 3], 16) >= 0:
        base, i = 16, i + 2
    elif base == 0:
        base = 8 if text[i:i + 1] == "0" else 10
    first = i
    value = 0
    while i < n and _digit(text[i], base) >= 0:
        value = value * base + _digit(text[i], base)
        i += 1
    if i == first:
        return 0, start, False
    if value > _ULONG_MAX:
        return _ULONG_MAX, i, True
    return ((-value) & _ULONG_MAX if negative else value), i, False


def _scanf_int(text: str, start: int) -> tuple[int, int] | None:
    """One `%i` of glibc's sscanf: (the int stored, index after it), or None.

    Unlike strtoul, scanf has already consumed the "x" of a bare "0x" when it
    finds no hex digit after it, and takes the zero.
    """
    i, n = start, len(text)
    while i < n and text[i] in _C_SPACE:
        i += 1
    negative = False
    if i < n and text[i] in "+-":
        negative = text[i] == "-"
        i += 1
    if text[i:i + 2].lower() == "0x":
        base, i = 16, i + 2
        first = i - 1           # the zero already stands for a number
    elif text[i:i + 1] == "0":
        base, first = 8, i
    else:
        base, first = 10, i
    value = 0
    while i < n and _digit(text[i], base) >= 0:
        value = value * base + _digit(text[i], base)
        i += 1
    if i == first:
        return None
    if negative:
        value = -value
    # The digits go through strtol, which saturates, then into an int.
    value = max(-_LONG_MAX - 1, min(_LONG_MAX, value))
    return _int32(value), i


def _atoi(text: str) -> int:
    i = 0
    while i < len(text) and text[i] in _C_SPACE:
        i += 1
    m = re.match(r"[+-]?[0-9]+", text[i:])
    if not m:
        return 0
    value = int(m.group())
    return _int32(max(-_LONG_MAX - 1, min(_LONG_MAX, value)))


# ---------------------------------------------------------------------------
# Virtual disk names (libxl__device_disk_dev_number)

def _virtdisk_matches(vdev: str, prefix: str, max_index: int,
                      max_partition: int) -> tuple[int, int] | None:
    if not vdev.startswith(prefix):
        return None
    # The drive letters are a bijective base-26 number: a..z, aa..az, ...
    # With no letter at all the index stays -1, and libxl lets that through.
    index = -1
    i = len(prefix)
    while i < len(vdev) and "a" <= vdev[i] <= "z":
        index = (index + 1) * 26 + ord(vdev[i]) - ord("a")
        if index > max_index:
            return None
        i += 1
    if i == len(vdev):
        return index, 0
    if vdev[i] == "0":
        return None                 # a partition number has no leading zero
    value, end, _ = _strtoul(vdev, i, 10)
    partition = value - (1 << 64) if value > _LONG_MAX else value   # a long
    if partition > max_partition or end != len(vdev):
        return None
    return index, partition


def vdev_to_devid(vdev: str) -> int:
    """The device number libxl gives a virtual disk name (its xenstore devid).

    xvdX: 202 << 8 | disk << 4 | partition while disk and partition are at
    most 15, beyond that 1 << 28 | disk << 8 | partition (up to 2**20 disks,
    255 partitions); `dNpM` names the same numbers directly. hdX are the IDE
    majors 3 and 22 (4 disks, 63 partitions), sdX the SCSI major 8 (16 disks,
    15 partitions), and a plain number is taken as it is.
    """
    number = _dev_number(vdev)
    if number < 0:
        raise ValueError(f"Invalid or unsupported virtual disk identifier {vdev}")
    return number


def _dev_number(vdev: str) -> int:
    vdev = vdev.split("\0", 1)[0]
    disk_partition = None
    if vdev.startswith("d"):
        disk = _scanf_int(vdev, 1)
        if disk is not None and vdev[disk[1]:disk[1] + 1] == "p":
            partition = _scanf_int(vdev, disk[1] + 1)
            if (partition is not None and partition[1] == len(vdev)
                    and disk[0] < (1 << 20) and partition[0] < 256):
                disk_partition = disk[0], partition[0]
    if disk_partition is None:
        disk_partition = _virtdisk_matches(vdev, "xvd", (1 << 20) - 1, 255)
    if disk_partition is not None:
        disk, partition = disk_partition
        if disk <= 15 and partition <= 15:
            return _int32((202 << 8) | (disk << 4) | partition)
        return _int32((1 << 28) | (disk << 8) | partition)

    value, end, overflowed = _strtoul(vdev, 0, 0)
    if not overflowed and end == len(vdev) and value <= _INT_MAX:
        return value

    hd = _virtdisk_matches(vdev, "hd", 3, 63)
    if hd is not None:
        disk, partition = hd
        return _int32(((3 if disk < 2 else 22) << 8) | ((disk & 1) << 6) | partition)
    sd = _virtdisk_matches(vdev, "sd", 15, 15)
    if sd is not None:
        disk, partition = sd
        return _int32((8 << 8) | (disk << 4) | partition)
    return -1


# ---------------------------------------------------------------------------
# Disks (libxlutil's xlu_disk_parse)

_FORMATS = {"": "raw", "raw": "raw", "qcow": "qcow", "qcow2": "qcow2", "vhd": "vhd",
            "empty": "empty", "qed": "qed"}
_BACKENDS = ("phy", "tap", "qdisk", "standalone")
_SPECIFICATIONS = ("xen", "virtio")


@dataclass(frozen=True)
class DiskSpec:
    """A parsed disk, in libxl_device_disk's terms.

    `readwrite` is 1 for a writable disk and 0 for a read-only one (a cdrom
    is always read-only); `None` means a field the string did not set.
    """

    pdev_path: str | None
    vdev: str
    format: str = "raw"
    readwrite: int = 1
    is_cdrom: int = 0
    removable: int = 0
    backend_domname: str | None = None
    backend: str | None = None
    script: str | None = None
    direct_io_safe: bool = False
    discard_enable: bool | None = None
    specification: str | None = None
    colo_enable: bool | None = None
    colo_host: str | None = None
    colo_port: int = 0
    colo_export: str | None = None
    active_disk: str | None = None
    hidden_disk: str | None = None

    @property
    def read_only(self) -> bool:
        return not self.readwrite

    @property
    def devid(self) -> int:
        return vdev_to_devid(self.vdev)

    def to_json(self) -> dict:
        """libxl_device_disk as libxl prints it: fields still at their
        initial value are left out, defbools are "True"/"False"."""
        return _libxl_json([
            ("backend_domname", self.backend_domname), ("pdev_path", self.pdev_path),
            ("vdev", self.vdev), ("backend", self.backend), ("format", self.format),
            ("script", self.script), ("removable", self.removable or None),
            ("readwrite", self.readwrite or None), ("is_cdrom", self.is_cdrom or None),
            ("direct_io_safe", self.direct_io_safe or None),
            ("discard_enable", _defbool(self.discard_enable)),
            ("specification", self.specification),
            ("colo_enable", _defbool(self.colo_enable)), ("colo_host", self.colo_host),
            ("colo_port", self.colo_port or None), ("colo_export", self.colo_export),
            ("active_disk", self.active_disk), ("hidden_disk", self.hidden_disk),
        ])


def _defbool(value: bool | None) -> str | None:
    return None if value is None else ("True" if value else "False")


def _libxl_json(fields: list[tuple[str, object]]) -> dict:
    """Callers pass None for a field at libxl's initial value, which libxl's
    JSON leaves out (0 for most numbers, -1 for a devid, NULL strings)."""
    return {name: value for name, value in fields if value is not None}


class _DiskScan:
    """The scanner's state (DiskParseContext plus the libxl_device_disk)."""

    def __init__(self) -> None:
        self.disk: dict = {"readwrite": 1}
        self.errors: list[str] = []
        self.spec = ""
        self.access_set = False
        self.had_depr_prefix = False

    def err(self, erroneous: str | None, message: str) -> None:
        near = f": near `{erroneous}'" if erroneous is not None else ""
        self.errors.append(f"config parsing error in disk specification: {message}{near}"
                           f" in `{self.spec}'")

    def save(self, what: str, key: str, value: str) -> None:
        current = self.disk.get(key)
        if current:     # an empty string may be overwritten without a word
            self.err(value, f"{what} respecified")
            return
        self.disk[key] = value

    def set_enum(self, key: str, value: str, erroneous: str) -> None:
        current = self.disk.get(key)
        if current is not None and current != value:
            self.err(erroneous, f"{key} respecified")
        else:
            self.disk[key] = value

    def set_format(self, text: str) -> None:
        if text in _FORMATS:
            self.set_enum("format", _FORMATS[text], text)
        else:
            self.err(text, "unknown value for format")

    def set_access(self, text: str) -> None:
        if text in ("r", "ro"):
            self.disk["readwrite"] = 0
        elif text in ("rw", "w", ""):
            self.disk["readwrite"] = 1
        else:
            self.err(text, "unknown value for access")

    def vdev_and_devtype(self, text: str) -> bool:
        """`hdc:cdrom`, the old way of giving a device type with the vdev."""
        vdev, colon, devtype = text.rpartition(":")
        if not colon:
            return False
        self.save("vdev", "vdev", vdev)
        if devtype == "cdrom":
            self.disk["is_cdrom"] = 1
        elif devtype == "disk":
            self.disk["is_cdrom"] = 0
        else:
            self.err(devtype, "unknown deprecated type")
        return True

    def positional(self, text: str) -> bool:
        disk = self.disk
        if self.errors:
            pass                      # one mistake tends to cause the next
        elif disk.get("pdev_path") is None:
            self.save("target", "pdev_path", text)
        elif not self.had_depr_prefix and disk.get("format") is None:
            if disk["pdev_path"] == "" and self.vdev_and_devtype(text):
                disk["format"] = "empty"
            else:
                self.set_format(text)
        elif disk.get("vdev") is None:
            if not self.vdev_and_devtype(text):
                self.save("vdev", "vdev", text)
        elif not self.access_set:
            self.access_set = True
            self.set_access(text)
        else:
            self.err(text, "too many positional parameters")
            return False
        return True


def _strip_comma(text: str) -> str:
    return text[:-1] if text.endswith(",") else text


def _value(text: str) -> str:
    return _strip_comma(text).split("=", 1)[1]


def _keyword(key: str, act: Callable[[_DiskScan, str], None]):
    return (rf"{key}=[^,]*,?", None, lambda s, t: act(s, _value(t)))


def _flag(word: str, act: Callable[[_DiskScan], None]):
    return (rf"{word},?", None, lambda s, t: act(s))


def _set(key: str, value):
    def act(scan: _DiskScan) -> None:
        scan.disk[key] = value
    return act


def _set_colo_port(scan: _DiskScan, text: str) -> None:
    port = _atoi(text)
    if port:
        scan.disk["colo_port"] = port
    else:
        scan.err(text, "unknown value for colo_port")


def _set_named(key: str, names: Sequence[str], what: str):
    def act(scan: _DiskScan, text: str) -> None:
        if text in names:
            scan.set_enum(key, text, text)
        else:
            scan.err(text, f"unknown value for {what}")
    return act


def _depr_format(scan: _DiskScan, text: str) -> None:
    scan.had_depr_prefix = True
    scan.set_format(text[:-1])


def _depr_script(scan: _DiskScan, text: str) -> None:
    scan.had_depr_prefix = True
    scan.save("script", "script", f"block-{text[:-1]}")


def _depr_ignored(scan: _DiskScan, text: str) -> None:
    scan.had_depr_prefix = True


def _unknown_prefix(scan: _DiskScan, text: str) -> bool:
    scan.err(text, "unknown deprecated disk prefix")
    return False


def _bad_syntax(scan: _DiskScan, text: str) -> bool:
    scan.err(text, "bad disk syntax")
    return False


# libxlu_disk_l.l's rules, in its order: (pattern, trailing context or None,
# action on the matched text). An action returning False ends the scan.
_DISK_RULES = [
    (r"[ \t\n]+", r"(?:[^ \t\n].*)?", lambda s, t: None),
    _keyword("format", _DiskScan.set_format),
    _flag("cdrom", _set("is_cdrom", 1)),
    _flag("devtype=cdrom", _set("is_cdrom", 1)),
    _flag("devtype=disk", _set("is_cdrom", 0)),
    (r"devtype=[^,]*,?", None, lambda s, t: s.err(t, "unknown value for type")),
    _keyword("access", _DiskScan.set_access),
    _keyword("backend", lambda s, v: s.save("backend", "backend_domname", v)),
    _keyword("backendtype", _set_named("backend", _BACKENDS, "backendtype")),
    _keyword("specification", _set_named("specification", _SPECIFICATIONS, "specification")),
    _keyword("vdev", lambda s, v: s.save("vdev", "vdev", v)),
    _keyword("script", lambda s, v: s.save("script", "script", v)),
    _flag("direct-io-safe", _set("direct_io_safe", True)),
    _flag("discard", _set("discard_enable", True)),
    _flag("no-discard", _set("discard_enable", False)),
    _flag("colo", _set("colo_enable", True)),
    _flag("no-colo", _set("colo_enable", False)),
    _keyword("colo-host", lambda s, v: s.save("colo-host", "colo_host", v)),
    _keyword("colo-port", _set_colo_port),
    _keyword("colo-export", lambda s, v: s.save("colo-export", "colo_export", v)),
    _keyword("active-disk", lambda s, v: s.save("active-disk", "active_disk", v)),
    _keyword("hidden-disk", lambda s, v: s.save("hidden-disk", "hidden_disk", v)),
    # target= takes the rest of the string, commas and all.
    (r"target=.*", None, lambda s, t: s.save("target", "pdev_path", _value(t))),
    (r"[a-z][-a-z0-9]*=[^,],?", None, lambda s, t: s.err(t, "unknown parameter")),
    # The old "phy:" style prefixes: their trailing context reaches the end
    # of the string, so they outrank anything else that starts here.
    (r"(?:raw|qcow2?|vhd):", r".*", _depr_format),
    (r"(?:iscsi|e?nbd|drbd):", r".*", _depr_script),
    (r"tapdisk:", r".*", _depr_ignored),
    (r"tap2?:", r".*", _depr_ignored),
    (r"aio:", r".*", _depr_ignored),
    (r"ioemu:", r".*", _depr_ignored),
    (r"file:", r".*", _depr_ignored),
    (r"phy:", r".*", _depr_ignored),
    (r"[a-z][a-z0-9]*:", r"(?:[^a-z0-9].*)?", _unknown_prefix),
    (r"[^=,]*,", None, lambda s, t: s.positional(_strip_comma(t))),
    (r"[^=,]+,?", None, lambda s, t: s.positional(_strip_comma(t))),
    # Anything else ('=' where a parameter should start) ends the scan,
    # quoting the rest of the string.
    (r".", None, None),
]
_DISK_SCANNER = [(re.compile(head), re.compile(head + trail) if trail is not None else None, act)
                 for head, trail, act in _DISK_RULES]
_REST_OF_LINE = re.compile(r".*")


def _scan_disk(scan: _DiskScan, spec: str) -> None:
    scan.spec = spec
    pos = 0
    while pos < len(spec):
        best_length, best = 0, None
        for head, whole, act in _DISK_SCANNER:
            m = (whole or head).match(spec, pos)
            if m and m.end() - pos > best_length:
                best_length, best = m.end() - pos, (head, act)
        assert best is not None       # '.' and the blank rule cover every char
        head, act = best
        end = head.match(spec, pos).end()
        if act is None:               # flex's LEXERR state: yymore, then .*
            rest = _REST_OF_LINE.match(spec, end).end()
            # At the end of the string the second half never matches, so a
            # final '=' is dropped without a word.
            if rest > end or end < len(spec):
                _bad_syntax(scan, spec[pos:rest])
            return
        if act(scan, spec[pos:end]) is False:
            return
        pos = end


def parse_disk(spec: str | Sequence[str]) -> DiskSpec:
    """Reads one `disk = [...]` entry, as xlu_disk_parse does.

    Positional form `target,format,vdev,access` (the target may carry an
    old `phy:`/`file:`/`raw:`... prefix, and then the format slot is
    skipped), keyword form `format=,vdev=,access=,devtype=,backend=,
    backendtype=,script=,discard,no-discard,direct-io-safe,...,target=`
    (target= last: it takes the rest, commas too), or a mix. Blanks before a
    parameter are ignored; blanks before a comma are kept. A sequence of
    strings is read as one disk, as `xl block-attach` passes its arguments.
    """
    specs = [spec] if isinstance(spec, str) else list(spec)
    scan = _DiskScan()
    for one in specs:
        # What C sees ends at the first NUL.
        _scan_disk(scan, one.split("\0", 1)[0])
        if scan.errors:
            raise DevSpecError(scan.errors)

    disk = scan.disk
    if disk.get("format") is None:
        disk["format"] = "raw"
    if disk.get("is_cdrom"):
        disk["removable"] = 1
        disk["readwrite"] = 0
        if not disk.get("pdev_path"):
            disk["format"] = "empty"
    if not specs:
        scan.spec = "(null)"
    if disk.get("vdev") is None:
        scan.err(None, "no vdev specified")
    elif disk.get("pdev_path") is None and not disk.get("removable"):
        scan.err(None, "no target specified (and device not removable)")
    if scan.errors:
        raise DevSpecError(scan.errors)
    disk.setdefault("pdev_path", None)
    return DiskSpec(**disk)


# ---------------------------------------------------------------------------
# Vif rates (libxlutil's xlu_vif_parse_rate)

_RATE_RE = re.compile(r"[0-9]+[GMK]?[Bb]/s")
_INTERVAL_RE = re.compile(r"[0-9]+[mu]?s?")
_UINT32_MAX = 0xFFFFFFFF
_UINT64_MAX = (1 << 64) - 1


def _vif_error(message: str, text: str) -> DevSpecError:
    return DevSpecError([f"config parsing error in vif: {message} in `{text}'"])


def parse_rate(rate: str) -> tuple[int, int]:
    """`RATE[@INTERVAL]` to (bytes per interval, interval in microseconds).

    RATE is digits, an optional G, M or K (powers of 1000), then B/s or b/s
    (bits, divided by 8 after scaling); INTERVAL is digits with s, ms, m, us
    or u, or none for seconds; 50 ms when absent. Both numbers are read
    with base 0, so a leading 0 means octal, and each must be between 1 and
    2**32 - 1 before scaling.
    """
    amount, at, interval = rate.partition("@")
    if amount == "":
        raise _vif_error("no rate specified", rate)
    if not _RATE_RE.fullmatch(amount):
        raise _vif_error("invalid rate", amount)
    value, end, _ = _strtoul(amount, 0, 0)
    if value == 0 or value > _UINT32_MAX:
        raise _vif_error("rate overflow", amount)
    unit = amount[end:]
    value *= {"G": 1000 ** 3, "M": 1000 ** 2, "K": 1000}.get(unit[:1], 1)
    if unit[:1] == "b" or unit[1:2] == "b":
        value //= 8
    bytes_per_sec = value

    interval_usecs = 50_000
    if at:
        if not _INTERVAL_RE.fullmatch(interval):
            raise _vif_error("invalid replenishment interval", interval)
        value, end, _ = _strtoul(interval, 0, 0)
        if value == 0 or value > _UINT32_MAX:
            raise _vif_error("replenishment interval overflow", interval)
        unit = interval[end:]
        if unit in ("", "s"):
            value *= 1000 * 1000
        elif unit.startswith("m"):
            value *= 1000
        if value > _UINT32_MAX:
            raise _vif_error("replenishment interval overflow", interval)
        interval_usecs = value

    if bytes_per_sec > _UINT64_MAX // interval_usecs:
        raise _vif_error("rate overflow", rate)
    return bytes_per_sec * interval_usecs // 1_000_000, interval_usecs


# ---------------------------------------------------------------------------
# Vifs (xl_parse.c's parse_nic_config)

XEN_SCRIPT_DIR = "/etc/xen/scripts"

# libxl_device_nic's COLO strings in its order; xl takes each as `name=`,
# except the first, which it spells `forwarddev=`.
_NIC_COLO_FIELDS = (
    "coloft_forwarddev",
    *(f"colo_sock_{end}_{part}"
      for end in ("mirror", "compare_pri_in", "compare_sec_in", "compare_notify",
                  "redirector0", "redirector1", "redirector2")
      for part in ("id", "ip", "port")),
    "colo_filter_mirror_queue", "colo_filter_mirror_outdev",
    *(f"colo_filter_redirector{n}_{part}" for n in (0, 1) for part in ("queue", "indev", "outdev")),
    "colo_compare_pri_in", "colo_compare_sec_in", "colo_compare_out", "colo_compare_notify_dev",
    *(f"colo_sock_sec_redirector{n}_{part}" for n in (0, 1) for part in ("id", "ip", "port")),
    *(f"colo_filter_sec_redirector{n}_{part}" for n in (0, 1) for part in ("queue", "indev", "outdev")),
    "colo_filter_sec_rewriter0_queue", "colo_checkpoint_host", "colo_checkpoint_port",
)
_NIC_COLO_KEYS = {("forwarddev" if name == "coloft_forwarddev" else name): name
                  for name in _NIC_COLO_FIELDS}
_NIC_STRING_KEYS = {"bridge": "bridge", "gatewaydev": "gatewaydev", "ip": "ip",
                    "script": "script", "backend": "backend_domname", "vifname": "ifname",
                    "model": "model"}


@dataclass(frozen=True)
class VifSpec:
    """A parsed vif in libxl_device_nic's terms, with libxl's defaults in.

    A rate of 0 bytes per 0 us is no limit. `colo` holds the COLO strings
    by their libxl names; `warnings` what xl printed and went on from.
    """

    devid: int
    mac: str
    bridge: str = "xenbr0"
    ip: str | None = None
    backend_domname: str | None = None
    ifname: str | None = None
    script: str = f"{XEN_SCRIPT_DIR}/vif-bridge"
    nictype: str = "vif"
    model: str = "rtl8139"
    mtu: int = 1500
    rate_bytes_per_interval: int = 0
    rate_interval_usecs: int = 0
    gatewaydev: str | None = None
    trusted: bool = True
    colo: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def ips(self) -> tuple[str, ...]:
        return tuple(self.ip.split()) if self.ip else ()

    def to_json(self) -> dict:
        colo = dict(self.colo)
        return _libxl_json([
            ("backend_domname", self.backend_domname),
            ("devid", None if self.devid == -1 else self.devid),
            ("mtu", self.mtu or None), ("model", self.model), ("mac", self.mac), ("ip", self.ip),
            ("bridge", self.bridge), ("ifname", self.ifname), ("script", self.script),
            ("nictype", self.nictype),
            ("rate_bytes_per_interval", self.rate_bytes_per_interval or None),
            ("rate_interval_usecs", self.rate_interval_usecs or None),
            ("gatewaydev", self.gatewaydev),
            *((name, colo.get(name)) for name in _NIC_COLO_FIELDS),
            ("trusted", _defbool(self.trusted)),
        ])


def _strtok(text: str, delimiter: str):
    """strtok's tokens, each with what follows it in the buffer: strtok has
    put a NUL after the token but not yet touched the rest. None when the
    token ends the buffer, past which C would read outside it."""
    pos = 0
    while True:
        while pos < len(text) and text[pos] == delimiter:
            pos += 1
        if pos >= len(text):
            return
        end = text.find(delimiter, pos)
        if end < 0:
            yield text[pos:], None
            return
        yield text[pos:end], text[end + 1:]
        pos = end + 1


def _parse_mac(value: str, tail: str | None, mac: list[int]) -> bool:
    """xl's loop: six strtoul(16), each followed by one separator of any
    kind. A short MAC reads on into the next token; reading past the end of
    the string is taken as a bad MAC. The bytes read before a bad one stay."""
    memory = value + "\0" + (tail + "\0" if tail is not None else "")
    pos = 0
    for i in range(6):
        if pos >= len(memory):
            return False
        number, end, _ = _strtoul(memory, pos, 16)
        number &= 0xFFFFFFFF                # xl keeps it in an unsigned int
        if end == pos or number > 255:
            return False
        mac[i] = number
        pos = end + 1
    return True


def _parse_ulong(text: str) -> int:
    value, end, _ = _strtoul(text, 0, 10)
    if end == 0 or value == _ULONG_MAX:
        raise DevSpecError([f'failed to convert "{text}" to number'])
    return _int32(value)


def _derived_bytes(kind: str, domain: str, devid: int, n: int) -> bytes:
    return hashlib.sha256(f"xenlab-{kind}\0{domain}\0{devid}".encode()).digest()[:n]


def parse_vif(spec: str, *, devid: int = 0, domain: str = "") -> VifSpec:
    """Reads one `vif = [...]` entry, as xl's parse_nic_config does.

    Comma-separated `key=value` (leading spaces of a token are dropped,
    trailing ones kept): mac, ip, bridge, gatewaydev (netdev), script,
    backend, vifname, type (vif or ioemu), model, rate, devid, mtu, the COLO
    keys, and `trusted`/`untrusted`. Unknown keys, a bad type and a bad MAC
    only warn, as in xl; a bad rate, devid or mtu is an error.

    `devid` is the devid libxl would hand out (the entry's index for a new
    domain) unless the spec names one. Without a MAC, libxl picks
    00:16:3e plus three random bytes; here the bytes come from a hash of
    (`domain`, devid), `domain` being the domain's name or UUID.
    """
    nic: dict = {}
    mac = [0] * 6
    colo: dict[str, str] = {}
    warnings: list[str] = []
    for token, tail in _strtok(spec.split("\0", 1)[0], ","):
        token = token.lstrip(" ")
        key, eq, value = token.partition("=")
        if not eq:
            if token in ("trusted", "untrusted"):
                nic["trusted"] = token == "trusted"
            else:
                warnings.append(f"unrecognized argument `{token}'")
        elif key == "type":
            if value in ("vif", "ioemu"):
                nic["nictype"] = "vif" if value == "vif" else "vif_ioemu"
            else:
                warnings.append("Invalid parameter `type'.")
        elif key == "mac":
            if not _parse_mac(value, tail, mac):
                warnings.append("Invalid parameter `mac'.")
        elif key in _NIC_STRING_KEYS:
            nic[_NIC_STRING_KEYS[key]] = value
        elif key == "netdev":
            warnings.append("the netdev parameter is deprecated, please use gatewaydev instead")
            nic["gatewaydev"] = value
        elif key == "rate":
            nic["rate_bytes_per_interval"], nic["rate_interval_usecs"] = parse_rate(value)
        elif key in _NIC_COLO_KEYS:
            colo[_NIC_COLO_KEYS[key]] = value
        elif key == "accel":
            warnings.append("the accel parameter for vifs is currently not supported")
        elif key == "devid":
            nic["devid"] = _parse_ulong(value)
        elif key == "mtu":
            nic["mtu"] = _parse_ulong(value)
        else:
            warnings.append(f"unrecognized argument `{token}'")

    nic.setdefault("devid", devid)
    if not nic.get("mtu"):
        nic["mtu"] = 1500
    if not any(mac):
        random = _derived_bytes("mac", domain, nic["devid"], 3)
        mac = [0x00, 0x16, 0x3E, random[0] & 0x7F, random[1], random[2]]
    nic["mac"] = ":".join(f"{b:02x}" for b in mac)
    nic["colo"] = tuple((name, colo[name]) for name in _NIC_COLO_FIELDS if name in colo)
    return VifSpec(**nic, warnings=tuple(warnings))


# ---------------------------------------------------------------------------
# vTPMs (xl_parse.c)

_UUID_RE = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")


def parse_uuid(text: str) -> str:
    """libxl_uuid_from_string (libuuid's uuid_parse): exactly 8-4-4-4-12 hex
    digits, either case; returned as libxl prints it, in lower case."""
    if not _UUID_RE.fullmatch(text):
        raise ValueError(f"not a UUID: {text!r}")
    return text.lower()


@dataclass(frozen=True)
class VtpmSpec:
    """A parsed vTPM in libxl_device_vtpm's terms."""

    backend_domname: str
    uuid: str
    devid: int = 0

    def to_json(self) -> dict:
        return _libxl_json([("backend_domname", self.backend_domname),
                            ("devid", None if self.devid == -1 else self.devid),
                            ("uuid", self.uuid)])


def parse_vtpm(spec: str, *, devid: int = 0, domain: str = "") -> VtpmSpec:
    """Reads one `vtpm = [...]` entry as xl does: `backend=DOMAIN` (required)
    and `uuid=UUID`, comma-separated. Any other key is an error; a token
    without '=' silently ends the reading, as it does in xl. Without a UUID
    (or with the nil one) libxl makes a random one; here it comes from a
    hash of (`domain`, devid)."""
    backend = None
    uuid = None
    for token, _ in _strtok(spec.split("\0", 1)[0], ","):
        token = token.lstrip(" ")
        key, eq, value = token.partition("=")
        if not eq:
            break
        if key == "backend":
            backend = value
        elif key == "uuid":
            try:
                uuid = parse_uuid(value)
            except ValueError:
                raise DevSpecError([f"Failed to parse vtpm UUID: {value}"]) from None
        else:
            raise DevSpecError([f"Unknown string `{key}' in vtpm spec"])
    if backend is None:
        raise DevSpecError(["vtpm spec missing required backend field!"])
    if uuid is None or uuid == "00000000-0000-0000-0000-000000000000":
        raw = bytearray(_derived_bytes("vtpm", domain, devid, 16))
        raw[6] = raw[6] & 0x0F | 0x40       # version 4, as uuid_generate makes
        raw[8] = raw[8] & 0x3F | 0x80
        h = raw.hex()
        uuid = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return VtpmSpec(backend_domname=backend, uuid=uuid, devid=devid)
