"""hv/public held against tests/data/xen-abi.txt, the ABI dump taken from
Xen 4.17's own headers (x86_64).

Everything the dump says about something hv/public defines must agree with
it: hypercall and sub-op numbers, flags, status codes and their messages,
struct sizes and member offsets. Parts of the dump hv/public does not model
yet are skipped by name prefix (see SKIPPED_*), and a test makes sure nothing
else is skipped silently. Each check lists every mismatch at once.
"""

from __future__ import annotations

import importlib
import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hv.public import abi, errno
from hv.public.grant_table import GNTTABOP_error_msgs, GRANT_ENTRIES_PER_PAGE_V1, GrantEntryV1
from hv.public.xen import XEN_INTERFACE_VERSION, StartInfo

DUMP = Path(__file__).resolve().parent / "data" / "xen-abi.txt"

MODULES = tuple(
    importlib.import_module(f"hv.public.{name}")
    for name in ("xen", "event_channel", "grant_table", "memory", "sched", "vcpu",
                 "version", "domctl", "errno", "io.console", "io.xs_wire", "io.blkif",
                 "io.netif", "io.tpmif", "io.xenbus")
)

# Constants of the dump that hv/public owns: all of them must be defined, with
# Xen's value.
OUR_PREFIXES = (
    "__HYPERVISOR_", "EVTCHNOP_", "EVTCHNSTAT_", "EVTCHN_", "GNTTABOP_", "GNTST_",
    "GTF_", "_GTF_", "GNTMAP_", "GNTCOPY_", "VIRQ_", "NR_VIRQS", "SCHEDOP_", "SHUTDOWN_",
    "XENMEM_", "VCPUOP_", "RUNSTATE_", "XENVER_", "CONSOLEIO_", "DOMID_",
    "XEN_LEGACY_MAX_VCPUS", "XENSTORE_", "XS_", "NETTXF_", "_NETTXF_", "NETRXF_", "_NETRXF_",
    "NETIF_", "XEN_NETIF_", "BLKIF_", "XEN_IO_PROTO_", "TPMIF_STATE_", "XenbusState",
)

# Later work, not checked yet: the shared rings and their users (netif,
# blkif, tpmif), the console ring, XenbusState, grant table v2.
SKIPPED_CONSTANT_PREFIXES = ("TPMIF_TX_RING_SIZE",)
SKIPPED_TYPE_PREFIXES = (
    # The rings' own layout is held against io/ring.h's macros (test_ring.py).
    "union netif_", "union blkif_", "struct netif_extra_info", "struct blkif_sring", "struct netif_tx_sring",
    "blkif_sector_t", "blkif_vdev_t", "XENCONS_RING_IDX",
    "struct tpmif_tx_request", "grant_entry_header_t", "grant_entry_v2_t", "grant_status_t",
)
SKIPPED_PER_PAGE = ("grant_entry_v2",)


# ----------------------------------------------------------------- parsing
@dataclass
class Dump:
    interface_version: int = 0
    arch: str = ""
    sizes: dict[str, int] = field(default_factory=dict)
    fields: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    consts: dict[str, int] = field(default_factory=dict)
    strings: dict[str, str] = field(default_factory=dict)
    xsd_errors: dict[int, tuple[int, str]] = field(default_factory=dict)
    gnttab_msgs: dict[int, tuple[int, str]] = field(default_factory=dict)
    ring_sizes: dict[tuple[str, int], int] = field(default_factory=dict)
    per_page: dict[tuple[str, int], int] = field(default_factory=dict)
    not_understood: list[str] = field(default_factory=list)


HEADER = re.compile(r"# Xen public ABI dump, __XEN_INTERFACE_VERSION__=(0x[0-9a-f]+), "
                    r"__XEN_LATEST_INTERFACE_VERSION__=0x[0-9a-f]+, arch=(\w+)")
SIZEOF = re.compile(r"sizeof\(([^()]+)\) = (\d+)")
OFFSETOF = re.compile(r"  offsetof\(([^(),]+), (\w+)\) = (\d+)  \(size (\d+)\)")
CONST = re.compile(r"(\w+) = (-?\d+) \(0x([0-9a-f]+)\)")
STRING = re.compile(r'(\w+) = "([^"]*)"')
XSD_ERROR = re.compile(r'xsd_errors\[(\d+)\] = \{ (\d+), "(\w+)" \}')
GNTTAB_MSG = re.compile(r'GNTTABOP_error_msgs\[(\d+)\] \(GNTST (-?\d+)\) = "([^"]*)"')
RING_SIZE = re.compile(r"__CONST_RING_SIZE\((\w+), (\d+)\) = (\d+)")
PER_PAGE = re.compile(r"(\w+) per (\d+)-byte page = (\d+)")


def _put(table: dict, key, value, dump: Dump, line: str) -> None:
    if key in table and table[key] != value:
        dump.not_understood.append(f"{line!r}: contradicts an earlier line")
    table[key] = value


def parse_dump(text: str) -> Dump:
    dump = Dump()
    for line in text.splitlines():
        if m := HEADER.fullmatch(line):
            dump.interface_version, dump.arch = int(m[1], 16), m[2]
        elif not line.strip() or line.startswith("## "):
            continue
        elif m := SIZEOF.fullmatch(line):
            _put(dump.sizes, m[1], int(m[2]), dump, line)
        elif m := OFFSETOF.fullmatch(line):
            _put(dump.fields.setdefault(m[1], {}), m[2], (int(m[3]), int(m[4])), dump, line)
        elif m := CONST.fullmatch(line):
            value = int(m[2])
            if value & (1 << 64) - 1 != int(m[3], 16):
                dump.not_understood.append(f"{line!r}: decimal and hex disagree")
            _put(dump.consts, m[1], value, dump, line)
        elif m := STRING.fullmatch(line):
            _put(dump.strings, m[1], m[2], dump, line)
        elif m := XSD_ERROR.fullmatch(line):
            _put(dump.xsd_errors, int(m[1]), (int(m[2]), m[3]), dump, line)
        elif m := GNTTAB_MSG.fullmatch(line):
            _put(dump.gnttab_msgs, int(m[1]), (int(m[2]), m[3]), dump, line)
        elif m := RING_SIZE.fullmatch(line):
            _put(dump.ring_sizes, (m[1], int(m[2])), int(m[3]), dump, line)
        elif m := PER_PAGE.fullmatch(line):
            _put(dump.per_page, (m[1], int(m[2])), int(m[3]), dump, line)
        else:
            dump.not_understood.append(repr(line))
    return dump


ABI = parse_dump(DUMP.read_text())


def fail_with(problems: list[str], what: str) -> None:
    if problems:
        pytest.fail(f"{len(problems)} {what}:\n  " + "\n  ".join(problems), pytrace=False)


# ------------------------------------------------------------ name mapping
def python_name(c_type: str) -> str:
    """struct evtchn_alloc_unbound -> EvtchnAllocUnbound, grant_entry_v1_t -> GrantEntryV1."""
    base = c_type.split(" ", 1)[1] if c_type.startswith(("struct ", "union ")) else c_type
    base = base.removesuffix("_t")
    return "".join(part[:1].upper() + part[1:] for part in base.split("_"))


OUR_STRUCTS = {
    obj.__name__: obj for mod in MODULES for obj in vars(mod).values()
    if isinstance(obj, type) and isinstance(getattr(obj, "CTYPE", None), abi.StructType)
}
OUR_SCALARS = {name: t for name, t in vars(abi).items() if isinstance(t, abi.Scalar)}

# C members that hv/public spells as several fields: start_info's console
# union is written as its domU variant.
FLATTENED = {
    (StartInfo, "console"): ("console_mfn", "console_evtchn"),
}


def our_struct(c_type: str):
    return OUR_STRUCTS.get(python_name(c_type))


def is_skipped_type(c_type: str) -> bool:
    return c_type.startswith(SKIPPED_TYPE_PREFIXES)


def c_const_name(name: str) -> str:
    return "__" + name if name.startswith("HYPERVISOR_") else name


def python_const_name(c_name: str) -> str:
    return c_name[2:] if c_name.startswith("__HYPERVISOR_") else c_name


def our_constants() -> dict[str, tuple[str, int]]:
    """UPPERCASE int constants of hv/public: name -> (module, value)."""
    found: dict[str, tuple[str, int]] = {}
    for mod in MODULES:
        for name, value in vars(mod).items():
            if type(value) is int and name.lstrip("_")[:1].isupper():
                found.setdefault(name, (mod.__name__, value))
    return found


OURS = our_constants()
OUR_STRINGS = {name: value for mod in MODULES for name, value in vars(mod).items()
               if type(value) is str and name.isupper()}


# --------------------------------------------------------- the dump itself
def test_every_line_of_the_dump_is_understood():
    fail_with(ABI.not_understood, "lines of xen-abi.txt the parser does not understand")


def test_dump_is_for_the_interface_version_and_arch_we_model():
    assert (ABI.interface_version, ABI.arch) == (XEN_INTERFACE_VERSION, "x86_64")


def test_hv_public_modules_agree_among_themselves():
    problems = []
    for mod in MODULES:
        for name, value in vars(mod).items():
            if name in OURS and type(value) is int and OURS[name][1] != value:
                problems.append(f"{name}: {OURS[name][0]} says {OURS[name][1]}, "
                                f"{mod.__name__} says {value}")
    fail_with(problems, "constants defined twice with different values")


# --------------------------------------------------------------- constants
def test_every_dump_constant_is_ours_or_deliberately_skipped():
    stray = [n for n in ABI.consts
             if not n.startswith(OUR_PREFIXES) and not n.startswith(SKIPPED_CONSTANT_PREFIXES)
             and python_const_name(n) not in OURS]
    stray += [n for n in ABI.strings if not n.startswith(SKIPPED_CONSTANT_PREFIXES)
              and n not in OUR_STRINGS]
    fail_with(stray, "dump constants neither checked nor listed as skipped")


def test_string_constants_match():
    problems = [f"{n}: ours {OUR_STRINGS.get(n)!r}, Xen {v!r}" for n, v in ABI.strings.items()
                if not n.startswith(SKIPPED_CONSTANT_PREFIXES) and OUR_STRINGS.get(n) != v]
    fail_with(problems, "string constants that differ from Xen's")


def test_xenstore_error_names_match_xsd_errors_in_order():
    from hv.public.io.xs_wire import XSD_ERRORS
    assert XSD_ERRORS == tuple(ABI.xsd_errors[i] for i in sorted(ABI.xsd_errors))


@pytest.mark.parametrize("prefix", OUR_PREFIXES)
def test_dump_constants_with_our_prefixes_have_our_values(prefix):
    problems = []
    for c_name, xen in ABI.consts.items():
        if not c_name.startswith(prefix):
            continue
        name = python_const_name(c_name)
        if name in OURS and OURS[name][1] != xen:
            module, ours = OURS[name]
            problems.append(f"{name} ({module}): ours {ours}, Xen {xen}")
    fail_with(problems, f"{prefix}* constants that differ from Xen's")


@pytest.mark.parametrize("prefix", OUR_PREFIXES)
def test_we_define_every_dump_constant_with_our_prefixes(prefix):
    missing = [f"{python_const_name(n)} = {v}" for n, v in ABI.consts.items()
               if n.startswith(prefix) and python_const_name(n) not in OURS]
    fail_with(missing, f"{prefix}* constants of the dump hv/public does not define")


def test_our_constants_agree_with_the_dump_wherever_it_names_them():
    problems = []
    checked = 0
    for name, (module, ours) in OURS.items():
        xen = ABI.consts.get(c_const_name(name))
        if xen is None:
            continue
        checked += 1
        if xen != ours:
            problems.append(f"{name} ({module}): ours {ours} ({ours:#x}), Xen {xen} ({xen & (1 << 64) - 1:#x})")
    fail_with(problems, "hv/public constants that differ from the dump")
    # Most of the dump's constants that are ours must really have been compared.
    assert checked >= 180, f"only {checked} constants matched a dump name: is the name map broken?"


def test_gnttabop_error_msgs_match():
    problems = []
    if len(GNTTABOP_error_msgs) != len(ABI.gnttab_msgs):
        problems.append(f"ours has {len(GNTTABOP_error_msgs)} messages, Xen {len(ABI.gnttab_msgs)}")
    for i, (status, msg) in sorted(ABI.gnttab_msgs.items()):
        ours = GNTTABOP_error_msgs[i] if i < len(GNTTABOP_error_msgs) else None
        if ours != msg:
            problems.append(f"[{i}] (GNTST {status}): ours {ours!r}, Xen {msg!r}")
        # The table is indexed by -GNTST_x.
        if status != -i:
            problems.append(f"[{i}] is for GNTST {status}, not {-i}")
    fail_with(problems, "GNTTABOP_error_msgs mismatches")


def test_xenstore_error_table_uses_our_errno_numbers():
    """xsd_errors pairs each errno name with Xen's number for it."""
    problems = [f"{name}: ours {getattr(errno, name, None)}, Xen {number}"
                for number, name in ABI.xsd_errors.values()
                if getattr(errno, name, None) != number]
    fail_with(problems, "errno numbers that differ from xs_wire.h's xsd_errors")


# ----------------------------------------------------------------- layouts
def test_every_dump_type_is_ours_or_deliberately_skipped():
    types = set(ABI.sizes) | set(ABI.fields)
    stray = sorted(t for t in types
                   if our_struct(t) is None and t not in OUR_SCALARS and not is_skipped_type(t))
    stray += [e for e, _page in ABI.per_page if e not in SKIPPED_PER_PAGE
              and python_name(e) not in OUR_STRUCTS]
    fail_with(stray, "dump types neither checked nor listed as skipped")


def test_scalar_type_sizes_match():
    problems = [f"sizeof({name}): ours {OUR_SCALARS[name].size}, Xen {size}"
                for name, size in ABI.sizes.items()
                if name in OUR_SCALARS and OUR_SCALARS[name].size != size]
    checked = {name for name in ABI.sizes if name in OUR_SCALARS}
    assert checked >= {"RING_IDX", "domid_t", "evtchn_port_t", "grant_ref_t"}
    fail_with(problems, "scalar typedef sizes that differ from Xen's")


def c_member(name: str) -> str:
    """A C member named like a Python keyword is spelled with a trailing _."""
    return name[:-1] if name.endswith("_") and keyword.iskeyword(name[:-1]) else name


DUMP_STRUCTS = sorted(t for t in set(ABI.sizes) | set(ABI.fields) if our_struct(t) is not None)


@pytest.mark.parametrize("c_type", DUMP_STRUCTS)
def test_struct_layout_matches_the_dump(c_type):
    cls = our_struct(c_type)
    problems = []
    if c_type in ABI.sizes and ABI.sizes[c_type] != cls.SIZE:
        problems.append(f"sizeof({c_type}): ours {cls.SIZE} ({cls.__name__}.SIZE), Xen {ABI.sizes[c_type]}")
    ours = {c_member(f.name): f for f in cls.FIELDS}
    for member, (off, size) in ABI.fields.get(c_type, {}).items():
        if (cls, member) in FLATTENED:
            group = [ours[n] for n in FLATTENED[cls, member]]
            after = [f.offset for f in cls.FIELDS if f.offset > group[-1].offset]
            span = (group[0].offset, (after[0] if after else cls.SIZE) - group[0].offset)
            if span != (off, size):
                problems.append(f"{member}: ours {'+'.join(f.name for f in group)} at {span[0]} "
                                f"spanning {span[1]}, Xen offset {off} size {size}")
        elif member not in ours:
            problems.append(f"{member}: {cls.__name__} has no such field")
        elif (ours[member].offset, ours[member].size) != (off, size):
            f = ours[member]
            problems.append(f"{member}: ours offset {f.offset} size {f.size}, Xen offset {off} size {size}")
    fail_with(problems, f"layout mismatches in {c_type} ({cls.__name__})")


def test_dump_covers_the_structures_guests_touch_most():
    """Guard the name map: these must all have been found and checked above."""
    assert {python_name(t) for t in DUMP_STRUCTS} >= {
        "GrantEntryV1", "GnttabMapGrantRef", "GnttabUnmapGrantRef", "GnttabSetupTable",
        "GnttabCopy", "EvtchnAllocUnbound", "EvtchnBindInterdomain", "EvtchnBindVirq",
        "EvtchnSend", "EvtchnClose", "EvtchnStatus", "EvtchnUnmask", "VcpuInfo",
        "SharedInfo", "StartInfo",
    }


def test_grant_entries_per_page_match():
    assert ABI.per_page[("grant_entry_v1", 4096)] == GRANT_ENTRIES_PER_PAGE_V1 == 4096 // GrantEntryV1.SIZE
